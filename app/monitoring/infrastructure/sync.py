"""The sync part of the monitoring context: its adapters, and what runs in the background."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.monitoring.domain.sync import ServerRecord, projection_stuck
from app.shared.agent import AgentClient
from app.shared.cache import CACHE_LOOKUPS
from app.shared.infrastructure import Infrastructure

SCAN_LIMIT = 10_000


class SqlSystemProbe:
    """Reads the database's side, asks nodes for theirs, and looks into Redis."""

    def __init__(self, engine: AsyncEngine, agents: AgentClient, redis: Redis) -> None:
        self._engine = engine
        self._agents = agents
        self._redis = redis

    async def servers(self) -> Sequence[ServerRecord]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                sa.text("SELECT id, name, node, status, pid FROM servers ORDER BY name")
            )
            return [
                ServerRecord(id=r.id, name=r.name, node=r.node, state=r.status, pid=r.pid)
                for r in rows
            ]

    async def observe(self, node: str) -> Mapping[str, Any]:
        response = await self._agents.call(node, "monitoring.sync", "GET", "/v1/monitoring/sync")
        answer: Mapping[str, Any] = response.json()
        return answer

    async def events(self) -> Mapping[str, Any]:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.text(
                        "SELECT count(*) FILTER (WHERE processed_at IS NULL"
                        "   AND dead_lettered_at IS NULL) AS unprocessed,"
                        " count(*) FILTER (WHERE processed_at IS NULL AND dead_lettered_at IS NULL"
                        "   AND last_failed_at IS NOT NULL) AS failing,"
                        " count(*) FILTER (WHERE dead_lettered_at IS NOT NULL"
                        "   AND processed_at IS NULL) AS dead_letters,"
                        " extract(epoch FROM now() - min(occurred_at) FILTER (WHERE processed_at"
                        "   IS NULL AND dead_lettered_at IS NULL)) AS relay_lag_seconds,"
                        " coalesce(max(position), 0) AS last_position"
                        " FROM domain_events"
                    )
                )
            ).one()
        return {
            "unprocessed": row.unprocessed,
            "failing": row.failing,
            "dead_letters": row.dead_letters,
            "relay_lag_seconds": float(row.relay_lag_seconds or 0.0),
            "last_position": row.last_position,
        }

    async def read_models(self) -> Sequence[Mapping[str, Any]]:
        async with self._engine.connect() as conn:
            last = await conn.scalar(
                sa.text("SELECT coalesce(max(position), 0) FROM domain_events")
            )
            # How long the oldest event a projection has not passed has waited, and how long
            # its checkpoint has not moved.
            checkpoints = await conn.execute(
                sa.text(
                    "SELECT c.name, c.position, c.updated_at,"
                    " coalesce(extract(epoch FROM now() - e.occurred_at), 0) AS lag_seconds,"
                    " extract(epoch FROM now() - c.updated_at) AS idle_seconds"
                    " FROM projection_checkpoints c LEFT JOIN LATERAL (SELECT occurred_at"
                    "   FROM domain_events WHERE position > c.position ORDER BY position"
                    "   LIMIT 1) e ON true ORDER BY c.name"
                )
            )
            models: list[Mapping[str, Any]] = [
                {
                    "name": r.name,
                    "kind": "projection",
                    "checkpoint": r.position,
                    "behind": max(0, int(last) - r.position),
                    "lag_seconds": round(float(r.lag_seconds), 3),
                    "stuck": projection_stuck(
                        behind=max(0, int(last) - r.position),
                        lag_seconds=float(r.lag_seconds),
                        idle_seconds=float(r.idle_seconds),
                    ),
                    "updated_at": r.updated_at.isoformat(),
                }
                for r in checkpoints
            ]
        return models

    async def retry_failed_events(self) -> int:
        """Dead letters and failing events get a fresh start with the relay."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                sa.text(
                    "UPDATE domain_events SET dead_lettered_at = NULL, attempts = 0,"
                    " last_failed_at = NULL WHERE processed_at IS NULL"
                    " AND (dead_lettered_at IS NOT NULL OR last_failed_at IS NOT NULL)"
                )
            )
        return int(result.rowcount)

    async def cache_stats(self) -> Mapping[str, Any]:
        memory = await self._redis.info("memory")
        stats = await self._redis.info("stats")
        keyspace = await self._redis.info("keyspace")
        namespaces: Counter[str] = Counter()
        scanned = 0
        async for key in self._redis.scan_iter(count=1000):
            name = key if isinstance(key, str) else key.decode(errors="replace")
            parts = name.split(":")
            namespaces[":".join(parts[:2]) if len(parts) > 2 else parts[0]] += 1
            scanned += 1
            if scanned >= SCAN_LIMIT:
                break
        return {
            "memory": {
                "used_bytes": memory.get("used_memory"),
                "peak_bytes": memory.get("used_memory_peak"),
                "max_bytes": memory.get("maxmemory"),
            },
            "keyspace": keyspace,
            "namespaces": dict(namespaces.most_common()),
            "keys_scanned": scanned,
            "scan_complete": scanned < SCAN_LIMIT,
            "redis": {
                "keyspace_hits": stats.get("keyspace_hits", 0),
                "keyspace_misses": stats.get("keyspace_misses", 0),
            },
            "caches": cache_counts(),
        }


def cache_counts() -> dict[str, dict[str, float]]:
    """This process's cache lookups since it started, by cache and result."""
    counts: dict[str, dict[str, float]] = {}
    for metric in CACHE_LOOKUPS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                cache = counts.setdefault(sample.labels["cache"], {"hit": 0.0, "miss": 0.0})
                cache[sample.labels["result"]] = sample.value
    return dict(sorted(counts.items()))


def deps(infra: Infrastructure) -> dict[str, Any]:
    return {"system_probe": SqlSystemProbe(infra.engine, infra.agents, infra.redis)}


def background(
    infra: Infrastructure, deps: dict[str, Any]
) -> list[Callable[[], Coroutine[Any, Any, None]]]:
    return []


def schedule(scheduler: AsyncIOScheduler, infra: Infrastructure, deps: dict[str, Any]) -> None:
    return None


def node_tasks(
    infra: Infrastructure, node: str, servers: Any
) -> list[Callable[[], Coroutine[Any, Any, None]]]:
    return []
