"""`mcdash up` on a machine with nothing configured: embedded PostgreSQL and Redis, then serve."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e.conftest import GAME_PORTS, PASSWORD, free_port, wait_ready

pytestmark = pytest.mark.e2e


def start_up(data_dir: Path, **settings: str) -> tuple[subprocess.Popen[str], str]:
    """`mcdash up` with nothing configured but `settings` (MCDASH_ names); and its URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCDASH_")}
    # The node agent's default port, 8765, would be shared by the runs on other test workers.
    env["MCDASH_NODE_LISTEN"] = "127.0.0.1:0"
    env.update(settings)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "up", "--data-dir", str(data_dir), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, f"http://127.0.0.1:{port}"


def test_up_serves_docs_and_ready_with_embedded_services_and_stops_on_ctrl_c(tmp_path):
    data_dir = tmp_path / "mcdash-data"
    proc, url = start_up(data_dir)
    try:
        wait_ready(url, proc, timeout=120)
        ready = httpx.get(f"{url}/ready").json()
        assert ready == {
            "status": "ready",
            "checks": {"database": "ok", "migrations": "ok", "redis": "ok"},
        }
        assert httpx.get(f"{url}/docs").status_code == 200
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 5, "api, relay, worker, scheduler and the embedded servers run"
        # The API leaves events to the relay process: a second registration's approval
        # request reaches the admin (the first user) only through it.
        _registers_and_is_notified(url)
        assert (data_dir / "postgres" / "PG_VERSION").exists()
        assert (data_dir / "jwt.key").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr[-2000:]
    assert not any(
        child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children
    )
    assert "mcdash_stopped" in stderr


def _registers_and_is_notified(url: str) -> None:
    password = "Up-Relay-Pass-42"
    with httpx.Client(base_url=url, timeout=10) as http:
        for name in ("boss", "newcomer"):
            body = {"username": name, "email": f"{name}@example.com", "password": password}
            assert http.post("/api/v2/auth/register", json=body).status_code == 201
        login = http.post("/api/v2/auth/login", json={"username": "boss", "password": password})
        http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        deadline = time.monotonic() + 30
        while True:
            listed = http.get("/api/v2/notifications").json()
            if any("newcomer" in json.dumps(item) for item in listed["items"]):
                return
            assert time.monotonic() < deadline, f"the relay never notified the admin: {listed}"
            time.sleep(0.2)


def _child(up: psutil.Process, role: str) -> psutil.Process | None:
    """The `mcdash <role>` child of `mcdash up`."""
    for child in up.children():
        try:
            command = child.cmdline()
        except psutil.Error:
            continue
        if "app.cli" in command and command[command.index("app.cli") + 1] == role:
            return child
    return None


def _replaced(up: psutil.Process, role: str, old_pid: int, timeout: float = 60) -> psutil.Process:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child = _child(up, role)
        if child is not None and child.pid != old_pid:
            return child
        time.sleep(0.2)
    raise AssertionError(f"no new {role} after {timeout} s")


def _wait_status(http: httpx.Client, sid: str, state: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = http.get(f"/api/v2/servers/{sid}/status").json()
        if status["state"] == state and status["live"]:
            return dict(status)
        assert time.monotonic() < deadline, status
        time.sleep(0.3)


def test_up_restarts_each_crashed_child_while_the_rest_keeps_serving(tmp_path, fake_jar):
    """kill -9 of the worker, the scheduler and the API in turn: each comes back, the API
    answers, and the game server keeps running and is adopted again by the new worker."""
    data_dir = tmp_path / "mcdash-data"
    proc, url = start_up(
        data_dir,
        MCDASH_SERVER_PORT_RANGE_START=str(GAME_PORTS),
        MCDASH_SERVER_PORT_RANGE_END=str(GAME_PORTS + 199),
        MCDASH_WORKER_HEARTBEAT_SECONDS="1",
    )
    up = psutil.Process(proc.pid)
    try:
        wait_ready(url, proc, timeout=120)
        with httpx.Client(base_url=url, timeout=30) as http:
            body = {"username": "owner", "email": "owner@example.com", "password": PASSWORD}
            assert http.post("/api/v2/auth/register", json=body).status_code == 201
            token = http.post(
                "/api/v2/auth/login", json={"username": "owner", "password": PASSWORD}
            ).json()["access_token"]
            http.headers["Authorization"] = f"Bearer {token}"
            created = http.post(
                "/api/v2/servers/",
                json={
                    "name": "kept",
                    "server_type": "custom",
                    "version": "1.20.4",
                    "memory_mb": 512,
                    "eula_accepted": True,
                },
            )
            assert created.status_code == 201, created.text
            sid = created.json()["id"]
            with fake_jar.open("rb") as jar:
                uploaded = http.put(f"/api/v2/servers/{sid}/jar", files={"file": ("s.jar", jar)})
            assert uploaded.status_code == 200, uploaded.text
            assert http.post(f"/api/v2/servers/{sid}/start").status_code == 202
            jvm = _wait_status(http, sid, "running")["live"]["pid"]

            for role in ("worker", "scheduler", "api"):
                old = _child(up, role)
                assert old is not None, role
                old.kill()
                new = _replaced(up, role, old.pid)
                wait_ready(url, proc, timeout=60)
                assert new.is_running()
                assert proc.poll() is None, "mcdash up itself keeps running"
                assert psutil.pid_exists(jvm), f"the game server survives the {role}'s death"
            # The new worker adopted the JVM: it reports it and obeys a stop.
            assert _wait_status(http, sid, "running")["live"]["pid"] == jvm
            assert http.post(f"/api/v2/servers/{sid}/stop").status_code == 202
            deadline = time.monotonic() + 60
            while http.get(f"/api/v2/servers/{sid}/status").json()["state"] != "stopped":
                assert time.monotonic() < deadline
                time.sleep(0.3)
        assert stat.S_IMODE(data_dir.stat().st_mode) & 0o007 == 0, "others cannot enter it"
        for secret in ("jwt.key", "postgres.password", "redis.password"):
            assert stat.S_IMODE((data_dir / secret).stat().st_mode) == 0o600, secret
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr[-2000:]
    assert stderr.count('"child_exited"') >= 3
