"""System sync and cache stats with the API in process and a real agent for node `local`
(it watches no JVM: a server the database says is running there has no process)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import uuid

import httpx
import psutil
import pytest
from redis.asyncio import Redis

from app.main import create_app
from app.monitoring.domain.sync import projection_stuck
from app.shared.cache import CacheService
from tests.agent import in_process
from tests.conftest import bearer, login, register
from tests.integration.test_auth_api import assert_problem

SYNC = "/api/v2/admin/system/sync"


@pytest.fixture
async def api(settings, clean, db):
    # Every read asks the permissions cache (the cache stats test counts its lookups).
    app = create_app(settings.model_copy(update={"principal_cache_seconds": 0}))
    async with in_process(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            await register(http, "admin1")
            admin = bearer(await login(http, "admin1"))
            user_id = (await register(http, "owner1")).json()["id"]
            await http.patch(f"/api/v2/users/{user_id}/approve", headers=admin)
            owner = bearer(await login(http, "owner1"))
            created = await http.post(
                "/api/v2/servers/",
                headers=owner,
                json={"name": "lobby", "server_type": "custom", "version": "1.0", "memory_mb": 512},
            )
            assert created.status_code == 201, created.text
            yield http, admin, owner, created.json()["id"]


async def test_a_running_server_without_a_process_is_reported_then_recorded_crashed(api, db):
    http, admin, _, sid = api
    clean = (await http.get(SYNC, headers=admin)).json()
    assert clean["consistent"] is True
    assert [n["name"] for n in clean["nodes"] if n["answered"]] == ["local"]
    assert {"unprocessed", "failing", "dead_letters", "relay_lag_seconds"} <= set(clean["events"])
    projections = {"audit", "server_list", "backup_summary", "group_summary"}
    assert projections <= {m["name"] for m in clean["read_models"]}

    # As if a JVM had been recorded running and died while nobody watched.
    await db.execute(
        "UPDATE servers SET status = 'running', pid = 999999, process_started_at = 1.0"
        " WHERE id = $1",
        sid,
    )
    report = (await http.get(SYNC, headers=admin)).json()
    (server,) = report["servers"]
    assert server["problem"] == "no-process"
    assert server["db_state"] == "running"
    assert server["observed"] is None
    assert report["consistent"] is False

    repaired = await http.post(SYNC, headers=admin)
    assert repaired.status_code == 200, repaired.text
    body = repaired.json()
    (repair,) = body["repairs"]
    assert (repair["kind"], repair["target"], repair["action"]) == ("server", sid, "crashed")
    assert repair["detail"] == "was running (pid 999999); its node watches no process"
    assert body["after"]["servers"][0]["db_state"] == "crashed"
    assert body["after"]["servers"][0]["problem"] is None
    assert await db.fetchval("SELECT status FROM servers WHERE id = $1", sid) == "crashed"


async def test_dead_letters_are_retried(api, db):
    http, admin, _, _ = api
    await asyncio.sleep(0.5)
    await db.execute(
        "UPDATE domain_events SET processed_at = NULL, dead_lettered_at = now(), attempts = 5,"
        " last_failed_at = now() WHERE position = (SELECT min(position) FROM domain_events)"
    )
    report = (await http.get(SYNC, headers=admin)).json()
    assert report["events"]["dead_letters"] == 1
    repaired = (await http.post(SYNC, headers=admin)).json()
    retried = {"kind": "events", "target": "1 events", "action": "retried", "detail": None}
    assert retried in repaired["repairs"]


async def test_cache_stats(api):
    http, admin, owner, _ = api
    await http.get("/api/v2/servers/", headers=owner)
    stats = (await http.get("/api/v2/admin/cache/stats", headers=admin)).json()
    assert stats["memory"]["used_bytes"] > 0
    assert stats["keys_scanned"] >= 1
    assert sum(stats["namespaces"].values()) == stats["keys_scanned"]
    assert {"keyspace_hits", "keyspace_misses"} <= set(stats["redis"])
    assert set(stats["caches"]["permissions"]) == {"hit", "miss"}


async def cache_counts(http, admin) -> dict[str, dict[str, float]]:
    """The caches' counters; this request's own permissions lookup (a hit) is in them."""
    return dict((await http.get("/api/v2/admin/cache/stats", headers=admin)).json()["caches"])


async def test_cache_stats_count_hits_and_misses_per_cache(api, settings):
    """Counters are per process and the suite's tests share one: only differences count."""
    http, admin, owner, _ = api
    redis = Redis.from_url(settings.redis_url)
    cache = CacheService(redis)
    owner_id = (await http.get("/api/v2/users/me", headers=owner)).json()["id"]
    before = await cache_counts(http, admin)
    for _ in range(3):
        assert (await http.get("/api/v2/servers/", headers=owner)).status_code == 200
    await redis.delete(f"user:{owner_id}:perms")
    assert (await http.get("/api/v2/servers/", headers=owner)).status_code == 200
    await redis.set(f"user:{owner_id}:perms", "forged.{}")
    assert (await http.get("/api/v2/servers/", headers=owner)).status_code == 200
    # This process's CacheService lookups, as the catalog's would be.
    assert await cache.get("catalog:test:missing") is None
    await cache.set("catalog:test:present", {"a": 1}, ttl_seconds=60)
    assert await cache.get("catalog:test:present") == {"a": 1}
    await redis.aclose()
    after = await cache_counts(http, admin)

    def grew(cache: str, result: str) -> float:
        return after[cache][result] - before.get(cache, {}).get(result, 0.0)

    # 3 cached lookups + the stats request's own; a deleted and a forged entry are misses.
    assert grew("permissions", "hit") == 4
    assert grew("permissions", "miss") == 2
    assert grew("catalog", "hit") == 1
    assert grew("catalog", "miss") == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", SYNC, id="sync-report"),
        pytest.param("POST", SYNC, id="sync-repair"),
        pytest.param("GET", "/api/v2/admin/cache/stats", id="cache-stats"),
    ],
)
async def test_non_admins_are_refused(api, method, path):
    http, _, owner, _ = api
    assert_problem(await http.request(method, path, headers=owner), 403)


async def stop_audit_projector() -> None:
    """As if this process's projections had died: their task is cancelled."""
    (task,) = [t for t in asyncio.all_tasks() if t.get_name() == "projections"]
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def stall_audit_projection(http, admin, db) -> None:
    """The projector gone, a new event behind its checkpoint, both as if minutes old."""
    await stop_audit_projector()
    assert (await register(http, "late1")).status_code == 201
    await db.execute(
        "UPDATE domain_events SET occurred_at = occurred_at - interval '5 minutes' WHERE position"
        " > (SELECT position FROM projection_checkpoints WHERE name = 'audit')"
    )
    await db.execute(
        "UPDATE projection_checkpoints SET updated_at = now() - interval '5 minutes'"
        " WHERE name = 'audit'"
    )


def audit_model(report: dict) -> dict:
    (model,) = [m for m in report["read_models"] if m["name"] == "audit"]
    return model


async def test_a_stuck_audit_projection_is_reported_and_replayed(api, db):
    http, admin, _, _ = api
    for _ in range(100):
        if audit_model((await http.get(SYNC, headers=admin)).json())["behind"] == 0:
            break
        await asyncio.sleep(0.05)
    healthy = audit_model((await http.get(SYNC, headers=admin)).json())
    assert healthy["stuck"] is False
    assert healthy["behind"] == 0
    await stall_audit_projection(http, admin, db)

    stuck = audit_model((await http.get(SYNC, headers=admin)).json())
    assert stuck["stuck"] is True
    assert stuck["behind"] >= 1
    assert stuck["lag_seconds"] > 60
    repaired = (await http.post(SYNC, headers=admin)).json()
    (replay,) = [r for r in repaired["repairs"] if r["target"] == "audit"]
    assert replay["kind"] == "projection"
    assert replay["action"] == "replayed"
    assert replay["detail"] == f"{stuck['behind']} events"
    after = audit_model(repaired["after"])
    assert after["behind"] == 0
    assert after["stuck"] is False
    assert await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'UserRegistered'"
        " AND details->>'username' = 'late1'"
    )
    again = (await http.post(SYNC, headers=admin)).json()
    assert not [r for r in again["repairs"] if r["target"] == "audit"]


async def test_a_replay_that_fails_says_why(api, db):
    http, admin, _, _ = api
    await stall_audit_projection(http, admin, db)
    await db.execute(
        "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN RAISE EXCEPTION 'audit_log refuses rows (test)'; END $$"
    )
    await db.execute(
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW"
        " EXECUTE FUNCTION refuse_audit()"
    )
    try:
        repaired = (await http.post(SYNC, headers=admin)).json()
    finally:
        await db.execute("DROP TRIGGER refuse_audit ON audit_log")
        await db.execute("DROP FUNCTION refuse_audit()")
    (replay,) = [r for r in repaired["repairs"] if r["kind"] == "projection"]
    assert replay["action"] == "failed"
    assert "audit_log refuses rows (test)" in replay["detail"]
    assert audit_model(repaired["after"])["stuck"] is True


@pytest.mark.parametrize(
    ("behind", "lag", "idle", "stuck"),
    [
        pytest.param(3, 300.0, 300.0, True, id="behind-old-and-idle"),
        pytest.param(0, 0.0, 3600.0, False, id="caught-up-and-quiet"),
        pytest.param(1, 0.5, 3600.0, False, id="first-event-after-a-quiet-hour"),
        pytest.param(90_000, 86_400.0, 0.2, False, id="replaying-a-long-history"),
        pytest.param(2, 12.0, 12.0, False, id="waiting-on-a-gap"),
    ],
)
def test_when_a_projection_counts_as_stuck(behind, lag, idle, stuck):
    assert projection_stuck(behind=behind, lag_seconds=lag, idle_seconds=idle) is stuck


@pytest.fixture
def stray_jvms(settings, tmp_path):
    """Two "java" processes nobody watches: one in a server's directory, one sandboxed the way
    bubblewrap runs it (working directory elsewhere, its launcher naming the directory)."""
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.symlink_to(shutil.which("sleep"))
    plain, boxed = (settings.data_dir / "servers" / str(uuid.uuid4()) for _ in range(2))
    for directory in (plain, boxed):
        directory.mkdir(parents=True)
    started = [
        subprocess.Popen([str(java), "300"], cwd=plain),
        subprocess.Popen(
            ["/bin/sh", "-c", f'cd / && "{java}" 300; true', "launcher", "--bind", str(boxed)]
        ),
    ]
    yield plain, boxed, started
    for process in started:
        for child in psutil.Process(process.pid).children(recursive=True):
            child.kill()
        process.kill()
        process.wait()


async def test_stray_jvms_are_reported_even_sandboxed_and_left_running(api, stray_jvms):
    http, admin, _, _ = api
    plain, boxed, (direct, launcher) = stray_jvms
    for _ in range(100):
        if sandboxed := psutil.Process(launcher.pid).children():
            break
        await asyncio.sleep(0.02)
    (jvm,) = sandboxed
    report = (await http.get(SYNC, headers=admin)).json()
    found = {(o["pid"], o["server_id"], o["cwd"], o["node"]) for o in report["orphans"]}
    assert found == {
        (direct.pid, plain.name, str(plain), "local"),
        (jvm.pid, boxed.name, str(boxed), "local"),
    }
    assert report["consistent"] is False
    repaired = (await http.post(SYNC, headers=admin)).json()
    reported = {r["target"]: r for r in repaired["repairs"] if r["kind"] == "orphan"}
    assert set(reported) == {f"local:{direct.pid}", f"local:{jvm.pid}"}
    assert {r["action"] for r in reported.values()} == {"reported"}
    assert direct.poll() is None, "an orphan is never killed"
    assert jvm.is_running()
