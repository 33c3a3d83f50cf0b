"""Metrics ingestion at 500 servers: the collector's CPU on the node and PostgreSQL's inserts.

500 managed servers (a supervisor of fakes: no JVMs), sampled by the servers context every 2 s
(its default status interval: five samples per server per flush) and flushed every 10 s, against
real PostgreSQL and Redis. The flushes run back to back and their CPU is scaled to the 10 s
they stand for; a disk walk of every server's directory (every 300 s by default) is added.
Target: under 2% of a core, under 50 INSERT statements a second. Run on demand:
`.venv/bin/pytest -q -s -m performance -p no:cacheprovider tests/performance/test_metrics_ingestion.py`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from app.bootstrap import bootstrap
from app.monitoring.infrastructure.collector import MetricsCollector, directory_bytes
from app.monitoring.infrastructure.metrics_store import MetricsStore
from app.servers.domain.ports import NoAnswer, NodeHooks, ServerRuntime

pytestmark = pytest.mark.performance
SERVERS, FLUSHES, SAMPLES_PER_FLUSH = 500, 30, 5
INTERVAL, DISK_INTERVAL = 10.0, 300.0


class FakeNode:
    """What the collector sees of a supervisor: 500 servers, none of which answers tick queries."""

    def __init__(self, root: Path) -> None:
        self.hooks = NodeHooks()
        self.managed: dict[uuid.UUID, Any] = {uuid.uuid4(): object() for _ in range(SERVERS)}
        self._root = root

    def path(self, server_id: uuid.UUID) -> Path:
        return self._root / str(server_id)

    async def converse(self, server_id: uuid.UUID, command: str, **_: Any) -> str:
        raise NoAnswer(command)


async def test_ingestion_at_500_servers(settings, clean, tmp_path):
    settings = settings.model_copy(update={"metrics_interval_seconds": INTERVAL})
    container = bootstrap(settings)
    node = FakeNode(tmp_path / "servers")
    for server_id in node.managed:
        directory = node.path(server_id) / "world"
        directory.mkdir(parents=True)
        for name in ("level.dat", "region.mca", "server.properties"):
            (directory / name).write_bytes(b"x" * 8192)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = container.infra.engine
    sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    collector = MetricsCollector(
        node="bench",
        servers=node,
        store=MetricsStore(engine),
        redis=container.infra.redis,
        bus=container.bus,
        settings=settings,
    )
    runtime = ServerRuntime(state="running", players_online=3, cpu_percent=12.5, rss_bytes=2**30)
    try:
        await collector.flush()  # connections made, server ids looked up once
        statements.clear()
        cpu = time.process_time()
        wall = time.perf_counter()
        for _ in range(FLUSHES):
            for _ in range(SAMPLES_PER_FLUSH):
                for server_id in node.managed:
                    collector.observe(server_id, runtime)
            recorded = await collector.flush()
            assert len(recorded) == SERVERS
        flush_cpu = (time.process_time() - cpu) / FLUSHES
        flush_wall = (time.perf_counter() - wall) / FLUSHES
        disk_cpu = time.process_time()
        await asyncio.to_thread(lambda: [directory_bytes(node.path(s)) for s in node.managed])
        disk_cpu = time.process_time() - disk_cpu
        rows = await _count(engine, "SELECT count(*) FROM server_metrics WHERE resolution = 0")
        rollup = time.perf_counter()
        await MetricsStore(engine).roll_up(now=time.time())
        rollup = time.perf_counter() - rollup
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", count)
        await container.close()

    inserts = sum(1 for s in statements if s.lstrip().upper().startswith("INSERT"))
    core_share = flush_cpu / INTERVAL + disk_cpu / DISK_INTERVAL
    inserts_per_second = inserts / (FLUSHES * INTERVAL)
    rows_per_second = (rows - SERVERS) / (FLUSHES * INTERVAL)
    print(
        f"\nmetrics ingestion, {SERVERS} servers every {INTERVAL:.0f} s: "
        f"flush {flush_cpu * 1000:.1f} ms CPU ({flush_wall * 1000:.1f} ms wall), "
        f"disk walk {disk_cpu * 1000:.0f} ms CPU every {DISK_INTERVAL:.0f} s -> "
        f"{core_share:.2%} of a core; {inserts_per_second:.2f} INSERT statements/s "
        f"({inserts / FLUSHES:.0f} per flush) carrying {rows_per_second:.1f} rows/s; "
        f"one rollup over {rows} raw rows {rollup * 1000:.0f} ms"
    )
    assert core_share < 0.02
    assert inserts_per_second < 50


async def _count(engine: Any, sql: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.text(sql)))
