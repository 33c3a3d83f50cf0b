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
from app.servers.infrastructure.process import process_children, resource_usage_all
from app.servers.infrastructure.runtime import STATUS_CHANNEL, STATUS_KEY, status_json
from app.settings import Settings
from app.shared.bus import MessageBus

log = structlog.get_logger(__name__)
_PINGS_AT_ONCE = 64
# A server list ping costs the worker about a millisecond: with 500 servers, a ping of each at
# every status round was a fifth of a core, and every 10 s most of an idle node's 7%. The
# console tells of joins and leaves as they happen; the ping, which corrects the player list
# and gives the maximum (set at start), comes every half minute.
_PING_EVERY = 30.0
# The process table is read again this often (or when a server is new): what a JVM starts
# below it is counted in its usage within that time.
_TREES_EVERY = 30.0


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
        self._children: dict[int, list[int]] = {}
        self._tree_of: set[int] = set()  # the JVMs whose children the last scan found
        self._tree_due = 0.0

    async def run(self) -> None:
        """A round every status interval, at a fixed rate whatever a round takes."""
        interval = self._settings.status_interval_seconds
        due = time.monotonic() + interval
        while True:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            due = max(due + interval, time.monotonic())
            try:
                await self.sample_all()
            except Exception:
                log.exception("sample_round_failed")

    async def sample_all(self) -> None:
        """Every server at once: one scan of the process table (in a thread), the pings side by
        side, and every status to Redis in one round trip."""
        managed = list(self._managed.values())
        if not managed:
            return
        if time.monotonic() >= self._tree_due or any(
            m.identity.pid not in self._tree_of for m in managed
        ):
            self._children = await asyncio.to_thread(process_children)
            self._tree_of = {m.identity.pid for m in managed}
            self._tree_due = time.monotonic() + _TREES_EVERY
        usages = await asyncio.to_thread(
            resource_usage_all, [(m.identity, m.usage) for m in managed], self._children
        )
        semaphore = asyncio.Semaphore(_PINGS_AT_ONCE)

        now = time.monotonic()

        async def answer(one: Managed) -> Any:
            if not one.ready or now - one.last_status_ping < _PING_EVERY:
                return None
            one.last_status_ping = now
            async with semaphore:
                return await ping(one.port)

        statuses = await asyncio.gather(*(answer(one) for one in managed))
        runtimes = []
        for one, (cpu, rss), status in zip(managed, usages, statuses, strict=True):
            try:
                runtimes.append((one, await self._runtime(one, cpu, rss, status)))
            except Exception:
                log.exception("sample_failed", server_id=str(one.server_id))
        await self._publish_many([(one.server_id, runtime) for one, runtime in runtimes])
        for one, runtime in runtimes:
            for hook in self._hooks.after_sample:
                try:
                    hook(one.server_id, runtime)
                except Exception:
                    log.exception("sample_hook_failed", server_id=str(one.server_id))

    async def publish(self, server_id: uuid.UUID, runtime: ServerRuntime) -> None:
        """The status key (it expires when no worker refreshes it) and its channel."""
        await self._publish_many([(server_id, runtime)])

    async def _publish_many(self, runtimes: list[tuple[uuid.UUID, ServerRuntime]]) -> None:
        """Every status to its key; to its channel only if someone listens there (a round of
        500 mostly unwatched servers was 1,000 commands to pack, now 501 and one question)."""
        channels = [STATUS_CHANNEL.format(server_id=server_id) for server_id, _ in runtimes]
        if len(runtimes) > 1:
            heard = {
                (name.decode() if isinstance(name, bytes) else name)
                for name, listeners in await self._redis.pubsub_numsub(*channels)
                if listeners
            }
        else:
            heard = set(channels)  # a single change (a stop, say) goes out whoever listens
        pipe = self._redis.pipeline(transaction=False)
        for (server_id, runtime), channel in zip(runtimes, channels, strict=True):
            payload = status_json(runtime)
            pipe.set(
                STATUS_KEY.format(server_id=server_id),
                payload,
                ex=self._settings.status_ttl_seconds,
            )
            if channel in heard:
                pipe.publish(channel, payload)
        await pipe.execute()

    async def _runtime(self, managed: Managed, cpu: float, rss: int, status: Any) -> ServerRuntime:
        """Between pings, the players are those the console told of, the maximum the last
        ping's."""
        if status is not None:
            managed.players_max = status.players.max
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
        return ServerRuntime(
            state=state.value,
            pid=managed.identity.pid,
            uptime_seconds=round(time.time() - managed.identity.started_at, 1),
            players_online=status.players.online if status else len(managed.players),
            players_max=managed.players_max if managed.ready else None,
            players=tuple(sorted(managed.players)),
            cpu_percent=round(cpu, 1),
            rss_bytes=rss,
            sampled_at=time.time(),
        )


async def ping(port: int) -> Any:
    """The server list ping's answer on localhost, or None."""
    try:
        return await JavaServer("127.0.0.1", port, timeout=1.0).async_status()
    except Exception:  # noqa: BLE001 - any failure means no answer
        return None
