"""The mcdash CLI, the node worker and the scheduler as real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest
from redis import Redis
from rq import Callback, Queue
from rq.job import Job

from app.node_jobs import ping
from app.scheduler import HEARTBEAT_KEY, LOCK_KEY, LeaderLock, run_scheduler
from app.shared.jobqueue import SERIALIZER, json_queue
from app.shared.nodes import node_key, queue_names

pytestmark = pytest.mark.usefixtures("clean")


def cli_env(settings, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "MCDASH_DATABASE_URL": settings.database_url,
        "MCDASH_REDIS_URL": settings.redis_url,
        "MCDASH_DATA_DIR": str(settings.data_dir),
        "MCDASH_JWT_SECRET": settings.jwt_secret.get_secret_value(),
        "MCDASH_LOG_LEVEL": "WARNING",
        **extra,
    }
    env.pop("MCDASH_ADMIN_PASSWORD", None)
    return env


def mcdash(settings, *args: str, input: str | None = None, timeout: float = 60):
    env = cli_env(settings)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        input=input,
        timeout=timeout,
        check=False,
    )


def test_migrate_is_idempotent(settings):
    result = mcdash(settings, "migrate")
    assert result.returncode == 0, result.stderr


async def test_create_admin_then_refuses_duplicates_and_bad_input(settings, db):
    def run(*args: str, input: str | None = None):
        return asyncio.to_thread(mcdash, settings, "create-admin", *args, input=input)

    ok = await run(
        "--username", "ops", "--email", "ops@example.com", "--password", "Sturdy-Pass-42"
    )
    assert ok.returncode == 0, ok.stderr
    assert "created admin ops" in ok.stdout
    dup = await run(
        "--username", "ops", "--email", "o2@example.com", "--password", "Sturdy-Pass-42"
    )
    assert dup.returncode == 2
    assert "username is already registered" in dup.stderr
    weak = await run("--username", "ops2", "--email", "o3@example.com", "--password", "weak")
    assert weak.returncode == 2
    assert "password must be at least" in weak.stderr
    no_password = await run("--username", "ops3", "--email", "o4@example.com", input="")
    assert no_password.returncode == 2
    assert "--password" in no_password.stderr
    rows = await db.fetch("SELECT username, role, is_approved FROM users")
    assert [tuple(row) for row in rows] == [("ops", "admin", True)]


def test_cli_without_database_url_is_a_clear_error(settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCDASH_")}
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=settings.data_dir.parent,
    )
    assert result.returncode == 2
    assert "MCDASH_DATABASE_URL is not set" in result.stderr


def test_worker_runs_jobs_of_its_node_and_heartbeats(settings):
    redis = Redis.from_url(settings.redis_url)
    job = json_queue(queue_names("node-a")[0], redis).enqueue(ping, "hello")
    other = json_queue(queue_names("node-b")[0], redis).enqueue(ping, "not mine")
    result = mcdash(settings, "worker", "--node", "node-a", "--burst")
    assert result.returncode == 0, result.stderr
    job.refresh()
    assert job.get_status() == "finished"
    assert job.return_value()["message"] == "hello"
    assert other.get_status() == "queued"
    assert not redis.exists(node_key("node-a")), "a stopped worker removes its node record"


def test_worker_refuses_forged_jobs(settings, tmp_path):
    """Anyone who can write to Redis could queue a pickle or name any function: both fail unrun,
    and the jobs behind them still run."""
    redis = Redis.from_url(settings.redis_url)
    proof = tmp_path / "pwned"
    queue = json_queue(queue_names("node-f")[0], redis)
    pickled = Queue(queue_names("node-f")[0], connection=redis).enqueue(
        "os.system", f"touch {proof}-pickle"
    )
    function = queue.enqueue("os.system", f"touch {proof}-function")
    callback = queue.enqueue(ping, "x", on_success=Callback("os.getcwd"))
    fine = queue.enqueue(ping, "still works")
    result = mcdash(settings, "worker", "--node", "node-f", "--burst")
    assert result.returncode == 0, result.stderr
    for forged in (pickled, function):
        assert Job.fetch(forged.id, connection=redis, serializer=SERIALIZER).get_status() == (
            "failed"
        )
    assert callback.get_status(refresh=True) == "failed"
    assert fine.get_status(refresh=True) == "finished"
    assert not list(tmp_path.glob("pwned*"))


def test_worker_stops_cleanly_on_sigterm(settings):
    env = cli_env(settings, MCDASH_WORKER_HEARTBEAT_SECONDS="0.2")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker", "--node", "node-c"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    redis = Redis.from_url(settings.redis_url)
    deadline = time.monotonic() + 60
    while not redis.exists(node_key("node-c")):
        assert time.monotonic() < deadline, "worker never registered its node"
        time.sleep(0.1)
    assert int(redis.hget(node_key("node-c"), "pid")) == proc.pid
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert not redis.exists(node_key("node-c"))


async def test_scheduler_takes_the_lease_only_once(settings):
    from redis.asyncio import Redis as AsyncRedis

    redis = AsyncRedis.from_url(settings.redis_url, decode_responses=True)
    try:
        rival = LeaderLock(redis, ttl_seconds=5)
        stop = asyncio.Event()
        fast = settings.model_copy(update={"scheduler_lock_ttl_seconds": 1.5})
        task = asyncio.create_task(run_scheduler(fast, stop=stop))
        deadline = asyncio.get_running_loop().time() + 10
        while not await redis.get(HEARTBEAT_KEY):
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        holder = await redis.get(LOCK_KEY)
        assert holder
        assert holder != rival.token
        assert await rival.acquire_or_renew() is False
        stop.set()
        await asyncio.wait_for(task, timeout=10)
        assert await redis.get(LOCK_KEY) is None, "a stopping leader releases its lease"
        assert await rival.acquire_or_renew() is True
        await rival.release()
    finally:
        await redis.aclose()


@pytest.mark.parametrize(("euid", "dumpable"), [(1000, 0), (0, 1)], ids=["not-root", "root"])
def test_a_long_running_command_not_run_as_root_hides_its_proc_entries(monkeypatch, euid, dumpable):
    """Without a sandbox a game server runs as the worker's own user: /proc/<worker>/environ
    (the database URL, the Redis password) must not be readable by it."""
    import ctypes

    from app import cli

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    monkeypatch.setattr(cli.os, "geteuid", lambda: euid)
    try:
        cli._keep_proc_private()
        assert prctl(3, 0, 0, 0, 0) == dumpable  # PR_GET_DUMPABLE
    finally:
        prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE: this test process is dumpable again
