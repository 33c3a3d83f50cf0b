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
from app.servers.infrastructure.supervisor.notify import LogWatch
from app.settings import Settings
from app.shared.bus import MessageBus

FAST_POLL, SLOW_POLL, FAST_WINDOW = 0.005, 0.2, 3.0  # for a log inotify cannot watch
_IDLE_WAKE = 0.25  # how soon a server new to the supervisor has its log watched
_PUBLISH_BATCH = 200  # servers' lines per Redis round trip
# How often the offsets are saved: each is a file write, and a restarted worker that resumes
# from an older one sends viewers again at most the lines of that time.
_SAVE_EVERY = 10.0
CONSOLE_LOG, OFFSET_FILE = "console.log", "console.offset"
CONSOLE_LINES = Counter("mcdash_console_lines", "Console lines read from the game servers")


class ConsoleTail:
    """Follows the console logs: lines go to viewers; readiness, players and answers to waiters.

    Each log is watched with inotify (notify.LogWatch) and read when the kernel says it grew;
    the lines of every log that grew meanwhile go to Redis in one round trip. A log that cannot
    be watched is polled as before: every 5 ms while busy, every 200 ms while quiet.
    """

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
        self._watch = LogWatch()
        self._followed: dict[uuid.UUID, tuple[Managed, int | None]] = {}

    async def run(self) -> None:
        """Read the logs the kernel says grew, poll those it cannot watch; save the offsets
        at times, so that a restarted worker resumes where this one stopped."""
        watching = self._watch.start()
        save_at = time.monotonic() + max(self._settings.status_interval_seconds, _SAVE_EVERY)
        polled: list[Managed] = []
        follow_at = 0.0
        try:
            while True:
                now = time.monotonic()
                if not watching:
                    polled = list(self._managed.values())
                elif now >= follow_at or len(self._followed) != len(self._managed):
                    polled, follow_at = self._follow(), now + _IDLE_WAKE
                dirty, every = self._watch.take()
                due = [m for m in polled if now >= m.next_poll]
                grown = (
                    [m for m, _ in self._followed.values()]
                    if every
                    else [m for m in dirty if isinstance(m, Managed)]
                )
                await self._read([*grown, *due], now, polled=set(due))
                if now >= save_at:
                    await asyncio.to_thread(self.save_offsets)
                    save_at = now + max(self._settings.status_interval_seconds, _SAVE_EVERY)
                await self._sleep(polled, now)
        finally:
            self._watch.close()

    def _follow(self) -> list[Managed]:
        """Watch the logs of servers new to the supervisor, forget those gone; the ones that
        cannot be watched are returned, to be polled."""
        for server_id in self._followed.keys() - self._managed.keys():
            _, wd = self._followed.pop(server_id)
            if wd is not None:
                self._watch.remove(wd)
        polled = []
        for server_id, managed in self._managed.items():
            known = self._followed.get(server_id)
            if known is not None and known[0] is managed:
                wd = known[1]
                if wd is None or not self._watch.watching(wd):  # not watched, or replaced
                    wd = self._watch.add(managed.directory.meta / CONSOLE_LOG, managed)
                    self._followed[server_id] = (managed, wd)
                    managed.next_poll = 0.0
            else:
                if known is not None and known[1] is not None:
                    self._watch.remove(known[1])
                wd = self._watch.add(managed.directory.meta / CONSOLE_LOG, managed)
                self._followed[server_id] = (managed, wd)
                managed.next_poll = 0.0  # read at once what it wrote before the watch
            if wd is None or managed.next_poll == 0.0:
                polled.append(managed)
        return polled

    async def _sleep(self, polled: list[Managed], now: float) -> None:
        """Until a watched log grows, or the next poll of one that is not watched is due."""
        wake = min((m.next_poll for m in polled), default=now + _IDLE_WAKE)
        timeout = max(0.0, min(wake, now + _IDLE_WAKE) - time.monotonic())
        if timeout <= FAST_POLL / 2:
            await asyncio.sleep(0)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._watch.changed.wait(), timeout)

    async def drain(self, managed: Managed) -> None:
        """The JVM is gone: publish what it wrote last, a line without its newline too."""
        remaining = read_new_lines(managed, final=True)
        if remaining:
            await self._publish([(managed, remaining)])

    def save_offsets(self) -> None:
        """Blocking: where each log was read up to, so that a restarted worker resumes there."""
        for managed in list(self._managed.values()):
            if managed.offset == managed.saved_offset:
                continue
            with contextlib.suppress(OSError):
                managed.directory.write_private(OFFSET_FILE, str(managed.offset).encode())
                managed.saved_offset = managed.offset

    @staticmethod
    def forget_offset(managed: Managed) -> None:
        with contextlib.suppress(OSError):
            managed.directory.remove_private(OFFSET_FILE)

    async def _read(self, candidates: list[Managed], now: float, *, polled: set[Managed]) -> None:
        """Read each log once; publish the new lines of all of them together."""
        batch: list[tuple[Managed, list[str]]] = []
        seen: set[Managed] = set()
        for managed in candidates:
            if managed in seen or self._managed.get(managed.server_id) is not managed:
                continue
            seen.add(managed)
            lines = read_new_lines(managed)
            if managed in polled:
                if lines:
                    managed.fast_until = now + FAST_WINDOW
                fast = now < managed.fast_until
                managed.next_poll = now + (FAST_POLL if fast else SLOW_POLL)
            if lines:
                batch.append((managed, lines))
        for start in range(0, len(batch), _PUBLISH_BATCH):
            await self._publish(batch[start : start + _PUBLISH_BATCH])

    async def _publish(self, batch: list[tuple[Managed, list[str]]]) -> None:
        """Each server's lines to its stream, then to its channel: two round trips in all."""
        at = time.time()
        pipe = self._redis.pipeline(transaction=False)
        for managed, lines in batch:
            stream = CONSOLE_STREAM.format(server_id=managed.server_id)
            for line in lines:
                pipe.xadd(
                    stream,
                    {"line": line, "at": f"{at:.3f}"},
                    maxlen=self._settings.console_history_lines,
                    approximate=True,
                )
        ids = iter(await pipe.execute())
        pipe = self._redis.pipeline(transaction=False)
        for managed, lines in batch:
            CONSOLE_LINES.inc(len(lines))
            payload = [{"id": next(ids), "line": text, "at": at} for text in lines]
            pipe.publish(CONSOLE_CHANNEL.format(server_id=managed.server_id), json.dumps(payload))
        await pipe.execute()
        for managed, lines in batch:
            await self._parse(managed, lines)

    async def _parse(self, managed: Managed, lines: list[str]) -> None:
        players_before = set(managed.players)
        for text in lines:
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
    lines = [
        cut_line(line)
        if len(line) > LINE_MAX_BYTES
        else line.decode("utf-8", "replace").rstrip("\r")
        for line in complete
    ]
    # Kept as they are read, before they are published: a JVM that exits while its last lines
    # are on their way to Redis still has them in its crash reason.
    managed.last_lines.extend(lines)
    return lines
