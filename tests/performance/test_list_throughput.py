"""Benchmark: GET /api/v2/servers against a bare FastAPI + asyncpg floor, measured with wrk.

Run on demand: `MCDASH_TEST_WORKERS=0 scripts/test tests/performance -m performance -s --no-cov`.
Targets: at least 60% of the floor's requests/s and a p99 within 2x of the floor's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
from sqlalchemy.engine import make_url

from tests.e2e.conftest import free_port

pytestmark = [pytest.mark.performance, pytest.mark.e2e]

SERVERS = 100
DURATION = "10s"


def wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
        path = shutil.which("wrk")
    assert path, "wrk is needed for this benchmark (apt-get install wrk)"
    return path


def run_wrk(url: str, token: str | None = None) -> tuple[float, float]:
    args = [wrk(), "-t2", "-c10", f"-d{DURATION}", "--latency", url]
    if token:
        args[1:1] = ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99_value, p99_unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99_unit]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert non_2xx is None, out
    print(out)
    return rps, float(p99_value) * scale


@pytest.fixture
def floor_server(stack_env, tmp_path):
    url = make_url(stack_env["MCDASH_DATABASE_URL"])
    host = url.query.get("host") or url.host or "127.0.0.1"
    dsn = f"postgresql://{url.username or 'postgres'}@/{url.database}?host={host}"
    if url.port:
        dsn = f"postgresql://{url.username or 'postgres'}@{url.host}:{url.port}/{url.database}"
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
        import time

        import httpx

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


async def test_server_list_throughput_against_the_floor(dashboard, floor_server, stack_env):
    for index in range(SERVERS):
        created = await dashboard.http.post(
            "/api/v2/servers/",
            json={
                "name": f"bench-{index:03d}",
                "server_type": "custom",
                "version": "1.20.4",
                "memory_mb": 1024,
            },
        )
        assert created.status_code == 201, created.text
    page = await dashboard.http.get("/api/v2/servers/?limit=20")
    assert page.json()["total"] == SERVERS
    floor_rps, floor_p99 = run_wrk(floor_server)
    api_rps, api_p99 = run_wrk(f"{dashboard.url}/api/v2/servers/?limit=20", dashboard.token)
    print(
        f"\nGET /servers: {api_rps:.0f} req/s (floor {floor_rps:.0f}, "
        f"{api_rps / floor_rps:.0%}); p99 {api_p99:.1f} ms (floor {floor_p99:.1f} ms, "
        f"{api_p99 / floor_p99:.1f}x)"
    )
    assert api_rps >= 0.6 * floor_rps
    assert api_p99 <= 2 * floor_p99
