"""Every metric the Grafana dashboard queries is exported by some process of a live stack:
the API, a worker's agent (with a running fake server) and the scheduler."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Scheduler, read_until, run_scheduler
from tests.e2e.metrics_stack import (
    FAST_METRICS,
    agent_url,
    declared,
    samples,
    wait_for_sample,
)

pytestmark = pytest.mark.e2e
DASHBOARD = Path(__file__).parents[2] / "ops" / "grafana" / "mcdash-dashboard.json"
NAME = re.compile(r"\b((?:mcdash|process)_[a-z0-9_]+)\b")
HISTOGRAM_PARTS = ("_bucket", "_sum", "_count")


@pytest.fixture
def stack_env(stack_env):
    return {**stack_env, **FAST_METRICS}


@pytest.fixture
def scheduler(stack_env, tmp_path) -> Iterator[Scheduler]:
    yield from run_scheduler(stack_env, tmp_path)


def dashboard_metrics() -> set[str]:
    """Metric names in every panel's and variable's query."""
    document = json.loads(DASHBOARD.read_text())
    exprs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("expr", "definition") and isinstance(value, str):
                    exprs.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(document)
    return {name for expr in exprs for name in NAME.findall(expr)}


def base(name: str) -> str:
    for suffix in HISTOGRAM_PARTS:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def test_the_dashboard_queries_metrics():
    names = dashboard_metrics()
    assert {"mcdash_server_players", "mcdash_servers", "mcdash_backup_bytes_bucket"} <= names


async def test_every_dashboard_metric_is_exported(
    start_worker, scheduler, dashboard, fake_jar, live_server, stack_env
):
    start_worker()
    server = await dashboard.create_custom_server(fake_jar, name="graphed")
    sid = server["id"]
    assert (await dashboard.http.post(f"/api/v2/servers/{sid}/start")).status_code == 202
    await dashboard.wait_state(sid, "running")
    async with dashboard.console(sid) as ws:  # a viewer, for mcdash_websocket_connections
        await read_until(ws, lambda line: "Done" in line)
    worker = f"{agent_url(stack_env['MCDASH_REDIS_URL'])}/metrics"
    wait_for_sample(worker, "mcdash_server_players", {"server_id": sid, "name": "graphed"})
    wait_for_sample(scheduler.metrics_url, "mcdash_servers", {"state": "running", "node": "local"})

    exported: dict[str, set[str]] = {}
    for process, url in (
        ("api", f"{live_server.url}/metrics"),
        ("worker", worker),
        ("scheduler", scheduler.metrics_url),
    ):
        # A family declared with no series now counts (tick time of a server that reports
        # none); the per-server series a running server must have are checked below.
        for name in {*samples(url), *declared(url)}:
            exported.setdefault(name, set()).add(process)
            exported.setdefault(base(name), set()).add(process)

    used = dashboard_metrics()
    missing = sorted(n for n in used if n not in exported and base(n) not in exported)
    assert not missing, f"the dashboard uses metrics no process exports: {missing}"
    live = samples(worker)
    for name in ("mcdash_server_cpu_ratio", "mcdash_server_memory_bytes", "mcdash_job_queue_depth"):
        assert live.get(name), f"the worker exports no {name} series"
    assert "worker" in exported["mcdash_server_tick_ms"]
    assert "worker" in exported["mcdash_backup_duration_seconds_bucket"]
    assert "worker" in exported["mcdash_console_lines_total"]
    assert "worker" in exported["mcdash_webhook_deliveries_total"]
    assert "api" in exported["mcdash_http_requests_total"]
