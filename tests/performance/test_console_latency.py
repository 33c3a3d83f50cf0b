"""Benchmark: console round trip over the WebSocket and status latency, against a real stack.

Run on demand: `MCDASH_TEST_WORKERS=0 scripts/test tests/performance -m performance -s -p no:randomly --no-cov`.
Targets (this 2-core machine): console round-trip p95 < 50 ms.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time

import pytest

from tests.e2e.conftest import read_until

pytestmark = [pytest.mark.performance, pytest.mark.e2e]

ROUND_TRIPS = 300
STATUS_CALLS = 500


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def report(name: str, samples: list[float]) -> dict[str, float]:
    figures = {
        "n": len(samples),
        "p50_ms": percentile(samples, 50) * 1000,
        "p95_ms": percentile(samples, 95) * 1000,
        "p99_ms": percentile(samples, 99) * 1000,
        "mean_ms": statistics.fmean(samples) * 1000,
    }
    print(f"\n{name}: " + ", ".join(f"{k}={v:.1f}" for k, v in figures.items()))
    return figures


async def test_console_round_trip_and_status_latency(dashboard, start_worker, fake_jar):
    start_worker()
    sid = (await dashboard.create_custom_server(fake_jar, name="bench"))["id"]
    await dashboard.http.post(f"/api/v2/servers/{sid}/start")
    await dashboard.wait_state(sid, "running")
    samples: list[float] = []
    async with dashboard.console(sid) as ws:
        await read_until(ws, lambda line: "Done (" in line)
        for index in range(ROUND_TRIPS):
            marker = f"bench-{index}"
            started = time.perf_counter()
            await ws.send(json.dumps({"command": f"say {marker}"}))
            await read_until(ws, lambda line, m=marker: line.endswith(f"[Server] {m}"))
            samples.append(time.perf_counter() - started)
    console = report("console round trip (WebSocket say -> echoed line)", samples[20:])

    status_samples: list[float] = []
    for _ in range(STATUS_CALLS):
        started = time.perf_counter()
        response = await dashboard.http.get(f"/api/v2/servers/{sid}/status")
        status_samples.append(time.perf_counter() - started)
        assert response.status_code == 200
    status = report("GET /servers/{id}/status", status_samples[20:])

    await dashboard.http.post(f"/api/v2/servers/{sid}/stop")
    await dashboard.wait_state(sid, "stopped")
    assert console["p95_ms"] < 50, console
    assert status["p95_ms"] < 50, status
    await asyncio.sleep(0)
