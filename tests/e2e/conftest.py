"""A real `mcdash api` process (uvicorn) on a free port, against the test database and Redis."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from redis import Redis
from websockets.asyncio.client import connect

from app.shared.nodes import node_key
from tests.fake_server.build import build_fake_jar


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} was not ready in {timeout} s")


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[str]
    log_path: Path

    def log_lines(self) -> list[str]:
        return self.log_path.read_text().splitlines()


@dataclass
class Scheduler:
    process: subprocess.Popen[str]
    metrics_url: str
    log_path: Path


def run_scheduler(env: dict[str, str], tmp_path: Path) -> Iterator[Scheduler]:
    """A real `mcdash scheduler` process on `env`, serving /metrics on a free port."""
    port = free_port()
    log_path = tmp_path / "scheduler.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "scheduler"],
            env={**env, "MCDASH_SCHEDULER_METRICS_LISTEN": f"127.0.0.1:{port}"},
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        yield Scheduler(proc, f"http://127.0.0.1:{port}/metrics", log_path)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _game_ports() -> int:
    """The first of 200 game ports for this test process: below the kernel's ephemeral range
    (32768 and up), where a client socket of the suite could hold a port a server is given,
    and apart for each xdist worker (and, by pid, for a second run beside this one)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) if worker.isdigit() else 0
    return 20000 + (index % 8) * 1200 + (os.getpid() % 6) * 200


GAME_PORTS = _game_ports()


@pytest.fixture
def stack_env(settings, clean) -> dict[str, str]:
    """What the API and worker processes of one test share: databases, data dir, key, ports."""
    return {
        **os.environ,
        "MCDASH_DATABASE_URL": settings.database_url,
        "MCDASH_REDIS_URL": settings.redis_url,
        "MCDASH_DATA_DIR": str(settings.data_dir),
        "MCDASH_JWT_SECRET": settings.jwt_secret.get_secret_value(),
        "MCDASH_RATE_LIMIT_AUTH": "1000/minute",
        "MCDASH_RATE_LIMIT_LOGIN_USERNAME": "1000/minute",
        "MCDASH_RATE_LIMIT_API_GENERAL": "1000000/minute",
        "MCDASH_RATE_LIMIT_WEBSOCKET": "1000000/minute",
        "MCDASH_ARGON2_TIME_COST": "1",
        "MCDASH_ARGON2_MEMORY_KIB": "1024",
        "MCDASH_RATE_LIMIT_CONSOLE": "100000/minute",
        "MCDASH_SERVER_PORT_RANGE_START": str(GAME_PORTS),
        "MCDASH_SERVER_PORT_RANGE_END": str(GAME_PORTS + 199),
        "MCDASH_STATUS_INTERVAL_SECONDS": "0.5",
        "MCDASH_SERVER_STOP_TIMEOUT_SECONDS": "5",
        "MCDASH_SERVER_TERM_TIMEOUT_SECONDS": "3",
        "MCDASH_WORKER_HEARTBEAT_SECONDS": "1",
        # Each worker's node agent on a port of its own; the API reads it from the node record.
        "MCDASH_NODE_LISTEN": "127.0.0.1:0",
        "MCDASH_LOG_LEVEL": "INFO",
        "FAKE_MC_STARTUP_MS": "200",
        # Game servers get an allowlisted environment: the fake's settings must be let through.
        "MCDASH_SERVER_ENV_PASSTHROUGH": '["FAKE_MC_*"]',
    }


@dataclass
class Worker:
    process: subprocess.Popen[str]
    log_path: Path


@pytest.fixture
def start_worker(stack_env, tmp_path) -> Iterator[Callable[..., Worker]]:
    """Start `mcdash worker --node local` processes; every one is stopped after the test."""
    started: list[Worker] = []

    def start(node: str = "local") -> Worker:
        log_path = tmp_path / f"worker-{len(started)}.log"
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "worker", "--node", node],
                env=stack_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        worker = Worker(process=proc, log_path=log_path)
        started.append(worker)
        _wait_for_agent(worker, stack_env["MCDASH_REDIS_URL"], node)
        return worker

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGTERM)
            try:
                worker.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.process.kill()
    _kill_game_servers(Path(stack_env["MCDASH_DATA_DIR"]))


def _wait_for_agent(worker: Worker, redis_url: str, node: str, timeout: float = 60) -> None:
    """Until this worker's agent listens on the URL its node record names: the API reaches a
    node through that record, so a test's first file or backup call must not find it missing."""
    redis = Redis.from_url(redis_url, decode_responses=True)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if worker.process.poll() is not None:
                pytest.fail(f"worker exited: {worker.log_path.read_text()[-4000:]}")
            url = redis.hget(node_key(node), "url") or ""
            port = url.rsplit(":", 1)[-1].rstrip("/")
            try:
                listening = {
                    c.laddr.port
                    for c in psutil.Process(worker.process.pid).net_connections("tcp")
                    if c.status == psutil.CONN_LISTEN
                }
            except psutil.Error:
                listening = set()
            if port.isdigit() and int(port) in listening:
                return
            time.sleep(0.1)
    finally:
        redis.close()
    pytest.fail(f"worker's agent never advertised: {worker.log_path.read_text()[-4000:]}")


def _kill_game_servers(data_dir: Path) -> None:
    """JVMs outlive workers by design; a test must not leave them behind. A sandboxed JVM's
    working directory is its view inside the sandbox, so it is found by its launcher, whose
    command line names the server's directory, and killed with everything under it."""
    root = f"{data_dir}{os.sep}"
    doomed: dict[int, psutil.Process] = {}
    for process in psutil.process_iter(["pid", "cwd", "cmdline"]):
        try:
            cwd = process.info["cwd"] or ""
            cmdline = process.info["cmdline"] or []
            if cwd.startswith(root) or any(root in argument for argument in cmdline):
                for member in [process, *process.children(recursive=True)]:
                    doomed[member.pid] = member
        except psutil.Error:
            continue
    for process in doomed.values():
        try:
            process.kill()
        except psutil.Error:
            continue
    psutil.wait_procs(list(doomed.values()), timeout=10)


@pytest.fixture
def live_server(stack_env, tmp_path) -> Iterator[LiveServer]:
    port = free_port()
    env = stack_env
    log_path = tmp_path / "api.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "api", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        yield LiveServer(url=url, process=proc, log_path=log_path)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


PASSWORD = "Lifecycle-Pass-42"


@pytest.fixture(scope="session")
def fake_jar(tmp_path_factory) -> Path:
    return build_fake_jar(tmp_path_factory.mktemp("fake-jar"))


class Dashboard:
    """A logged-in admin talking to the live API."""

    def __init__(self, http: httpx.AsyncClient, url: str, token: str) -> None:
        self.http = http
        self.url = url
        self.token = token

    async def create_custom_server(
        self, jar: Path, name: str = "survival", **extra: Any
    ) -> dict[str, Any]:
        created = await self.http.post(
            "/api/v2/servers/",
            json={
                "name": name,
                "server_type": "custom",
                "version": "1.20.4",
                "memory_mb": 512,
                "eula_accepted": True,
                **extra,
            },
        )
        assert created.status_code == 201, created.text
        server = created.json()
        with jar.open("rb") as handle:
            uploaded = await self.http.put(
                f"/api/v2/servers/{server['id']}/jar",
                files={"file": ("server.jar", handle, "application/java-archive")},
            )
        assert uploaded.status_code == 200, uploaded.text
        return server

    async def wait_state(self, server_id: str, state: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = (await self.http.get(f"/api/v2/servers/{server_id}/status")).json()
            if status["state"] == state:
                return status
            assert time.monotonic() < deadline, f"still {status} after {timeout} s"
            await asyncio.sleep(0.2)

    async def wait_live(
        self, server_id: str, until: Callable[[dict[str, Any]], bool] = bool, timeout: float = 15
    ) -> dict[str, Any]:
        """Poll the status until the worker's live sample satisfies `until`."""
        deadline = time.monotonic() + timeout
        while True:
            live = (await self.http.get(f"/api/v2/servers/{server_id}/status")).json()["live"]
            if live and until(live):
                return dict(live)
            assert time.monotonic() < deadline, f"live status still {live} after {timeout} s"
            await asyncio.sleep(0.2)

    async def events(self, db: Any, server_id: str) -> list[str]:
        rows = await db.fetch(
            "SELECT event_type FROM domain_events WHERE aggregate_id=$1 ORDER BY position",
            uuid.UUID(server_id),
        )
        return [row[0] for row in rows]

    def console(self, server_id: str):
        ws_url = self.url.replace("http://", "ws://") + f"/ws/servers/{server_id}/console"
        return connect(ws_url, subprotocols=["bearer", self.token])


@pytest.fixture
async def dashboard(live_server):
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        body = {"username": "owner", "email": "owner@example.com", "password": PASSWORD}
        assert (await http.post("/api/v2/auth/register", json=body)).status_code == 201
        login = await http.post(
            "/api/v2/auth/login", json={"username": "owner", "password": PASSWORD}
        )
        token = login.json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        yield Dashboard(http, live_server.url, token)


async def read_until(ws, predicate, timeout: float = 15) -> list[str]:
    """Collect console lines from a WebSocket until one matches."""
    seen: list[str] = []
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] in ("lines", "backlog"):
                for line in message["lines"]:
                    seen.append(line["line"])
                    if predicate(line["line"]):
                        return seen
            elif message["type"] == "error":
                raise AssertionError(message)
