"""A hostile game server: everything it tries against the machine fails, and it still runs.

The hostile jar (tests/fake_server/HostileProbe.java) is the fake server behind a probe that,
before the server starts, tries to read the worker's secrets and another server's files, write
outside its directory, write to Redis and log in to PostgreSQL without their passwords, and
kill the worker. The groups, files and backups flows must then still work on it.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import psutil
import pytest
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from tests.e2e.test_backups import wait_backup
from tests.e2e.test_groups import console_reply, group, whitelist_reply
from tests.fake_server.build import build_hostile_jar

pytestmark = pytest.mark.e2e

ALLOWED_ENVIRONMENT = {"PATH", "HOME", "JAVA_HOME", "LANG", "LC_ALL", "TZ", "PWD"}  # PWD: bwrap
DECOYS = ("jwt.key", "postgres.password", "redis.password")


@pytest.fixture(scope="session")
def hostile_jar(tmp_path_factory) -> Path:
    return build_hostile_jar(tmp_path_factory.mktemp("hostile-jar"))


def probe_targets(data_dir: Path, victim: str, hostile: str, worker_pid: int, settings) -> dict:
    """What the probe attacks: the secrets a `mcdash up` keeps, the victim, the databases."""
    redis = urlparse(settings.redis_url)
    targets = {
        "read.jwt-key": data_dir / "jwt.key",
        "read.jwt-key-relative": "../../jwt.key",
        "read.redis-password": data_dir / "redis.password",
        "read.postgres-password": data_dir / "postgres.password",
        "read.victim-file": data_dir / "servers" / victim / "secret.txt",
        "read.victim-file-relative": f"../{victim}/secret.txt",
        "read.worker-environment": f"/proc/{worker_pid}/environ",
        "write.data-dir": data_dir / "pwned",
        "write.relative-data-dir": "../../pwned-relative",
        "write.victim-dir": data_dir / "servers" / victim / "pwned",
        "write.host-tmp": f"/tmp/mcdash-pwned-{hostile}",  # lands in its private /tmp
        "write.host-root": f"/mcdash-pwned-{hostile}",
        "redis": f"{redis.hostname}:{redis.port}",
        "kill": worker_pid,
    }
    database = make_url(settings.database_url)
    socket_dir = database.query.get("host")
    if isinstance(socket_dir, str):
        targets["postgres.socket"] = f"{socket_dir}/.s.PGSQL.5432"
    else:
        targets["postgres.tcp"] = f"{database.host}:{database.port or 5432}"
    return {key: str(value) for key, value in targets.items()}


def parse_results(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


async def wait_file(http, url: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        response = await http.get(url)
        if response.status_code == 200:
            return str(response.json()["content"])
        assert time.monotonic() < deadline, response.text
        await asyncio.sleep(0.3)


@pytest.fixture(params=["auto", "none"], ids=["bubblewrap-where-it-works", "accounts-only"])
def sandbox_mode(request, stack_env) -> str:
    """Both layers on their own: the sandbox, and (under root) the server's own account."""
    stack_env["MCDASH_SERVER_SANDBOX"] = request.param
    return str(request.param)


async def test_hostile_server_reaches_nothing_but_its_own_directory(
    sandbox_mode, dashboard, start_worker, fake_jar, hostile_jar, stack_env, settings
):
    data_dir = Path(stack_env["MCDASH_DATA_DIR"])
    worker = start_worker()
    for name in DECOYS:  # a `mcdash up` keeps these here, 0600
        path = data_dir / name
        path.write_text(f"secret {name}\n")
        path.chmod(0o600)
    victim = (await dashboard.create_custom_server(fake_jar, name="victim"))["id"]
    http = dashboard.http
    await http.post(f"/api/v2/servers/{victim}/start")
    await dashboard.wait_state(victim, "running")
    wrote = await http.put(
        f"/api/v2/servers/{victim}/files/secret.txt", json={"content": "the victim's own\n"}
    )
    assert wrote.status_code in (200, 201), wrote.text

    hostile = (await dashboard.create_custom_server(hostile_jar, name="hostile"))["id"]
    # The first start creates the directory; then the probe's configuration goes in through the
    # file manager, which must leave it readable by the server's own account.
    await http.post(f"/api/v2/servers/{hostile}/start")
    await dashboard.wait_state(hostile, "running")
    await http.post(f"/api/v2/servers/{hostile}/stop")
    await dashboard.wait_state(hostile, "stopped")
    targets = probe_targets(data_dir, victim, hostile, worker.process.pid, settings)
    config = "".join(f"{key}={value}\n" for key, value in targets.items())
    put = await http.put(
        f"/api/v2/servers/{hostile}/files/hostile-probe.properties", json={"content": config}
    )
    assert put.status_code in (200, 201), put.text

    await http.post(f"/api/v2/servers/{hostile}/start")
    await dashboard.wait_state(hostile, "running")
    results = parse_results(
        await wait_file(http, f"/api/v2/servers/{hostile}/files/hostile-probe-results.properties")
    )

    assert set(targets) <= set(results), results
    redis_has_password = bool(urlparse(settings.redis_url).password)
    database_has_password = bool(make_url(settings.database_url).password)
    for key in targets:
        if key == "redis" and not redis_has_password:
            continue  # the suite runs against a Redis without a password: nothing to prove
        if key.startswith("postgres") and not database_has_password:
            continue
        if key == "write.host-tmp":
            continue  # the server has a /tmp of its own; the host's stays untouched (below)
        assert results[key].startswith("denied"), f"{key}: {results[key]}"
    environment = set(results["env"].split(","))
    assert environment - ALLOWED_ENVIRONMENT <= {
        name for name in environment if name.startswith("FAKE_MC_")
    }, environment
    node = (await http.get("/api/v2/nodes/")).json()["items"][0]
    if sandbox_mode == "none":
        assert node["isolation"]["sandbox"] == "none"
    if node["isolation"]["sandbox"] == "bubblewrap":
        assert int(results["processes"]) <= 4, "a sandboxed server sees only its own processes"

    # Nothing happened outside: no file, no Redis key, the worker lives, the victim is intact.
    for key, target in targets.items():
        if key.startswith("write."):
            resolved = (data_dir / "servers" / hostile / target).resolve()
            assert not resolved.exists(), resolved
    redis = Redis.from_url(settings.redis_url)
    try:
        assert await redis.exists("mcdash:pwned") == 0
    finally:
        await redis.aclose()
    assert psutil.pid_exists(worker.process.pid)
    assert worker.process.poll() is None
    assert (data_dir / "servers" / victim / "secret.txt").read_text() == "the victim's own\n"
    assert "pwned" not in os.listdir(data_dir / "servers" / victim)
    directory = data_dir / "servers" / hostile
    owner = directory.stat().st_uid
    if os.geteuid() == 0:
        assert owner != 0, "a root worker runs the server as its own account"
        assert owner != (data_dir / "servers" / victim).stat().st_uid, "one account per server"
    assert (directory / "hostile-probe.properties").stat().st_uid == owner

    await flows_still_work(dashboard, hostile, directory)


async def flows_still_work(dashboard, sid: str, directory: Path) -> None:
    """Groups, files and backups on the confined server."""
    http = dashboard.http
    players = await group(dashboard, f"p{uuid.uuid4().hex[:6]}", "whitelist", "Alice")
    attached = await http.post(f"/api/v2/groups/{players}/servers/{sid}")
    assert attached.status_code == 201, attached.text
    reply = await console_reply(dashboard, sid, "whitelist list", whitelist_reply, timeout=30)
    assert reply.endswith("There are 1 whitelisted player(s): Alice")
    assert (directory / "whitelist.json").stat().st_uid == directory.stat().st_uid

    edited = await http.put(
        f"/api/v2/servers/{sid}/files/plugins/notes.yml", json={"content": "a: 1\n"}
    )
    assert edited.status_code in (200, 201), edited.text
    assert (directory / "plugins").stat().st_uid == directory.stat().st_uid

    requested = await http.post(f"/api/v2/servers/{sid}/backups", json={"name": "confined"})
    assert requested.status_code == 202, requested.text
    backup = await wait_backup(dashboard, requested.json()["id"])
    assert backup["status"] == "completed", backup
    restore = await http.post(f"/api/v2/backups/{backup['id']}/restore")
    assert restore.status_code == 202, restore.text
    restored = await wait_backup(
        dashboard, backup["id"], field="restore_status", until=("completed", "failed")
    )
    assert restored["restore_status"] == "completed", restored
    await dashboard.wait_state(sid, "running")
    assert (directory / "plugins" / "notes.yml").read_text() == "a: 1\n"
