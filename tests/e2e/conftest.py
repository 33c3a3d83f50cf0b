"""A real `mcdash api` process (uvicorn) on a free port, against the test database and Redis."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest


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


GAME_PORTS = 31000 + (os.getpid() % 200) * 20


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
        "MCDASH_ARGON2_TIME_COST": "1",
        "MCDASH_ARGON2_MEMORY_KIB": "1024",
        "MCDASH_RATE_LIMIT_CONSOLE": "1000/minute",
        "MCDASH_SERVER_PORT_RANGE_START": str(GAME_PORTS),
        "MCDASH_SERVER_PORT_RANGE_END": str(GAME_PORTS + 19),
        "MCDASH_STATUS_INTERVAL_SECONDS": "0.5",
        "MCDASH_SERVER_STOP_TIMEOUT_SECONDS": "5",
        "MCDASH_SERVER_TERM_TIMEOUT_SECONDS": "3",
        "MCDASH_WORKER_HEARTBEAT_SECONDS": "1",
        "MCDASH_LOG_LEVEL": "INFO",
        "FAKE_MC_STARTUP_MS": "200",
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


def _kill_game_servers(data_dir: Path) -> None:
    """JVMs outlive workers by design; a test must not leave them behind."""
    for process in psutil.process_iter(["pid", "cwd"]):
        try:
            cwd = process.info["cwd"] or ""
            if cwd.startswith(str(data_dir)):
                process.kill()
        except psutil.Error:
            continue


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
