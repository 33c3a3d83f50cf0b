"""What the supervisor knows of one JVM, and how it reads that JVM's console log."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import psutil
from mcstatus import JavaServer

from app.servers.domain.console import LINE_MAX_BYTES, cut_line
from app.servers.domain.model import Server
from app.servers.infrastructure.files import ServerDirectory
from app.servers.infrastructure.process import ProcessIdentity

FAST_POLL, SLOW_POLL, FAST_WINDOW = 0.005, 0.2, 3.0
CONSOLE_LOG, OFFSET_FILE = "console.log", "console.offset"
_KNOWN_FAILURES = (
    ("You need to agree to the EULA", "the EULA was not accepted (eula.txt)"),
    ("FAILED TO BIND TO PORT", "the game port is already in use"),
    ("UnsupportedClassVersionError", "the jar needs a newer Java than the one chosen"),
)


class NotRunningHere(RuntimeError):
    """The server has no running JVM under this node's supervisor."""


class NoAnswer(RuntimeError):
    """The server did not answer a console command in time."""


LaunchHook = Callable[[Server, ServerDirectory], Awaitable[None]]
AdoptHook = Callable[[uuid.UUID, ServerDirectory], Awaitable[None]]


@dataclass
class NodeHooks:
    """What other contexts run on a node around the servers' lifecycle.

    before_launch runs after the settings files are written and before the JVM starts (a
    failure there fails the start); after_adopt runs for each running server a restarted
    worker takes over.
    """

    before_launch: list[LaunchHook] = field(default_factory=list)
    after_adopt: list[AdoptHook] = field(default_factory=list)


@dataclass(eq=False)
class Managed:
    """One JVM this worker watches, whether it launched it or adopted it."""

    server_id: uuid.UUID
    directory: ServerDirectory
    identity: ProcessIdentity
    port: int
    ready: bool
    offset: int = 0
    partial: bytes = b""  # at most LINE_MAX_BYTES: a longer line is cut and sent at once
    dropping: bool = False  # the rest of a cut line, up to its newline, is dropped
    popen: Any = None
    wrapper: ProcessIdentity | None = None
    launched_at: float = field(default_factory=time.monotonic)
    next_poll: float = 0.0
    fast_until: float = 0.0
    stop_requested_at: float | None = None
    term_sent_at: float | None = None
    last_ping: float = 0.0
    players: set[str] = field(default_factory=set)
    last_lines: deque[str] = field(default_factory=lambda: deque(maxlen=15))
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    usage: dict[int, psutil.Process] = field(default_factory=dict)
    waiters: list[tuple[Callable[[str], bool], asyncio.Future[str]]] = field(default_factory=list)

    def answer_waiters(self, message: str) -> None:
        """Hand a console message to the first conversation still waiting for one like it."""
        for accepts, future in self.waiters:
            if not future.done() and accepts(message):
                future.set_result(message)
                return


def saved_offset(directory: ServerDirectory) -> int:
    try:
        return int(directory.read_private(OFFSET_FILE, limit=32).strip())
    except (OSError, ValueError):
        try:
            return directory.private_size(CONSOLE_LOG)
        except OSError:
            return 0


def read_new_lines(managed: Managed, *, final: bool = False) -> list[str]:
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


def known_failure(managed: Managed) -> str | None:
    text = "\n".join(managed.last_lines)
    for marker, reason in _KNOWN_FAILURES:
        if marker in text:
            return reason
    return None


def crash_reason(exit_code: int | None, managed: Managed) -> str:
    code = "killed" if exit_code is None else f"exit code {exit_code}"
    tail = " | ".join(list(managed.last_lines)[-3:])
    return f"the server process ended unexpectedly ({code}): {tail}"[:1000]


async def ping(port: int) -> Any:
    try:
        return await JavaServer("127.0.0.1", port, timeout=1.0).async_status()
    except Exception:  # noqa: BLE001 - any failure means no answer
        return None
