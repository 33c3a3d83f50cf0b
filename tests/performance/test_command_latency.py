"""Benchmark: command latency at 500 and at 5,000 servers, against a real API process.

Run on demand: `.venv/bin/pytest tests/performance/test_command_latency.py -m performance -s
--no-cov -p no:cacheprovider`.
Targets (issue 13): create, update and start-request each p95 < 50 ms at 10 requests in flight,
and the p95 at 5,000 servers within 1.5x of the p95 at 500: a command's cost does not grow with
the data, because its projections touch only the rows its events name.

The servers beyond those the benchmark creates are seeded in SQL (rows and their ServerCreated
events, which the API's own server_list projection then applies), spread over 1,000 owners and
over MCDASH_BENCH_NODES other nodes (10: 5,000 servers is ten nodes' worth at the 500 a node
supervises; 1 puts them all on the node the creates go to). A command returns only once its
projection has applied it (read-your-writes), so what is timed is commit + projection +
response, as a client sees it; the API's own histograms say how much of it was the handler and
how much the wait, and the CPU each command cost the API (and the relay, in the layout that
runs it as a process of its own: both layouts run, as in the event propagation benchmark).
The requests go out on the lean client of tests/performance/lean_http.py, one kept-alive
connection a lane: httpx spent 2 ms of CPU a request on this box's two cores, the lean client
0.4 (printed as "the benchmark's client").
Knobs (environment): MCDASH_BENCH_OPS (requests per operation and size, 300),
MCDASH_BENCH_CONCURRENCY (10), MCDASH_BENCH_NODES (10).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import httpx
import psutil
import pytest
from redis.asyncio import Redis

from app.shared.nodes import NODE_NAMES, node_key
from tests.performance.conftest import relay_layout
from tests.performance.lean_http import Connection, Response
from tests.services import asyncpg_kwargs

pytestmark = [pytest.mark.performance, pytest.mark.e2e]

OPS = int(os.environ.get("MCDASH_BENCH_OPS", "300"))
CONCURRENCY = int(os.environ.get("MCDASH_BENCH_CONCURRENCY", "10"))
NODES = int(os.environ.get("MCDASH_BENCH_NODES", "10"))
SIZES = (500, 5000)
OWNERS = 1000
P95_TARGET_MS = 50.0
GROWTH_TARGET = 1.5
WARM = 50  # untimed requests of each kind before the first size
PORT_BASE = 20_000
BREAKDOWN: list[str] = []  # where each operation's time went, from the API's own histograms

_CONFIG = {
    "server_type": "custom",
    "version": "1.20.4",
    "memory_mb": 512,
    "max_players": 20,
    "motd": "seeded",
    "online_mode": True,
    "whitelist": False,
    "jar_sha256": "a" * 64,
    "restart": {"mode": "off", "max_restarts": 3, "backoff_seconds": 10.0},
}


@pytest.fixture
def stack_env(stack_env, relay):
    """Room on node `local` for every seeded server and every one the benchmark creates."""
    env = {
        **stack_env,
        "MCDASH_SERVER_PORT_RANGE_START": str(PORT_BASE),
        "MCDASH_SERVER_PORT_RANGE_END": "40000",
        "MCDASH_LOG_LEVEL": "WARNING",
    }
    return relay_layout(env, relay)


async def seed_owners(db: asyncpg.Connection) -> list[uuid.UUID]:
    rows = await db.fetch(
        "INSERT INTO users (id, username, email, password_hash, role, is_active, is_approved)"
        " SELECT gen_random_uuid(), 'seed' || i, 'seed' || i || '@example.com', 'x', 'user',"
        " true, true FROM generate_series(1, $1) AS i RETURNING id",
        OWNERS,
    )
    return [row["id"] for row in rows]


async def seed_servers(db: asyncpg.Connection, owners: list[uuid.UUID], start: int, end: int):
    """Servers start..end-1 (stopped, custom with a jar, EULA accepted), with their events."""
    await db.execute(
        "INSERT INTO servers (id, name, owner_id, node, port, status, configuration,"
        " eula_accepted, created_at)"
        " SELECT gen_random_uuid(), 'seed-' || i, ($3::uuid[])[1 + i % cardinality($3::uuid[])],"
        " CASE WHEN $6 = 1 THEN 'local' ELSE 'seed-node-' || i % $6 END, $4 + i, 'stopped',"
        " $5::jsonb, true, now() - make_interval(secs => i)"
        " FROM generate_series($1, $2 - 1) AS i",
        start,
        end,
        owners,
        PORT_BASE + 10_000,  # seeded ports above those the creates take from the bottom
        json.dumps(_CONFIG),
        NODES,
    )
    await db.execute(
        "INSERT INTO domain_events (id, aggregate_type, aggregate_id, event_type, event_data,"
        " event_version, metadata, occurred_at, processed_at)"
        " SELECT gen_random_uuid(), 'server', s.id, 'ServerCreated',"
        " jsonb_build_object('server_id', s.id, 'name', s.name, 'owner_id', s.owner_id),"
        " 1, '{}'::jsonb, s.created_at, now()"
        " FROM servers s WHERE s.name LIKE 'seed-%' AND NOT EXISTS (SELECT 1 FROM domain_events e"
        "   WHERE e.aggregate_id = s.id)"
    )


async def wait_projected(db: asyncpg.Connection, total: int) -> None:
    # Before migration 0010 the list was a materialized view (so this also times the old code).
    table = "server_list" if await db.fetchval("SELECT to_regclass('server_list')") else None
    if table is None:
        await db.execute("REFRESH MATERIALIZED VIEW server_list_view")
        table = "server_list_view"
    deadline = time.monotonic() + 120
    while await db.fetchval(f"SELECT count(*) FROM {table}") < total:
        assert time.monotonic() < deadline, "the server_list projection did not catch up"
        await asyncio.sleep(0.2)


Call = Callable[[Connection], Awaitable[Response]]


async def timed(http: httpx.AsyncClient, ops: list[Call], expected: int) -> list[float]:
    """Run the calls CONCURRENCY at a time, each lane on a kept-alive connection of the lean
    client (httpx would spend 2 ms of CPU a request beside the API); each one's latency in ms."""
    queue = list(reversed(ops))
    latencies: list[float] = []
    headers = {"Authorization": http.headers["Authorization"]}

    async def lane() -> None:
        connection = Connection(str(http.base_url), headers)
        try:
            while queue:
                call = queue.pop()
                began = time.perf_counter()
                response = await call(connection)
                latencies.append((time.perf_counter() - began) * 1000)
                assert response.status_code == expected, response.text
        finally:
            await connection.close()

    await asyncio.gather(*(lane() for _ in range(CONCURRENCY)))
    return latencies


_SAMPLE = re.compile(r"^(mcdash_\w+?)_(sum|count)(?:\{([^}]*)\})? ([0-9.e+-]+)$", re.M)


async def scrape(http: httpx.AsyncClient, relay: psutil.Process | None) -> dict[str, float]:
    """The API's time histograms (sums and counts, by metric and labels), and the CPU seconds
    of the API and the relay process so far."""
    text = (await http.get("/metrics")).text
    cpu = re.search(r"^process_cpu_seconds_total ([0-9.e+-]+)$", text, re.M)
    return {
        f"{name}{{{labels or ''}}}_{kind}": float(value)
        for name, kind, labels, value in _SAMPLE.findall(text)
    } | {
        "api_cpu": float(cpu.group(1)) if cpu else 0.0,
        "relay_cpu": sum(relay.cpu_times()[:2]) if relay else 0.0,
        "postgres_cpu": _postgres_cpu(),
        "client_cpu": time.process_time(),  # this process: the benchmark's HTTP client
    }


def _postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL process so far (the benchmark's server does the work;
    an idle one beside it adds nothing)."""
    total = 0.0
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] == "postgres":
            with contextlib.suppress(psutil.Error):
                total += sum(proc.cpu_times()[:2])
    return total


def mean_ms(before: dict[str, float], after: dict[str, float], key: str) -> float:
    count = after.get(f"{key}_count", 0) - before.get(f"{key}_count", 0)
    total = after.get(f"{key}_sum", 0) - before.get(f"{key}_sum", 0)
    return 1000 * total / count if count else 0.0


def p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1]


async def measure(
    http: httpx.AsyncClient, size: int, stopped: list[str], relay: psutil.Process | None
) -> dict[str, list[float]]:
    def create(n: int) -> Call:
        body = {"name": f"bench-{size}-{n}", "server_type": "custom", "version": "1.20.4"}
        return lambda c: c.request("POST", "/api/v2/servers/", json={**body, "memory_mb": 512})

    def update(server_id: str, n: int) -> Call:
        body = {"motd": f"update {n}", "max_players": 10 + n % 50}
        return lambda c: c.request("PUT", f"/api/v2/servers/{server_id}", json=body)

    def start(server_id: str) -> Call:
        return lambda c: c.request("POST", f"/api/v2/servers/{server_id}/start")

    targets = stopped[:OPS]
    plans = {
        "create": ("CreateServer", [create(n) for n in range(OPS)], 201),
        "update": ("UpdateServer", [update(targets[n % len(targets)], n) for n in range(OPS)], 200),
        "start-request": ("StartServer", [start(s) for s in stopped[OPS : 2 * OPS]], 202),
    }
    results = {}
    for what, (command, calls, status) in plans.items():
        before = await scrape(http, relay)
        began = time.perf_counter()
        results[what] = await timed(http, calls, status)
        rate = len(calls) / (time.perf_counter() - began)
        after = await scrape(http, relay)
        cpu = {
            side: 1000 * (after[f"{side}_cpu"] - before[f"{side}_cpu"]) / len(calls)
            for side in ("api", "relay", "postgres", "client")
        }
        handler = mean_ms(before, after, f'mcdash_command_seconds{{command="{command}"}}')
        waited = mean_ms(before, after, "mcdash_projection_wait_seconds{}")
        drains = {
            key.split('"')[1]: mean_ms(before, after, key.removesuffix("_count"))
            for key in after
            if key.startswith("mcdash_projection_drain_seconds") and key.endswith("_count")
        }
        BREAKDOWN.append(
            f"{what} at {size}: handler {handler:.1f} ms, projection wait {waited:.1f} ms,"
            f" drains {', '.join(f'{k} {v:.1f}' for k, v in sorted(drains.items()))} ms;"
            f" {rate:.0f} a second; CPU a command: API {cpu['api']:.1f} ms,"
            f" relay process {cpu['relay']:.1f}, PostgreSQL {cpu['postgres']:.1f},"
            f" the benchmark's client {cpu['client']:.1f} ms"
        )
    return results


async def warm_up(http: httpx.AsyncClient, stopped: list[str]) -> None:
    """Untimed creates and updates first: every pooled connection prepares its statements and
    the API's caches fill, so the first size is not charged for a cold start."""
    body = {"server_type": "custom", "version": "1.20.4", "memory_mb": 512}

    def create(n: int) -> Call:
        return lambda c: c.request("POST", "/api/v2/servers/", json={**body, "name": f"warm-{n}"})

    def update(n: int) -> Call:
        path = f"/api/v2/servers/{stopped[-1 - n]}"
        return lambda c: c.request("PUT", path, json={"max_players": 2 + n})

    await timed(http, [create(n) for n in range(WARM)], 201)
    await timed(http, [update(n) for n in range(WARM)], 200)


async def stopped_seeded(db: asyncpg.Connection) -> list[str]:
    rows = await db.fetch(
        "SELECT id FROM servers WHERE name LIKE 'seed-%' AND status = 'stopped' ORDER BY name"
    )
    return [str(row["id"]) for row in rows]


@pytest.fixture
async def node_online(stack_env):
    """Node `local`'s record, kept fresh as a worker's heartbeat would: the start requests are
    queued on it (the jobs wait there), and no worker shares the cores with the API."""
    redis = Redis.from_url(stack_env["MCDASH_REDIS_URL"])
    record = {"pid": 1, "host": "bench", "cpu_count": 64, "memory_total": 16 * 1024**4}

    async def beat() -> None:
        while True:
            await redis.hset(node_key("local"), mapping={**record, "last_seen": time.time()})
            await redis.expire(node_key("local"), 10)
            await redis.sadd(NODE_NAMES, "local")
            await asyncio.sleep(2)

    task = asyncio.create_task(beat())
    await asyncio.sleep(0.1)
    yield
    task.cancel()
    await redis.aclose()


async def test_command_latency_does_not_grow_with_the_servers(
    dashboard, stack_env, node_online, relay, relay_process
):
    BREAKDOWN.clear()
    db = await asyncpg.connect(**asyncpg_kwargs(stack_env["MCDASH_DATABASE_URL"]))
    try:
        owners = await seed_owners(db)
        rows: dict[int, dict[str, list[float]]] = {}
        seeded = 0
        for size in SIZES:
            existing = await db.fetchval("SELECT count(*) FROM servers")
            await seed_servers(db, owners, seeded, seeded + size - existing)
            seeded += size - existing
            await wait_projected(db, size)
            await db.execute("ANALYZE")
            if not rows:
                await warm_up(dashboard.http, await stopped_seeded(db))
            rows[size] = await measure(
                dashboard.http, size, await stopped_seeded(db), relay_process
            )
    finally:
        await db.close()

    print(f"\ncommands, {CONCURRENCY} in flight, {OPS} each (ms), {relay}")
    print(f"| {'what':<14} | {'servers':>7} | {'p50':>6} | {'p95':>6} | {'p99':>6} | {'max':>6} |")
    print(f"| {'-' * 14} | {'-' * 7}: | {'-' * 6}: | {'-' * 6}: | {'-' * 6}: | {'-' * 6}: |")
    for size, results in rows.items():
        for what, latencies in results.items():
            print(
                f"| {what:<14} | {size:>7} | {p(latencies, 50):6.1f} | {p(latencies, 95):6.1f}"
                f" | {p(latencies, 99):6.1f} | {max(latencies):6.1f} |"
            )
    print("\n".join(BREAKDOWN))
    small, large = SIZES
    for what in rows[small]:
        growth = p(rows[large][what], 95) / p(rows[small][what], 95)
        print(f"{what}: p95 at {large} is {growth:.2f}x the p95 at {small}")
    failures = [
        f"{what} p95 {p(rows[size][what], 95):.1f} ms at {size} servers"
        for size in SIZES
        for what in rows[size]
        if p(rows[size][what], 95) >= P95_TARGET_MS
    ] + [
        f"{what} p95 grew {p(rows[large][what], 95) / p(rows[small][what], 95):.2f}x"
        for what in rows[small]
        if p(rows[large][what], 95) > GROWTH_TARGET * p(rows[small][what], 95)
    ]
    assert not failures, "; ".join(failures)
