"""What the supervisor knows of one JVM it watches."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.servers.infrastructure.files import ServerDirectory
from app.servers.infrastructure.process import CpuMark, ProcessIdentity


@dataclass(eq=False)
class Managed:
    """One JVM this worker watches, whether it launched it or adopted it."""

    server_id: uuid.UUID
    directory: ServerDirectory
    identity: ProcessIdentity
    port: int
    ready: bool
    memory_mb: int = 0  # the heap it was given, what it commits of the node's memory
    offset: int = 0
    saved_offset: int | None = None  # in console.offset: unchanged, it is not rewritten
    partial: bytes = b""  # at most LINE_MAX_BYTES: a longer line is cut and sent at once
    dropping: bool = False  # the rest of a cut line, up to its newline, is dropped
    popen: Any = None
    wrapper: ProcessIdentity | None = None
    launched_at: float = field(default_factory=time.monotonic)
    next_poll: float = 0.0
    fast_until: float = 0.0
    stop_requested_at: float | None = None
    term_sent_at: float | None = None
    last_ping: float = 0.0  # the watcher's, while it waits for readiness
    last_status_ping: float = float("-inf")  # the sampler's
    players_max: int | None = None
    players: set[str] = field(default_factory=set)
    last_lines: deque[str] = field(default_factory=lambda: deque(maxlen=15))
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    usage: dict[int, CpuMark] = field(default_factory=dict)
    waiters: list[tuple[Callable[[str], bool], asyncio.Future[str]]] = field(default_factory=list)

    def answer_waiters(self, message: str) -> None:
        """Hand a console message to the first conversation still waiting for one like it."""
        for accepts, future in self.waiters:
            if not future.done() and accepts(message):
                future.set_result(message)
                return
