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
from app.servers.infrastructure.supervisor.status import ping
from app.settings import Settings
from app.shared.bus import MessageBus

log = structlog.get_logger(__name__)


class Watcher:
    """Ten times a second: hands a JVM that is gone to `finish`, escalates stops, pings."""

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

    async def run(self) -> None:
        while True:
            for managed in list(self._managed.values()):
                try:
                    await self._watch(managed)
                except Exception:
                    log.exception("watch_failed", server_id=str(managed.server_id))
            await asyncio.sleep(0.1)

    async def _watch(self, managed: Managed) -> None:
        now = time.monotonic()
        if managed.popen is not None:
            managed.popen.poll()
        if not is_alive(managed.identity):
            await self._finish(managed)
        elif managed.stop_requested_at is not None:
            self._escalate_stop(managed, now, waited=now - managed.stop_requested_at)
        elif not managed.ready:
            await self._await_ready(managed, now)

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
