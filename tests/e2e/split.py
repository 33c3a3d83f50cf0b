"""The split topology: an API with a data directory of its own, two node workers (a and b) on
this machine with a data directory, game ports and node agent each, and the scheduler; all on
one database, one Redis and one pair of secrets."""

from __future__ import annotations

import hashlib
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import (
    GAME_PORTS,
    PASSWORD,
    Dashboard,
    Worker,
    _kill_game_servers,
    _wait_for_agent,
    free_port,
    wait_ready,
)

# Each node's own game ports, inside the 200 this xdist worker owns.
PORT_RANGES = {"a": (GAME_PORTS, GAME_PORTS + 99), "b": (GAME_PORTS + 100, GAME_PORTS + 199)}


@dataclass
class Process:
    name: str
    process: subprocess.Popen[str]
    log_path: Path
    data_dir: Path

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


@dataclass
class Split:
    api_url: str
    redis_url: str
    api: Process
    scheduler: Process
    nodes: dict[str, Process]

    def server_dir(self, node: str, server_id: str) -> Path:
        return self.nodes[node].data_dir / "servers" / server_id

    def stop_node(self, name: str) -> None:
        """Stop a node's worker the way an operator would (its record goes with it)."""
        _stop(self.nodes[name])


def _spawn(name: str, args: list[str], env: dict[str, str], tmp_path: Path) -> Process:
    data_dir = Path(env["MCDASH_DATA_DIR"])
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    log_path = tmp_path / f"{name}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    return Process(name=name, process=proc, log_path=log_path, data_dir=data_dir)


def _stop(process: Process, timeout: float = 30) -> None:
    if process.process.poll() is None:
        process.process.send_signal(signal.SIGTERM)
        try:
            process.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.process.kill()
            process.process.wait(timeout=10)


@pytest.fixture(name="split")
def split_fixture(stack_env: dict[str, str], tmp_path: Path) -> Iterator[Split]:
    """Start the four processes at once, then wait for each node's agent and the API."""
    shared = {**stack_env, "MCDASH_NODE_SECRET": secrets.token_urlsafe(48)}
    started: list[Process] = []
    try:
        nodes: dict[str, Process] = {}
        for name, (start, end) in PORT_RANGES.items():
            env = {
                **shared,
                "MCDASH_DATA_DIR": str(tmp_path / f"node-{name}"),
                "MCDASH_NODE_NAME": name,
                "MCDASH_NODE_LISTEN": "127.0.0.1:0",
                "MCDASH_SERVER_PORT_RANGE_START": str(start),
                "MCDASH_SERVER_PORT_RANGE_END": str(end),
            }
            nodes[name] = _spawn(f"worker-{name}", ["worker", "--node", name], env, tmp_path)
            started.append(nodes[name])
        scheduler_env = {**shared, "MCDASH_DATA_DIR": str(tmp_path / "scheduler")}
        scheduler = _spawn("scheduler", ["scheduler"], scheduler_env, tmp_path)
        started.append(scheduler)
        port = free_port()
        api_env = {**shared, "MCDASH_DATA_DIR": str(tmp_path / "api")}
        api = _spawn("api", ["api", "--port", str(port)], api_env, tmp_path)
        started.append(api)

        for name, node in nodes.items():
            worker = Worker(process=node.process, log_path=node.log_path)
            _wait_for_agent(worker, shared["MCDASH_REDIS_URL"], name)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, api.process)
        except (RuntimeError, TimeoutError) as error:
            pytest.fail(f"the API did not start ({error}): {api.log_tail()}")
        assert scheduler.process.poll() is None, scheduler.log_tail()
        yield Split(
            api_url=url,
            redis_url=shared["MCDASH_REDIS_URL"],
            api=api,
            scheduler=scheduler,
            nodes=nodes,
        )
    finally:
        for process in reversed(started):  # the API first, the workers last
            _stop(process)
        for name in PORT_RANGES:
            _kill_game_servers(tmp_path / f"node-{name}")
        for process in started:  # shown by pytest when the test failed
            print(f"--- {process.name} ---\n{process.log_tail(3000)}")


@pytest.fixture(name="admin")
async def admin_fixture(split: Split) -> AsyncIterator[Dashboard]:
    """The first user, an admin, logged in to the split API."""
    async with httpx.AsyncClient(base_url=split.api_url, timeout=30) as http:
        body = {"username": "owner", "email": "owner@example.com", "password": PASSWORD}
        registered = await http.post("/api/v2/auth/register", json=body)
        assert registered.status_code == 201, registered.text
        login = await http.post(
            "/api/v2/auth/login", json={"username": "owner", "password": PASSWORD}
        )
        token = login.json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        yield Dashboard(http, split.api_url, token)


async def create_server(
    dashboard: Dashboard, name: str, *, node: str | None = None, **extra: Any
) -> httpx.Response:
    """POST a custom server, on `node` or placed by the API."""
    body: dict[str, Any] = {
        "name": name,
        "server_type": "custom",
        "version": "1.20.4",
        "memory_mb": 512,
        "eula_accepted": True,
        **extra,
    }
    if node is not None:
        body["node"] = node
    return await dashboard.http.post("/api/v2/servers/", json=body)


async def create_on(dashboard: Dashboard, jar: Path, name: str, node: str) -> dict[str, Any]:
    """A custom server on `node` with the fake jar uploaded (through that node's agent)."""
    created = await create_server(dashboard, name, node=node)
    assert created.status_code == 201, created.text
    server: dict[str, Any] = created.json()
    assert server["node"] == node, server
    with jar.open("rb") as handle:
        uploaded = await dashboard.http.put(
            f"/api/v2/servers/{server['id']}/jar",
            files={"file": ("server.jar", handle, "application/java-archive")},
        )
    assert uploaded.status_code == 200, uploaded.text
    return server


def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under `root` (runtime files too): mode, mtime and SHA-256."""
    seen: dict[str, tuple[int, int, str]] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        seen[path.relative_to(root).as_posix()] = (info.st_mode, info.st_mtime_ns, digest)
    return seen


def written(root: Path) -> set[str]:
    """The top-level entries of a data directory."""
    return {path.name for path in root.iterdir()} if root.exists() else set()
