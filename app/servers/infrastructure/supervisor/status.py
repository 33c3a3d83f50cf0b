"""The live status of each managed server (CPU, memory, players), sampled and published to Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import structlog
from mcstatus import JavaServer
from redis.asyncio import Redis

from app.servers.application.messages import RecordPlayers
from app.servers.domain.model import ServerState
from app.servers.domain.ports import NodeHooks, ServerRuntime
from app.servers.infrastructure.managed import Managed
from app.servers.infrastructure.process import resource_usage
from app.servers.infrastructure.runtime import STATUS_CHANNEL, STATUS_KEY, status_json
from app.settings import Settings
from app.shared.bus import MessageBus

log = structlog.get_logger(__name__)


class Sampler:
    """Every status interval: each server's process tree and ping, as its ServerRuntime."""

    def __init__(
        self,
        *,
        bus: MessageBus,
        redis: Redis,
        settings: Settings,
        managed: dict[uuid.UUID, Managed],
        hooks: NodeHooks | None = None,
    ) -> None:
        self._hooks = hooks or NodeHooks()
        self._bus = bus
        self._redis = redis
        self._settings = settings
        self._managed = managed

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._settings.status_interval_seconds)
            for managed in list(self._managed.values()):
                try:
                    await self._sample(managed)
                except Exception:
                    log.exception("sample_failed", server_id=str(managed.server_id))

    async def publish(self, server_id: uuid.UUID, runtime: ServerRuntime) -> None:
        """The status key (it expires when no worker refreshes it) and its channel."""
        payload = status_json(runtime)
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(
            STATUS_KEY.format(server_id=server_id), payload, ex=self._settings.status_ttl_seconds
        )
        pipe.publish(STATUS_CHANNEL.format(server_id=server_id), payload)
        await pipe.execute()

    async def _sample(self, managed: Managed) -> None:
        cpu, rss = await asyncio.to_thread(resource_usage, managed.identity, managed.usage)
        status = await ping(managed.port) if managed.ready else None
        players_max = None
        if status is not None:
            players_max = status.players.max
            sampled = {player.name for player in status.players.sample or []}
            if status.players.online == len(sampled) and sampled != managed.players:
                managed.players = sampled
                await self._bus.handle(
                    RecordPlayers(
                        server_id=managed.server_id, players=tuple(sorted(managed.players))
                    )
                )
        state = (
            ServerState.STOPPING
            if managed.stop_requested_at
            else (ServerState.RUNNING if managed.ready else ServerState.STARTING)
        )
        runtime = ServerRuntime(
            state=state.value,
            pid=managed.identity.pid,
            uptime_seconds=round(time.time() - managed.identity.started_at, 1),
            players_online=status.players.online if status else len(managed.players),
            players_max=players_max,
            players=tuple(sorted(managed.players)),
            cpu_percent=round(cpu, 1),
            rss_bytes=rss,
            sampled_at=time.time(),
        )
        await self.publish(managed.server_id, runtime)
        for hook in self._hooks.after_sample:
            try:
                hook(managed.server_id, runtime)
            except Exception:
                log.exception("sample_hook_failed", server_id=str(managed.server_id))


async def ping(port: int) -> Any:
    """The server list ping's answer on localhost, or None."""
    try:
        return await JavaServer("127.0.0.1", port, timeout=1.0).async_status()
    except Exception:  # noqa: BLE001 - any failure means no answer
        return None
