"""A real API, a real node worker and the fake server jar: the server lifecycle end to end."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import psutil
import pytest

from tests.e2e.conftest import read_until

pytestmark = pytest.mark.e2e


async def test_create_start_console_stop(dashboard, start_worker, fake_jar, db, stack_env):
    start_worker()
    server = await dashboard.create_custom_server(fake_jar)
    sid = server["id"]
    started = await dashboard.http.post(f"/api/v2/servers/{sid}/start")
    assert started.status_code == 202, started.text
    assert started.json()["state"] == "starting"
    await dashboard.wait_state(sid, "running")
    events = [
        row[0]
        for row in await db.fetch(
            "SELECT event_type FROM domain_events WHERE aggregate_id=$1 ORDER BY position", sid
        )
    ]
    assert events[:4] == [
        "ServerCreated",
        "ServerConfigurationUpdated",
        "ServerStartRequested",
        "ServerStarting",
    ]
    assert "ServerStarted" in events
    server_dir = Path(stack_env["MCDASH_DATA_DIR"]) / "servers" / sid
    properties = (server_dir / "server.properties").read_text()
    assert f"server-port={server['port']}" in properties
    assert "max-players=20" in properties
    assert "eula=true" in (server_dir / "eula.txt").read_text()
    async with dashboard.console(sid) as ws:
        await read_until(ws, lambda line: "Done (" in line)
        await ws.send(json.dumps({"command": "list"}))
        lines = await read_until(ws, lambda line: "players online" in line)
        assert "There are 0 of a max of 20 players online" in lines[-1]
        await ws.send(json.dumps({"command": "fake:join Alice"}))
        await read_until(ws, lambda line: "Alice joined the game" in line)
    live = await dashboard.wait_live(sid, lambda live: live["players"] == ["Alice"])
    assert live["pid"] > 0
    assert live["players_online"] == 1
    assert live["rss_bytes"] > 10_000_000
    listing = (await dashboard.http.get("/api/v2/servers/")).json()
    assert listing["items"][0]["status"] == "running"
    stopped = await dashboard.http.post(f"/api/v2/servers/{sid}/stop")
    assert stopped.status_code == 202
    await dashboard.wait_state(sid, "stopped")
    stop_events = await db.fetch(
        "SELECT event_type FROM domain_events WHERE aggregate_id=$1 AND event_type IN"
        " ('ServerStopRequested', 'ServerStopped', 'ConsoleCommandExecuted') ORDER BY position",
        sid,
    )
    assert [r[0] for r in stop_events] == [
        "ConsoleCommandExecuted",
        "ConsoleCommandExecuted",
        "ServerStopRequested",
        "ServerStopped",
    ]
    logs = (await dashboard.http.get(f"/api/v2/servers/{sid}/logs?limit=5")).json()
    assert any("Stopping" in item["line"] or "Saving" in item["line"] for item in logs["items"])


async def test_worker_killed_and_restarted_readopts_the_running_server(
    dashboard, start_worker, fake_jar
):
    first = start_worker()
    server = await dashboard.create_custom_server(fake_jar, name="adopted")
    sid = server["id"]
    await dashboard.http.post(f"/api/v2/servers/{sid}/start")
    await dashboard.wait_state(sid, "running")
    pid = (await dashboard.wait_live(sid))["pid"]
    java_before = pid
    assert psutil.Process(pid).cmdline()[-3:] == ["-jar", "server.jar", "nogui"], "the JVM's pid"

    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)
    assert psutil.pid_exists(java_before), "the game server must survive its worker"
    start_worker()

    async with dashboard.console(sid) as ws:
        deadline = time.monotonic() + 60
        while True:
            sent = await dashboard.http.post(
                f"/api/v2/servers/{sid}/console", json={"command": "say after-restart"}
            )
            if sent.status_code == 202:
                break
            assert sent.status_code == 503, sent.text
            assert time.monotonic() < deadline
            await asyncio.sleep(0.5)
        # The 202 means the new worker has adopted the server: it listens for commands only
        # then (before, a command accepted during adoption was dropped and never showed).
        lines = await read_until(ws, lambda line: "[Server] after-restart" in line, timeout=60)
        assert lines
    await dashboard.wait_state(sid, "running")
    assert (await dashboard.wait_live(sid))["pid"] == pid
    await dashboard.http.post(f"/api/v2/servers/{sid}/stop")
    await dashboard.wait_state(sid, "stopped")
    assert (
        not psutil.pid_exists(java_before)
        or psutil.Process(java_before).status() == psutil.STATUS_ZOMBIE
    )
