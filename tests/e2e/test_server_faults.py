"""Faults a real node must survive: crashes, hung stops, busy ports, bad jars, absent workers."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import psutil
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.conftest import read_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def quitting_jar(tmp_path_factory) -> Path:
    """A jar that prints one line and exits with status 3 at once."""
    root = tmp_path_factory.mktemp("quit-jar")
    (root / "Quit.java").write_text(
        "public class Quit { public static void main(String[] a) {"
        ' System.out.println("bye"); System.exit(3); } }'
    )
    subprocess.run(["javac", "--release", "17", "Quit.java"], cwd=root, check=True)
    subprocess.run(
        ["jar", "--create", "--file", "quit.jar", "--main-class", "Quit", "Quit.class"],
        cwd=root,
        check=True,
    )
    return root / "quit.jar"


async def send(dashboard, sid: str, command: str) -> None:
    response = await dashboard.http.post(
        f"/api/v2/servers/{sid}/console", json={"command": command}
    )
    assert response.status_code == 202, response.text


async def test_crash_restart_policy_then_give_up(dashboard, start_worker, fake_jar, db):
    start_worker()
    server = await dashboard.create_custom_server(
        fake_jar,
        name="crashy",
        restart_policy={"mode": "on-failure", "max_restarts": 1, "backoff_seconds": 0.5},
    )
    sid = server["id"]
    await dashboard.http.post(f"/api/v2/servers/{sid}/start")
    await dashboard.wait_state(sid, "running")
    await send(dashboard, sid, "fake:crash")
    for _ in range(150):
        events = await dashboard.events(db, sid)
        if "ServerCrashed" in events:
            break
        await asyncio.sleep(0.1)
    await dashboard.wait_state(sid, "running", timeout=60)
    events = await dashboard.events(db, sid)
    crash = events.index("ServerCrashed")
    assert events[crash + 1 :].count("ServerStarted") == 1, events
    await send(dashboard, sid, "fake:crash")
    status = await dashboard.wait_state(sid, "crashed", timeout=30)
    assert "exit code 1" in status["status_message"]
    await asyncio.sleep(1.5)
    assert (await dashboard.http.get(f"/api/v2/servers/{sid}/status")).json()["state"] == "crashed"
    assert (await dashboard.events(db, sid)).count("ServerCrashed") == 2


async def test_a_hung_stop_escalates_to_sigterm_then_sigkill(dashboard, start_worker, fake_jar):
    worker = start_worker()
    server = await dashboard.create_custom_server(fake_jar, name="stubborn")
    sid = server["id"]
    await dashboard.http.post(f"/api/v2/servers/{sid}/start")
    await dashboard.wait_state(sid, "running")
    async with dashboard.console(sid) as ws:
        await ws.send(json.dumps({"command": "fake:ignore-stop"}))
        await read_until(ws, lambda line: "ignore" in line.lower())
    assert (await dashboard.http.post(f"/api/v2/servers/{sid}/stop")).status_code == 202
    await dashboard.wait_state(sid, "stopped", timeout=40)
    log = worker.log_path.read_text()
    assert "stop_timeout_sigterm" in log
    assert "stop_timeout_sigkill" in log


async def test_a_killed_wrapper_leaves_the_jvm_supervised_not_crashed(
    dashboard, start_worker, fake_jar
):
    """The status reports the JVM's pid. When the wrapper shell above it dies, the JVM keeps
    its port: it stays the server's, is stopped on request, and the port is free again."""
    start_worker()
    sid = (await dashboard.create_custom_server(fake_jar, name="orphaned"))["id"]
    await dashboard.http.post(f"/api/v2/servers/{sid}/start")
    await dashboard.wait_state(sid, "running")
    pid = (await dashboard.wait_live(sid))["pid"]
    jvm = psutil.Process(pid)
    assert jvm.cmdline()[-3:] == ["-jar", "server.jar", "nogui"], "the reported pid is the JVM"
    (wrapper,) = [p for p in jvm.parents() if "mcdash-server" in p.cmdline()]
    wrapper.kill()
    wrapper.wait(timeout=10)

    await asyncio.sleep(2)  # several watch and sample rounds
    status = await dashboard.wait_state(sid, "running")
    assert status["live"]["pid"] == pid
    assert jvm.is_running()
    await dashboard.http.post(f"/api/v2/servers/{sid}/stop")
    await dashboard.wait_state(sid, "stopped", timeout=30)
    assert not jvm.is_running() or jvm.status() == psutil.STATUS_ZOMBIE
    await dashboard.http.post(f"/api/v2/servers/{sid}/start")
    status = await dashboard.wait_state(sid, "running", timeout=30)
    assert "port" not in (status["status_message"] or "")


async def test_kill_and_restart_endpoints(dashboard, start_worker, fake_jar):
    start_worker()
    sid = (await dashboard.create_custom_server(fake_jar, name="cycled"))["id"]
    await dashboard.http.post(f"/api/v2/servers/{sid}/start")
    await dashboard.wait_state(sid, "running")
    before = (await dashboard.http.get(f"/api/v2/servers/{sid}")).json()
    restarted = await dashboard.http.post(f"/api/v2/servers/{sid}/restart")
    assert restarted.status_code == 202
    assert restarted.json()["state"] == "stopping"
    await dashboard.wait_state(sid, "starting", timeout=30)
    await dashboard.wait_state(sid, "running", timeout=30)
    assert (await dashboard.http.get(f"/api/v2/servers/{sid}")).json()["started_at"] != (
        before["started_at"]
    )
    killed = await dashboard.http.post(f"/api/v2/servers/{sid}/kill")
    assert killed.status_code == 202
    await dashboard.wait_state(sid, "stopped", timeout=15)


async def test_busy_port_and_a_jar_that_exits_at_once(
    dashboard, start_worker, fake_jar, quitting_jar
):
    start_worker()
    busy = await dashboard.create_custom_server(fake_jar, name="blocked")
    with socket.socket() as squatter:
        squatter.bind(("0.0.0.0", busy["port"]))
        squatter.listen()
        await dashboard.http.post(f"/api/v2/servers/{busy['id']}/start")
        status = await dashboard.wait_state(busy["id"], "stopped", timeout=30)
    assert "already in use" in status["status_message"]

    quitter = await dashboard.create_custom_server(quitting_jar, name="quitter")
    await dashboard.http.post(f"/api/v2/servers/{quitter['id']}/start")
    status = await dashboard.wait_state(quitter["id"], "crashed", timeout=30)
    assert "exit code 3" in status["status_message"]
    assert "bye" in status["status_message"]


async def test_start_waits_for_an_absent_worker(dashboard, start_worker, fake_jar):
    first = start_worker()  # a server is placed on an online node, its jar stored there
    sid = (await dashboard.create_custom_server(fake_jar, name="patient"))["id"]
    first.process.send_signal(signal.SIGTERM)
    first.process.wait(timeout=30)
    started = await dashboard.http.post(f"/api/v2/servers/{sid}/start")
    assert started.json()["node_online"] is False
    assert "offline" in started.json()["message"]
    await asyncio.sleep(1)
    assert (await dashboard.http.get(f"/api/v2/servers/{sid}/status")).json()["state"] == "starting"
    start_worker()
    await dashboard.wait_state(sid, "running", timeout=60)
    await dashboard.http.post(f"/api/v2/servers/{sid}/stop")
    await dashboard.wait_state(sid, "stopped")


async def closed_with(url: str, **kwargs) -> int | None:
    try:
        async with connect(url, **kwargs) as ws:
            await asyncio.wait_for(ws.recv(), timeout=10)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    return None


async def test_websocket_authentication_and_authorization(
    dashboard, live_server, start_worker, fake_jar
):
    start_worker()
    sid = (await dashboard.create_custom_server(fake_jar, name="guarded"))["id"]
    base = live_server.url.replace("http://", "ws://")
    console = f"{base}/ws/servers/{sid}/console"
    assert await closed_with(console) == 4401
    assert await closed_with(console, subprotocols=["bearer", "garbage"]) == 4401
    other_sid = "00000000-0000-0000-0000-000000000000"
    assert (
        await closed_with(
            f"{base}/ws/servers/{other_sid}/console", subprotocols=["bearer", dashboard.token]
        )
        == 4404
    )
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        body = {"username": "stranger", "email": "s@example.com", "password": "Outsider-Pass-9"}
        await http.post("/api/v2/auth/register", json=body)
        users = (await dashboard.http.get("/api/v2/admin/users?search=stranger")).json()
        await dashboard.http.patch(f"/api/v2/users/{users['items'][0]['id']}/approve")
        token = (
            await http.post(
                "/api/v2/auth/login",
                json={"username": "stranger", "password": "Outsider-Pass-9"},
            )
        ).json()["access_token"]
    assert await closed_with(console, subprotocols=["bearer", token]) == 4404

    ticket = (await dashboard.http.post("/api/v2/ws/tickets")).json()["ticket"]
    async with connect(f"{base}/ws/servers/{sid}/status?ticket={ticket}") as ws:
        await ws.send("ignored")
    assert await closed_with(f"{base}/ws/servers/{sid}/logs?ticket={ticket}") == 4401
    async with connect(console, subprotocols=["bearer", dashboard.token]) as ws:
        await ws.send("not json")
        reply = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        assert reply["status"] == 422
        await ws.send(json.dumps({"command": "list"}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        assert reply["status"] == 409
        await ws.send(json.dumps({"command": "say a\nop Mallory"}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        assert reply["status"] == 422
