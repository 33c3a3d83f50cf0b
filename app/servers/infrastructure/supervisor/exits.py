"""What follows a JVM's end: its exit code, why it ended, and the automatic restart it may earn."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable

import structlog

from app.servers.application.messages import (
    GetServer,
    RecordProcessExit,
    RecordStartFailure,
    RequestAutomaticStart,
)
from app.servers.domain.ports import NotRunningHere, ServerRuntime
from app.servers.infrastructure.files import ServerDirectory
from app.servers.infrastructure.managed import Managed
from app.servers.infrastructure.process import is_alive, read_exit_code
from app.servers.infrastructure.supervisor.status import Sampler
from app.servers.infrastructure.supervisor.tail import ConsoleTail
from app.shared.bus import MessageBus
from app.shared.domain import DomainError

log = structlog.get_logger(__name__)

_WRAPPER_GRACE = 2.0
_KNOWN_FAILURES = (
    ("You need to agree to the EULA", "the EULA was not accepted (eula.txt)"),
    ("FAILED TO BIND TO PORT", "the game port is already in use"),
    ("UnsupportedClassVersionError", "the jar needs a newer Java than the one chosen"),
)


class Exits:
    """Tells the servers context how each JVM ended, and starts it again when the policy says so."""

    def __init__(
        self,
        *,
        bus: MessageBus,
        managed: dict[uuid.UUID, Managed],
        tail: ConsoleTail,
        sampler: Sampler,
        start: Callable[[uuid.UUID], Awaitable[None]],
    ) -> None:
        self._bus = bus
        self._managed = managed
        self._tail = tail
        self._sampler = sampler
        self._start = start
        self._restarts: set[asyncio.Task[None]] = set()

    async def finish(self, managed: Managed) -> None:
        """The JVM is gone: read its last words, then tell the servers context why."""
        self._managed.pop(managed.server_id, None)
        for _, future in managed.waiters:
            if not future.done():
                future.set_exception(NotRunningHere(f"server {managed.server_id} exited"))
        await self._tail.drain(managed)
        exit_code = await asyncio.to_thread(_exit_code_after, managed)
        stopping = managed.stop_requested_at is not None
        try:
            if not managed.ready and not stopping and (known := known_failure(managed)):
                await self._bus.handle(
                    RecordStartFailure(server_id=managed.server_id, reason=known)
                )
            else:
                reason = "stopped" if stopping else crash_reason(exit_code, managed)
                await self._record_exit(managed.server_id, exit_code, reason)
        finally:
            managed.exited.set()
            self._tail.forget_offset(managed)
            await self._sampler.publish(managed.server_id, ServerRuntime(state="stopped"))
        log.info("server_exited", server_id=str(managed.server_id), exit_code=exit_code)

    async def settle(self, server_id: uuid.UUID, directory: ServerDirectory) -> None:
        """A JVM that ended while no worker watched it: its exit code is all that is left."""
        exit_code = await asyncio.to_thread(read_exit_code, directory)
        reason = "exited while no worker was watching"
        if exit_code is not None:
            reason += f" (exit code {exit_code})"
        await self._record_exit(server_id, exit_code, reason)

    def cancel(self) -> None:
        """The supervisor stops: so do the restarts still waiting for their backoff."""
        for task in self._restarts:
            task.cancel()

    async def _record_exit(self, server_id: uuid.UUID, exit_code: int | None, reason: str) -> None:
        restart = await self._bus.handle(
            RecordProcessExit(server_id=server_id, exit_code=exit_code, reason=reason)
        )
        if restart:
            task = asyncio.create_task(self._restart_later(server_id))
            self._restarts.add(task)
            task.add_done_callback(self._restarts.discard)

    async def _restart_later(self, server_id: uuid.UUID) -> None:
        server = await self._bus.handle(GetServer(actor=None, server_id=server_id))
        await asyncio.sleep(server.config.restart.backoff_seconds)
        try:
            await self._bus.handle(RequestAutomaticStart(server_id=server_id))
        except DomainError as exc:
            log.info("automatic_restart_skipped", server_id=str(server_id), reason=exc.detail)
            return
        await self._start(server_id)


def known_failure(managed: Managed) -> str | None:
    """Why a start failed, when the last lines of the log say so in words we know."""
    text = "\n".join(managed.last_lines)
    for marker, reason in _KNOWN_FAILURES:
        if marker in text:
            return reason
    return None


def crash_reason(exit_code: int | None, managed: Managed) -> str:
    code = "killed" if exit_code is None else f"exit code {exit_code}"
    tail = " | ".join(list(managed.last_lines)[-3:])
    return f"the server process ended unexpectedly ({code}): {tail}"[:1000]


def _exit_code_after(managed: Managed) -> int | None:
    """Blocking: the JVM is gone; give its wrapper a moment to record the exit code."""
    if managed.popen is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            managed.popen.wait(timeout=_WRAPPER_GRACE)
    elif managed.wrapper is not None:
        deadline = time.monotonic() + _WRAPPER_GRACE
        while is_alive(managed.wrapper) and time.monotonic() < deadline:
            time.sleep(0.02)
    return read_exit_code(managed.directory)
