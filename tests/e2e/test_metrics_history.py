"""Metrics history of a running fake server, as a real worker samples it: the API's series,
MetricRecorded on Redis, and the worker's Prometheus gauges that go away when it stops."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from redis.asyncio import Redis

from tests.e2e.metrics_stack import FAST_METRICS, agent_url, samples, wait_for_sample

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack_env(stack_env):
    return {**stack_env, **FAST_METRICS}


async def test_a_running_server_has_metrics_history(start_worker, dashboard, fake_jar, stack_env):
    start_worker()
    server = await dashboard.create_custom_server(fake_jar, name="charted")
    sid = server["id"]
    redis = Redis.from_url(stack_env["MCDASH_REDIS_URL"], decode_responses=True)
    pubsub = redis.pubsub()
    await pubsub.subscribe(f"metrics:server:{sid}")
    try:
        assert (await dashboard.http.post(f"/api/v2/servers/{sid}/start")).status_code == 202
        await dashboard.wait_state(sid, "running")

        async with asyncio.timeout(30):
            while (message := await pubsub.get_message(timeout=1.0)) is None or (
                message["type"] != "message"
            ):
                pass
        recorded = json.loads(message["data"])
        assert recorded["type"] == "MetricRecorded"
        assert (recorded["server_id"], recorded["name"], recorded["node"]) == (
            sid,
            "charted",
            "local",
        )

        deadline = time.monotonic() + 40
        while True:
            response = await dashboard.http.get(
                f"/api/v2/servers/{sid}/metrics", params={"step": 2}
            )
            assert response.status_code == 200, response.text
            body = response.json()
            series = body["series"]
            if [v for v in series["disk_bytes"] if v] and len(body["times"]) >= 3:
                break
            assert time.monotonic() < deadline, f"no history yet: {body}"
            await asyncio.sleep(1)
        assert (body["step"], body["resolution"]) == (2, 0)
        assert all(v is not None and v > 0 for v in series["rss_bytes"])
        assert all(v is not None and v >= 0 for v in series["cpu_percent"])
        assert len(series["players_online"]) == len(body["times"])
        assert body["times"] == sorted(body["times"])
        assert all(v is None for v in series["tick_ms"])  # the fake server reports no tick time

        url = f"{agent_url(stack_env['MCDASH_REDIS_URL'])}/metrics"
        rss = wait_for_sample(
            url, "mcdash_server_memory_bytes", {"server_id": sid, "name": "charted"}
        )
        assert rss > 0
        wait_for_sample(url, "mcdash_server_players", {"server_id": sid, "name": "charted"})
        assert "mcdash_node_servers_running" in samples(url)

        assert (await dashboard.http.post(f"/api/v2/servers/{sid}/stop")).status_code == 202
        await dashboard.wait_state(sid, "stopped")
        deadline = time.monotonic() + 15
        while any(
            labels.get("server_id") == sid
            for labels, _ in samples(url).get("mcdash_server_players", [])
        ):
            assert time.monotonic() < deadline, "the stopped server's gauges stayed"
            await asyncio.sleep(0.5)
    finally:
        await pubsub.aclose()
        await redis.aclose()
