"""Benchmark: GET /api/v2/servers against a bare FastAPI + asyncpg floor, measured with wrk.

The store holds what the issue's table was measured on: 500 servers (created through the API,
spread over two advertised nodes), 1,000 users and 1 M stored events. The events are written
straight with SQL, already processed, at negative positions: the relay takes only unprocessed
events and every projection tails positions above its checkpoint, so none of them sees (or
replays) the fill, while the tables and their indexes have the size they would have.

The floor and the API are measured alternately in the same run, twice (10 connections, then one
connection), and both rounds are reported and held to the targets (issue 13, item 4):
- 10 connections: the API serves >= 70% of the floor's requests/s, p99 <= 2x the floor's;
- 1 connection: the API's p50 <= 1.5x the floor's.

Run on demand:
`.venv/bin/pytest tests/performance/test_list_throughput.py -m performance -s --no-cov -n0`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from app.settings import Settings
from tests.agent import advertise
from tests.e2e.conftest import GAME_PORTS, free_port
from tests.services import asyncpg_kwargs

pytestmark = [pytest.mark.performance, pytest.mark.e2e]

SERVERS = 500
USERS = 1_000
EVENTS = 1_000_000
ROUNDS = 2
DURATION = os.environ.get("BENCH_DURATION", "10s")
NODES = ("local", "b")
PER_NODE = 300

FILL_USERS = f"""
INSERT INTO users (id, username, email, password_hash, role, is_active, is_approved)
SELECT gen_random_uuid(), 'player' || s, 'player' || s || '@example.com',
    '$argon2id$v=19$m=1024,t=1,p=1$c29tZXNhbHQ$c29tZWhhc2g', 'user', true, true
FROM generate_series(1, {USERS}) AS s
"""

# Shaped like the servers' own events: ~250 bytes of data, the request's metadata.
FILL_EVENTS = f"""
INSERT INTO domain_events (id, position, aggregate_type, aggregate_id, event_type, event_data,
    event_version, metadata, occurred_at, processed_at)
OVERRIDING SYSTEM VALUE
SELECT gen_random_uuid(), -s, 'server',
    ('00000000-0000-4000-8000-' || lpad(to_hex(s % 500), 12, '0'))::uuid,
    (ARRAY['ServerStartRequested', 'ServerStarted', 'ServerStopRequested', 'ServerStopped'])
        [1 + s % 4],
    jsonb_build_object('server_id', gen_random_uuid()::text, 'node', 'local',
        'requested_by', gen_random_uuid()::text, 'reason', repeat('r', 80), 'exit_code', 0),
    s, jsonb_build_object('request_id', md5(s::text), 'actor_id', gen_random_uuid()::text,
        'client_addr', '10.0.' || (s % 250) || '.' || (s % 200)),
    now() - interval '60 days' + s * interval '5 seconds',
    now() - interval '60 days' + s * interval '5 seconds'
FROM generate_series(1, {EVENTS}) AS s
"""


@pytest.fixture
def stack_env(stack_env) -> dict[str, str]:
    """The e2e stack's environment with room for 500 servers on two nodes (port ranges of 300
    each, memory overcommitted tenfold)."""
    return {
        **stack_env,
        "MCDASH_PLACEMENT_MEMORY_RATIO": "10",
        "MCDASH_SERVER_PORT_RANGE_START": str(GAME_PORTS),
        "MCDASH_SERVER_PORT_RANGE_END": str(GAME_PORTS + PER_NODE - 1),
    }


async def fill(database_url: str) -> None:
    """1,000 users and 1 M events, after the first registration (the admin)."""
    conn = await asyncpg.connect(**asyncpg_kwargs(database_url))  # type: ignore[arg-type]
    try:
        started = time.perf_counter()
        await conn.execute(FILL_USERS)
        await conn.execute(FILL_EVENTS)
        await conn.execute("ANALYZE")
        print(f"\nfilled {USERS} users, {EVENTS:,} events in {time.perf_counter() - started:.1f} s")
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def nodes_online(settings: Settings) -> AsyncIterator[None]:
    """Two nodes advertised (and kept fresh) in Redis, so placement has room for 500 servers;
    nothing calls them while servers are only created."""
    redis = Redis.from_url(settings.redis_url or "")

    async def keep() -> None:
        while True:
            for index, node in enumerate(NODES):
                start = GAME_PORTS + index * PER_NODE
                ranged = settings.model_copy(
                    update={
                        "server_port_range_start": start,
                        "server_port_range_end": start + PER_NODE - 1,
                    }
                )
                await advertise(redis, ranged, node, "http://127.0.0.1:9")
            await asyncio.sleep(1)

    task = asyncio.create_task(keep())
    try:
        await asyncio.sleep(0.1)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await redis.aclose()


async def create_servers(http: httpx.AsyncClient, count: int) -> None:
    gate = asyncio.Semaphore(10)

    async def one(index: int) -> None:
        async with gate:
            created = await http.post(
                "/api/v2/servers/",
                json={
                    "name": f"bench-{index:03d}",
                    "server_type": "custom",
                    "version": "1.20.4",
                    "memory_mb": 512,
                },
            )
            assert created.status_code == 201, created.text

    await asyncio.gather(*(one(index) for index in range(count)))


def wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
        path = shutil.which("wrk")
    assert path, "wrk is needed for this benchmark (apt-get install wrk)"
    return path


@dataclass(frozen=True)
class Figures:
    rps: float
    p50: float
    p99: float


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, *, connections: int, token: str | None = None) -> Figures:
    threads = min(2, connections)
    args = [wrk(), f"-t{threads}", f"-c{connections}", f"-d{DURATION}", "--latency", url]
    if token:
        args[1:1] = ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    assert re.search(r"Non-2xx or 3xx responses: (\d+)", out) is None, out
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert rps, out
    assert p50, out
    assert p99, out
    return Figures(float(rps.group(1)), _ms(*p50.groups()), _ms(*p99.groups()))


@pytest.fixture
def floor_server(stack_env, tmp_path) -> Iterator[str]:
    url = make_url(stack_env["MCDASH_DATABASE_URL"]).set(drivername="postgresql")
    dsn = url.render_as_string(hide_password=False)
    port = free_port()
    env = {**os.environ, "FLOOR_DSN": dsn}
    with (tmp_path / "floor.log").open("w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "tests.performance.floor_app:app",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/servers").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/servers"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _row(what: str, floor: float, api: float, unit: str, ratio: str, target: str) -> str:
    return f"| {what} | {floor:,.{1 if unit else 0}f}{unit} | {api:,.{1 if unit else 0}f}{unit} | {ratio} | {target} |"


PY_SPY = os.environ.get("BENCH_PY_SPY", "/root/.pyenv/versions/3.11.7/bin/py-spy")


def profile_api(pid: int, url: str, token: str, out: str) -> None:
    """BENCH_PROFILE=path: py-spy records the API process under 10 connections (collapsed
    stacks in path, a flame graph in path.svg)."""
    seconds = int(DURATION.rstrip("s"))
    recorders = [
        subprocess.Popen(
            [
                PY_SPY,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(seconds),
                "--rate",
                "200",
                "--format",
                fmt,
                "--output",
                target,
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for fmt, target in (("raw", out), ("flamegraph", f"{out}.svg"))
    ]
    run_wrk(url, connections=10, token=token)
    for recorder in recorders:
        recorder.wait(timeout=60)


async def test_server_list_throughput_against_the_floor(
    dashboard, floor_server, settings, live_server
):
    await fill(settings.database_url)
    async with nodes_online(settings):
        started = time.perf_counter()
        await create_servers(dashboard.http, SERVERS)
        print(f"created {SERVERS} servers in {time.perf_counter() - started:.1f} s")
    page = await dashboard.http.get("/api/v2/servers/?limit=20")
    assert page.json()["total"] == SERVERS
    floor_page = httpx.get(floor_server).json()
    listed = [(item["id"], item["backup_count"]) for item in page.json()["items"]]
    assert [(item["id"], item["backup_count"]) for item in floor_page["items"]] == listed
    api_url = f"{dashboard.url}/api/v2/servers/?limit=20"
    # Warm both (caches, first connections), then alternate: floor, API, floor, API.
    await asyncio.to_thread(run_wrk, floor_server, connections=10)
    await asyncio.to_thread(run_wrk, api_url, connections=10, token=dashboard.token)

    rounds: list[tuple[Figures, Figures, Figures, Figures]] = []
    for _ in range(ROUNDS):
        floor10 = await asyncio.to_thread(run_wrk, floor_server, connections=10)
        api10 = await asyncio.to_thread(run_wrk, api_url, connections=10, token=dashboard.token)
        floor1 = await asyncio.to_thread(run_wrk, floor_server, connections=1)
        api1 = await asyncio.to_thread(run_wrk, api_url, connections=1, token=dashboard.token)
        rounds.append((floor10, api10, floor1, api1))

    load = os.getloadavg()
    lines = [
        f"\nGET /api/v2/servers/?limit=20 ({SERVERS} servers, {USERS} users, {EVENTS:,} events;"
        f" wrk {DURATION} each; load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})",
        "| round: what | floor | API | API/floor | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    failures: list[str] = []
    for number, (floor10, api10, floor1, api1) in enumerate(rounds, 1):
        share = api10.rps / floor10.rps
        tail = api10.p99 / floor10.p99
        single = api1.p50 / floor1.p50
        lines += [
            _row(f"{number}: 10 conn req/s", floor10.rps, api10.rps, "", f"{share:.0%}", ">= 70%"),
            _row(f"{number}: 10 conn p99", floor10.p99, api10.p99, " ms", f"{tail:.2f}x", "<= 2x"),
            _row(f"{number}: 10 conn p50", floor10.p50, api10.p50, " ms", "", ""),
            _row(f"{number}: 1 conn p50", floor1.p50, api1.p50, " ms", f"{single:.2f}x", "<= 1.5x"),
            _row(f"{number}: 1 conn req/s", floor1.rps, api1.rps, "", "", ""),
        ]
        if share < 0.7:
            failures.append(f"round {number}: {share:.0%} of the floor's req/s")
        if tail > 2:
            failures.append(f"round {number}: p99 {tail:.2f}x the floor's")
        if single > 1.5:
            failures.append(f"round {number}: 1-connection p50 {single:.2f}x the floor's")
    print("\n".join(lines))
    if profile := os.environ.get("BENCH_PROFILE"):
        await asyncio.to_thread(
            profile_api, live_server.process.pid, api_url, dashboard.token, profile
        )
    assert not failures, failures
