"""System sync and cache stats with the API in process and a real agent for node `local`
(it watches no JVM: a server the database says is running there has no process)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app.main import create_app
from tests.agent import in_process
from tests.conftest import bearer, login, register
from tests.integration.test_auth_api import assert_problem

SYNC = "/api/v2/admin/system/sync"


@pytest.fixture
async def api(settings, clean, db):
    app = create_app(settings)
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
    assert {"server_list_view", "group_summary_view"} <= {m["name"] for m in clean["read_models"]}

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
    assert {"kind": "server", "target": sid, "action": "crashed"} in body["repairs"]
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
    assert {"kind": "events", "target": "1 events", "action": "retried"} in repaired["repairs"]


async def test_cache_stats(api):
    http, admin, owner, _ = api
    await http.get("/api/v2/servers/", headers=owner)
    stats = (await http.get("/api/v2/admin/cache/stats", headers=admin)).json()
    assert stats["memory"]["used_bytes"] > 0
    assert stats["keys_scanned"] >= 1
    assert sum(stats["namespaces"].values()) == stats["keys_scanned"]
    assert {"keyspace_hits", "keyspace_misses"} <= set(stats["redis"])
    assert set(stats["caches"]["json"]) == {"hit", "miss"}


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
