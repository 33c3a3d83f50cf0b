"""Commands into the managed servers' consoles: from the node's channel, jobs and conversations."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable

import structlog
from redis.asyncio import Redis

from app.servers.domain.ports import NoAnswer, NotRunningHere
from app.servers.infrastructure.managed import Managed
from app.servers.infrastructure.process import ConsoleUnavailable, write_console
from app.servers.infrastructure.runtime import NODE_CONSOLE_CHANNEL
from app.servers.infrastructure.supervisor.tail import FAST_WINDOW

log = structlog.get_logger(__name__)


class Console:
    """Writes commands into the console FIFOs; a conversation awaits the answer the tail finds."""

    def __init__(self, *, node: str, redis: Redis, managed: dict[uuid.UUID, Managed]) -> None:
        self._node = node
        self._redis = redis
        self._managed = managed

    async def run(self) -> None:
        """Relay the commands that the API publishes on the node's console channel."""
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(NODE_CONSOLE_CHANNEL.format(node=self._node))
        try:
            async for message in pubsub.listen():
                try:
                    payload = json.loads(message["data"])
                    await self.send(uuid.UUID(payload["server_id"]), str(payload["command"]))
                except (ValueError, KeyError, TypeError):
                    log.warning("console_message_malformed", data=str(message.get("data"))[:200])
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def send(self, server_id: uuid.UUID, command: str) -> None:
        managed = self._managed.get(server_id)
        if managed is None:
            log.warning("console_for_unmanaged_server", server_id=str(server_id))
            return
        try:
            write_console(managed.directory, command)
        except (ConsoleUnavailable, OSError) as exc:
            log.warning("console_write_failed", server_id=str(server_id), error=str(exc))
            return
        _expect_output(managed)

    async def converse(
        self,
        server_id: uuid.UUID,
        command: str,
        *,
        answer: Callable[[str], bool],
        within: float,
    ) -> str:
        """See Supervisor.converse."""
        managed = self._managed.get(server_id)
        if managed is None or not managed.ready or managed.stop_requested_at is not None:
            raise NotRunningHere(f"server {server_id} is not running on node {self._node}")
        waiter = (answer, asyncio.get_running_loop().create_future())
        managed.waiters.append(waiter)
        try:
            try:
                write_console(managed.directory, command)
            except (ConsoleUnavailable, OSError) as exc:
                raise NotRunningHere(f"the console of server {server_id} is closed: {exc}") from exc
            _expect_output(managed)
            try:
                return await asyncio.wait_for(asyncio.shield(waiter[1]), within)
            except TimeoutError:
                raise NoAnswer(f"no answer to {command!r} within {within:g} s") from None
        finally:
            managed.waiters.remove(waiter)


def _expect_output(managed: Managed) -> None:
    """A command was written: read the log at once, and quickly for a while."""
    managed.fast_until = time.monotonic() + FAST_WINDOW
    managed.next_poll = 0.0
