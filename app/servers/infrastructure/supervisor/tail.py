"""Each managed server's console log: read from its offset, published to Redis, then parsed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid

from prometheus_client import Counter
from redis.asyncio import Redis

from app.servers.application.messages import RecordPlayers, RecordServerReady
from app.servers.domain.console import LINE_MAX_BYTES, ConsoleLine, cut_line
from app.servers.infrastructure.files import ServerDirectory
from app.servers.infrastructure.managed import Managed
from app.servers.infrastructure.runtime import CONSOLE_CHANNEL, CONSOLE_STREAM
from app.settings import Settings
from app.shared.bus import MessageBus

FAST_POLL, SLOW_POLL, FAST_WINDOW = 0.005, 0.2, 3.0
CONSOLE_LOG, OFFSET_FILE = "console.log", "console.offset"
CONSOLE_LINES = Counter("mcdash_console_lines", "Console lines read from the game servers")


class ConsoleTail:
    """Follows the console logs: lines go to viewers; readiness, players and answers to waiters."""

    def __init__(
        self,
        *,
        bus: MessageBus,
        redis: Redis,
        settings: Settings,
        managed: dict[uuid.UUID, Managed],
    ) -> None:
        self._bus = bus
        self._redis = redis
        self._settings = settings
        self._managed = managed

    async def run(self) -> None:
        """Poll each log often while it is busy, rarely when quiet; save the offsets at times."""
        save_at = time.monotonic() + self._settings.status_interval_seconds
        while True:
            now = time.monotonic()
            for managed in list(self._managed.values()):
                if now >= managed.next_poll:
                    await self._tail(managed, now)
            if now >= save_at:
                self.save_offsets()
                save_at = now + self._settings.status_interval_seconds
            await asyncio.sleep(FAST_POLL)

    async def drain(self, managed: Managed) -> None:
        """The JVM is gone: publish what it wrote last, a line without its newline too."""
        remaining = read_new_lines(managed, final=True)
        if remaining:
            await self._publish(managed, remaining)

    def save_offsets(self) -> None:
        """Where each log was read up to, so that a restarted worker resumes there."""
        for managed in self._managed.values():
            with contextlib.suppress(OSError):
                managed.directory.write_private(OFFSET_FILE, str(managed.offset).encode())

    @staticmethod
    def forget_offset(managed: Managed) -> None:
        with contextlib.suppress(OSError):
            managed.directory.remove_private(OFFSET_FILE)

    async def _tail(self, managed: Managed, now: float) -> None:
        lines = read_new_lines(managed)
        fast = now < managed.fast_until
        if lines:
            managed.fast_until = now + FAST_WINDOW
            fast = True
            await self._publish(managed, lines)
        managed.next_poll = now + (FAST_POLL if fast else SLOW_POLL)

    async def _publish(self, managed: Managed, lines: list[str]) -> None:
        stream = CONSOLE_STREAM.format(server_id=managed.server_id)
        at = time.time()
        pipe = self._redis.pipeline(transaction=False)
        for line in lines:
            pipe.xadd(
                stream,
                {"line": line, "at": f"{at:.3f}"},
                maxlen=self._settings.console_history_lines,
                approximate=True,
            )
        ids = await pipe.execute()
        CONSOLE_LINES.inc(len(lines))
        payload = [
            {"id": entry, "line": text, "at": at} for entry, text in zip(ids, lines, strict=True)
        ]
        await self._redis.publish(
            CONSOLE_CHANNEL.format(server_id=managed.server_id), json.dumps(payload)
        )
        await self._parse(managed, lines)

    async def _parse(self, managed: Managed, lines: list[str]) -> None:
        players_before = set(managed.players)
        for text in lines:
            managed.last_lines.append(text)
            parsed = ConsoleLine.parse(text)
            if managed.waiters:
                managed.answer_waiters(parsed.message)
            if not managed.ready and parsed.is_ready:
                managed.ready = True
                await self._bus.handle(
                    RecordServerReady(server_id=managed.server_id, detected_by="log")
                )
            if name := parsed.joined():
                managed.players.add(name)
            elif name := parsed.left():
                managed.players.discard(name)
            elif (listed := parsed.player_list()) is not None:
                managed.players = set(listed)
        if managed.players != players_before:
            await self._bus.handle(
                RecordPlayers(server_id=managed.server_id, players=tuple(sorted(managed.players)))
            )


def saved_offset(directory: ServerDirectory) -> int:
    """Where a predecessor stopped reading the log; its end when it did not say."""
    try:
        return int(directory.read_private(OFFSET_FILE, limit=32).strip())
    except (OSError, ValueError):
        try:
            return directory.private_size(CONSOLE_LOG)
        except OSError:
            return 0


def read_new_lines(managed: Managed, *, final: bool = False) -> list[str]:
    """The lines written since the offset (1 MiB at most); `final` takes an unended last one."""
    try:
        fd = managed.directory.open_private(CONSOLE_LOG, os.O_RDONLY)
        with os.fdopen(fd, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size < managed.offset:
                managed.offset, managed.partial, managed.dropping = 0, b"", False
            if size == managed.offset:
                chunk = b""
            else:
                handle.seek(managed.offset)
                chunk = handle.read(min(size - managed.offset, 1 << 20))
    except OSError:
        return []
    managed.offset += len(chunk)
    *complete, rest = (managed.partial + chunk).split(b"\n")
    if managed.dropping:
        if complete:
            complete.pop(0)
            managed.dropping = False
        else:
            rest = b""
    managed.partial = rest
    if len(rest) > LINE_MAX_BYTES or (final and rest):
        complete.append(rest)
        managed.partial, managed.dropping = b"", not final
    return [
        cut_line(line)
        if len(line) > LINE_MAX_BYTES
        else line.decode("utf-8", "replace").rstrip("\r")
        for line in complete
    ]
