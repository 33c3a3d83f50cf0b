"""Metrics history in PostgreSQL: batched writes, rollups of each level into the next, retention
per level in bounded batches, and the bucketed series a chart reads."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.monitoring.domain.metrics import (
    HOUR,
    MINUTE,
    NODE_SERIES,
    RAW,
    SERVER_SERIES,
    MetricRecorded,
    MetricsWindow,
    NodeSample,
    Series,
)
from app.monitoring.infrastructure.tables import node_metrics, server_metrics
from app.shared.db import projection_checkpoints

_SERVER_COLUMNS = {
    "server_id": "uuid",
    "resolution": "integer",
    "at": "timestamptz",
    "node": "text",
    "state": "text",
    "samples": "integer",
    "cpu_percent": "float8",
    "cpu_percent_max": "float8",
    "rss_bytes": "bigint",
    "rss_bytes_max": "bigint",
    "players_online": "float8",
    "players_max": "integer",
    "disk_bytes": "bigint",
    "tick_ms": "float8",
    "tick_ms_max": "float8",
    "tps": "float8",
}
_SERVER_INSERT = sa.text(
    f"INSERT INTO server_metrics ({', '.join(_SERVER_COLUMNS)}) SELECT * FROM unnest("  # noqa: S608
    + ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in _SERVER_COLUMNS.items())
    + ") ON CONFLICT DO NOTHING"
)
DELETE_BATCH = 5000
MAX_DELETE_BATCHES = 20  # per level and run: a long backlog is cleared over several runs

# Each rollup reads the finer level and upserts the coarser one, weighting averages by the
# samples they hold; re-running it over the same buckets gives the same rows.
_BUCKET = "to_timestamp(floor(extract(epoch FROM at) / :to_res) * :to_res)".replace(
    ":to_res", "CAST(:to_res AS integer)"
)
_SERVER_ROLLUP = """
INSERT INTO server_metrics (server_id, resolution, at, node, state, samples, cpu_percent,
    cpu_percent_max, rss_bytes, rss_bytes_max, players_online, players_max, disk_bytes,
    tick_ms, tick_ms_max, tps)
SELECT server_id, CAST(:to_res AS integer),
    BUCKET AS b,
    (array_agg(node ORDER BY at DESC))[1], (array_agg(state ORDER BY at DESC))[1],
    sum(samples), sum(cpu_percent * samples) / sum(samples), max(cpu_percent_max),
    (sum(rss_bytes * samples) / sum(samples))::bigint, max(rss_bytes_max),
    sum(players_online * samples) / sum(samples), max(players_max),
    (array_agg(disk_bytes ORDER BY at DESC) FILTER (WHERE disk_bytes IS NOT NULL))[1],
    avg(tick_ms), max(coalesce(tick_ms_max, tick_ms)), avg(tps)
FROM server_metrics
WHERE resolution = :from_res AND at >= :since AND at < :until
GROUP BY server_id, b
ON CONFLICT (server_id, resolution, at) DO UPDATE SET node = excluded.node,
    state = excluded.state, samples = excluded.samples, cpu_percent = excluded.cpu_percent,
    cpu_percent_max = excluded.cpu_percent_max, rss_bytes = excluded.rss_bytes,
    rss_bytes_max = excluded.rss_bytes_max, players_online = excluded.players_online,
    players_max = excluded.players_max, disk_bytes = excluded.disk_bytes,
    tick_ms = excluded.tick_ms, tick_ms_max = excluded.tick_ms_max, tps = excluded.tps
"""
_NODE_ROLLUP = """
INSERT INTO node_metrics (node, resolution, at, samples, cpu_percent, cpu_percent_max,
    memory_used_bytes, memory_total_bytes, disk_used_bytes, disk_total_bytes, servers_running)
SELECT node, CAST(:to_res AS integer),
    BUCKET AS b,
    sum(samples), sum(cpu_percent * samples) / sum(samples), max(cpu_percent_max),
    (sum(memory_used_bytes * samples) / sum(samples))::bigint, max(memory_total_bytes),
    (array_agg(disk_used_bytes ORDER BY at DESC))[1], max(disk_total_bytes),
    sum(servers_running * samples) / sum(samples)
FROM node_metrics
WHERE resolution = :from_res AND at >= :since AND at < :until
GROUP BY node, b
ON CONFLICT (node, resolution, at) DO UPDATE SET samples = excluded.samples,
    cpu_percent = excluded.cpu_percent, cpu_percent_max = excluded.cpu_percent_max,
    memory_used_bytes = excluded.memory_used_bytes,
    memory_total_bytes = excluded.memory_total_bytes,
    disk_used_bytes = excluded.disk_used_bytes, disk_total_bytes = excluded.disk_total_bytes,
    servers_running = excluded.servers_running
"""
_ROLLUPS = {
    "server_metrics": _SERVER_ROLLUP.replace("BUCKET", _BUCKET),
    "node_metrics": _NODE_ROLLUP.replace("BUCKET", _BUCKET),
}


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _server_row(sample: MetricRecorded) -> dict[str, Any]:
    return {
        "server_id": sample.server_id,
        "resolution": RAW,
        "at": _at(sample.at),
        "node": sample.node,
        "state": sample.state,
        "samples": sample.samples,
        "cpu_percent": sample.cpu_percent,
        "cpu_percent_max": sample.cpu_percent_max,
        "rss_bytes": sample.rss_bytes,
        "rss_bytes_max": sample.rss_bytes_max,
        "players_online": sample.players_online,
        "players_max": sample.players_max,
        "disk_bytes": sample.disk_bytes,
        "tick_ms": sample.tick_ms,
        "tick_ms_max": sample.tick_ms_max,
        "tps": sample.tps,
    }


def _node_row(sample: NodeSample) -> dict[str, Any]:
    return {
        "node": sample.node,
        "resolution": RAW,
        "at": _at(sample.at),
        "samples": 1,
        "cpu_percent": sample.cpu_percent,
        "cpu_percent_max": sample.cpu_percent,
        "memory_used_bytes": sample.memory_used_bytes,
        "memory_total_bytes": sample.memory_total_bytes,
        "disk_used_bytes": sample.disk_used_bytes,
        "disk_total_bytes": sample.disk_total_bytes,
        "servers_running": sample.servers_running,
    }


class MetricsStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def write(self, servers: Sequence[MetricRecorded], node: NodeSample | None) -> None:
        """One INSERT of all the servers' rows (their columns as arrays, unnested: one prepared
        statement, whatever the count), one for the node's, in one transaction."""
        async with self._engine.begin() as conn:
            if servers:
                rows = [_server_row(sample) for sample in servers]
                columns = {name: [row[name] for row in rows] for name in _SERVER_COLUMNS}
                await conn.execute(_SERVER_INSERT, columns)
            if node is not None:
                statement = insert(node_metrics).values([_node_row(node)])
                await conn.execute(statement.on_conflict_do_nothing())

    async def roll_up(self, *, now: float) -> dict[str, int]:
        """Raw into minutes, minutes into hours, from where the last run left off."""
        done: dict[str, int] = {}
        async with self._engine.begin() as conn:
            for table, sql in _ROLLUPS.items():
                for source, target in ((RAW, MINUTE), (MINUTE, HOUR)):
                    name = f"metrics_rollup:{table}:{target}"
                    since = await self._checkpoint(conn, name, default=now - 2 * target)
                    # The current bucket is rolled up too (fresh charts), and again next run.
                    until = now + target
                    result = await conn.execute(
                        sa.text(sql),
                        {
                            "to_res": target,
                            "from_res": source,
                            "since": _at(since),
                            "until": _at(until),
                        },
                    )
                    done[f"{table}:{target}"] = result.rowcount
                    finished = (now // target) * target - target
                    await self._save_checkpoint(conn, name, max(int(since), int(finished)))
        return done

    async def _checkpoint(self, conn: AsyncConnection, name: str, *, default: float) -> float:
        position = await conn.scalar(
            sa.select(projection_checkpoints.c.position).where(
                projection_checkpoints.c.name == name
            )
        )
        return float(position) if position is not None else (default // 3600) * 3600

    @staticmethod
    async def _save_checkpoint(conn: AsyncConnection, name: str, position: int) -> None:
        statement = insert(projection_checkpoints).values(name=name, position=position)
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=["name"], set_={"position": position, "updated_at": sa.func.now()}
            )
        )

    async def expire(self, cutoffs: dict[int, float]) -> int:
        """Delete rows older than each level's cutoff, DELETE_BATCH at a time."""
        deleted = 0
        for table in ("server_metrics", "node_metrics"):
            sql = sa.text(
                f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} "  # noqa: S608
                "WHERE resolution = :resolution AND at < :cutoff LIMIT :batch))"
            )
            for resolution, cutoff in cutoffs.items():
                for _ in range(MAX_DELETE_BATCHES):
                    params = {
                        "resolution": resolution,
                        "cutoff": _at(cutoff),
                        "batch": DELETE_BATCH,
                    }
                    async with self._engine.begin() as conn:
                        result = await conn.execute(sql, params)
                    deleted += result.rowcount
                    if result.rowcount < DELETE_BATCH:
                        break
        return deleted

    async def server_series(self, server_id: uuid.UUID, window: MetricsWindow) -> Series:
        return await self._series(
            server_metrics, server_metrics.c.server_id == server_id, window, SERVER_SERIES
        )

    async def node_series(self, node: str, window: MetricsWindow) -> Series:
        return await self._series(node_metrics, node_metrics.c.node == node, window, NODE_SERIES)

    async def has_node(self, node: str) -> bool:
        query = sa.select(sa.literal(1)).where(node_metrics.c.node == node).limit(1)
        async with self._engine.connect() as conn:
            return (await conn.scalar(query)) is not None

    async def _series(
        self, table: sa.Table, which: Any, window: MetricsWindow, names: Sequence[str]
    ) -> Series:
        bucket = (sa.func.floor(sa.extract("epoch", table.c.at) / window.step) * window.step).label(
            "t"
        )
        weight = table.c.samples
        columns: list[Any] = []
        for name in names:
            column = table.c[name]
            if name in ("disk_bytes", "disk_used_bytes", "disk_total_bytes", "memory_total_bytes"):
                columns.append(sa.func.max(column).label(name))
            elif name in ("tick_ms", "tps"):
                columns.append(sa.func.avg(column).label(name))
            else:
                columns.append((sa.func.sum(column * weight) / sa.func.sum(weight)).label(name))
        query = (
            sa.select(bucket, *columns)
            .where(
                which,
                table.c.resolution == window.resolution,
                table.c.at >= window.start,
                table.c.at < window.end,
            )
            .group_by(bucket)
            .order_by(bucket)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        values: dict[str, list[float | None]] = {name: [] for name in names}
        for row in rows:
            for name in names:
                value = row._mapping[name]
                values[name].append(None if value is None else round(float(value), 3))
        return Series(times=[float(row._mapping["t"]) for row in rows], values=values)
