"""Watching each managed JVM: its end, a stop that takes too long, a start that never gets ready."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Awaitable, Callable

import structlog

from app.servers.application.messages import RecordServerReady, RecordStartFailure
from app.servers.infrastructure.managed import Managed
from app.servers.infrastructure.process import is_alive, signal_server
from app.servers.infrastructure.supervisor.notify import unwatch_exit, watch_exit
from app.servers.infrastructure.supervisor.status import ping
from app.settings import Settings
from app.shared.bus import MessageBus

log = structlog.get_logger(__name__)


class Watcher:
    """Hands a JVM that is gone to `finish` as soon as its pidfd says so (polled ten times a
    second where there is no pidfd); ten times a second, escalates stops and pings starts."""

    def __init__(
        self,
        *,
        bus: MessageBus,
        settings: Settings,
        managed: dict[uuid.UUID, Managed],
        finish: Callable[[Managed], Awaitable[None]],
    ) -> None:
        self._bus = bus
        self._settings = settings
        self._managed = managed
        self._finish = finish
        self._exit_fds: dict[Managed, int | None] = {}
        self._finishing: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        try:
            while True:
                for managed in list(self._managed.values()):
                    try:
                        await self._watch(managed)
                    except Exception:
                        log.exception("watch_failed", server_id=str(managed.server_id))
                self._forget_gone()
                await asyncio.sleep(0.1)
        finally:
            for fd in self._exit_fds.values():
                if fd is not None:
                    unwatch_exit(fd)
            self._exit_fds.clear()

    async def _watch(self, managed: Managed) -> None:
        now = time.monotonic()
        if managed not in self._exit_fds:
            self._exit_fds[managed] = self._watch_exit(managed)
        if self._exit_fds[managed] is None:
            if managed.popen is not None:
                managed.popen.poll()
            if not is_alive(managed.identity):
                await self._finish(managed)
                return
        if managed.stop_requested_at is not None:
            self._escalate_stop(managed, now, waited=now - managed.stop_requested_at)
        elif not managed.ready:
            await self._await_ready(managed, now)

    def _watch_exit(self, managed: Managed) -> int | None:
        """The JVM's pidfd, once it is known to be that JVM (a pid alone can be reused); the
        wrapper shell this worker launched is reaped as soon as it ends, as the poll did."""
        if managed.popen is not None and managed.popen.poll() is None:
            popen = managed.popen
            reaper: list[int | None] = []

            def reap() -> None:
                popen.poll()
                if reaper and reaper[0] is not None:
                    unwatch_exit(reaper[0])

            reaper.append(watch_exit(popen.pid, reap))
        fd = watch_exit(managed.identity.pid, lambda: self._exited(managed))
        if fd is not None and not is_alive(managed.identity):
            unwatch_exit(fd)
            return None  # gone already, or another process now: the poll above finds out
        return fd

    def _exited(self, managed: Managed) -> None:
        """The pidfd is readable: the JVM has ended."""
        fd = self._exit_fds.pop(managed, None)
        if fd is not None:
            unwatch_exit(fd)
        if self._managed.get(managed.server_id) is not managed:
            return
        task = asyncio.create_task(self._finish_logged(managed))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    async def _finish_logged(self, managed: Managed) -> None:
        try:
            await self._finish(managed)
        except Exception:
            log.exception("watch_failed", server_id=str(managed.server_id))

    def _forget_gone(self) -> None:
        """Pidfds of servers the supervisor no longer manages (finished elsewhere)."""
        for managed in [m for m in self._exit_fds if self._managed.get(m.server_id) is not m]:
            fd = self._exit_fds.pop(managed)
            if fd is not None:
                unwatch_exit(fd)

    def _escalate_stop(self, managed: Managed, now: float, *, waited: float) -> None:
        """`stop` unanswered: SIGTERM after the stop timeout, SIGKILL after the term timeout."""
        settings = self._settings
        if managed.term_sent_at is None and waited > settings.server_stop_timeout_seconds:
            log.warning("stop_timeout_sigterm", server_id=str(managed.server_id))
            signal_server(managed.identity, signal.SIGTERM)
            managed.term_sent_at = now
        elif (
            managed.term_sent_at is not None
            and now - managed.term_sent_at > settings.server_term_timeout_seconds
        ):
            log.warning("stop_timeout_sigkill", server_id=str(managed.server_id))
            signal_server(managed.identity, signal.SIGKILL)

    async def _await_ready(self, managed: Managed, now: float) -> None:
        """Killed when not ready within the start timeout; ready when it answers a ping."""
        timeout = self._settings.server_start_timeout_seconds
        if now - managed.launched_at > timeout:
            signal_server(managed.identity, signal.SIGKILL)
            await asyncio.sleep(0.2)
            await self._bus.handle(
                RecordStartFailure(
                    server_id=managed.server_id, reason=f"not ready within {timeout:.0f} s"
                )
            )
            return
        if now - managed.last_ping > 2.0 and now - managed.launched_at > 2.0:
            managed.last_ping = now
            if await ping(managed.port) is not None:
                managed.ready = True
                await self._bus.handle(
                    RecordServerReady(server_id=managed.server_id, detected_by="ping")
                )
