"""The servers API without a worker: validation, ownership, lifecycle rules and console policy."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from app.main import create_app
from app.servers.application.messages import (
    ExpireStaleStarts,
    RecordProcessLaunched,
    RecordServerReady,
)
from tests.agent import in_process
from tests.conftest import bearer, login, register
from tests.integration.test_auth_api import assert_problem
from tests.upstream import serve_upstream

BASE_PORT = 40000 + (uuid.uuid4().int % 500) * 20


@pytest.fixture
def upstream():
    with serve_upstream() as served:
        yield served


@pytest.fixture
async def api(settings, clean, upstream):
    configured = settings.model_copy(
        update={
            "mojang_manifest_url": f"{upstream.base}/mc/game/version_manifest_v2.json",
            "paper_api_url": f"{upstream.base}/v3",
            "server_port_range_start": BASE_PORT,
            "server_port_range_end": BASE_PORT + 9,
            "rate_limit_console": "1000/minute",
        }
    )
    app = create_app(configured)
    async with in_process(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            await register(http, "admin1")
            admin = bearer(await login(http, "admin1"))
            owner_id = (await register(http, "owner1")).json()["id"]
            await http.patch(f"/api/v2/users/{owner_id}/approve", headers=admin)
            owner = bearer(await login(http, "owner1"))
            other_id = (await register(http, "other1")).json()["id"]
            await http.patch(f"/api/v2/users/{other_id}/approve", headers=admin)
            other = bearer(await login(http, "other1"))
            yield http, app, {"admin": admin, "owner": owner, "other": other}


GOOD = {"name": "lobby", "server_type": "vanilla", "version": "1.21.4", "memory_mb": 1024}


async def create(http, headers, **changes):
    return await http.post("/api/v2/servers/", headers=headers, json={**GOOD, **changes})


@pytest.mark.parametrize(
    "changes",
    [
        {"name": "ab"},
        {"name": "x" * 51},
        {"name": "bad name"},
        {"name": "名前サーバー"},
        {"name": "a';DROP TABLE servers;--"},
        {"version": "1"},
        {"version": "1.21-pre1"},
        {"version": "abc"},
        {"version": "1.21.4.1"},
        {"memory_mb": 511},
        {"memory_mb": 32769},
        {"memory_mb": "1024"},
        {"port": 80},
        {"port": 70000},
        {"description": "d" * 501},
        {"motd": "two\nlines"},
        {"server_type": "forge-ish"},
        {"owner_id": "d861e4d1-d77a-4c1e-9a55-6a0c4a0f1e01"},
        {"restart_policy": {"mode": "always"}},
        {"restart_policy": {"max_restarts": -1}},
    ],
    ids=lambda c: "-".join(f"{k}={str(v)[:12]}" for k, v in c.items()),
)
async def test_create_refuses_bad_input_and_stores_nothing(api, db, changes):
    http, _, users = api
    response = await create(http, users["owner"], **changes)
    assert_problem(response, 422)
    assert await db.fetchval("SELECT count(*) FROM servers") == 0


async def test_unknown_version_is_a_clear_422(api, db):
    http, _, users = api
    response = await create(http, users["owner"], version="1.99")
    body = assert_problem(response, 422, "unknown-version")
    assert "1.99" in body["detail"]
    assert await db.fetchval("SELECT count(*) FROM servers") == 0


async def test_ports_are_allocated_unique_on_the_node(api):
    http, _, users = api
    first = (await create(http, users["owner"], name="one")).json()
    assert (first["port"], first["node"]) == (BASE_PORT, "local")
    second = (await create(http, users["owner"], name="two")).json()
    assert second["port"] == BASE_PORT + 1
    taken = await create(http, users["owner"], name="four", port=BASE_PORT)
    assert "used by another server on node local" in assert_problem(taken, 409)["detail"]
    dup = await create(http, users["owner"], name="ONE")
    assert_problem(dup, 409)


PORT_RANGE = [BASE_PORT, BASE_PORT + 9]


@pytest.mark.parametrize(
    ("changes", "allowed"),
    [
        ({"port": BASE_PORT - 1}, PORT_RANGE),
        ({"port": BASE_PORT + 10}, PORT_RANGE),
        ({"port": 1024}, PORT_RANGE),
        ({"port": 65535}, PORT_RANGE),
        ({"memory_mb": 8193}, [512, 8192]),
        ({"memory_mb": 32768}, [512, 8192]),
    ],
    ids=[
        "port-below-range",
        "port-above-range",
        "port-1024",
        "port-65535",
        "memory-8193",
        "memory-32768",
    ],
)
async def test_a_user_is_bound_by_the_port_range_and_the_heap_limit(api, db, changes, allowed):
    http, _, users = api
    field = next(iter(changes))

    created = await create(http, users["owner"], **changes)
    sid = (await create(http, users["owner"], name="inside")).json()["id"]
    updated = await http.put(f"/api/v2/servers/{sid}", headers=users["owner"], json=changes)

    for response in (created, updated):
        body = assert_problem(response, 422, "invalid-input")
        assert body["field"] == field
        assert body["allowed_range"] == allowed
        assert "only an admin" in body["detail"]
    assert await db.fetchval("SELECT count(*) FROM servers") == 1
    unchanged = (await http.get(f"/api/v2/servers/{sid}", headers=users["owner"])).json()
    assert unchanged[field] != changes[field]


async def test_a_user_may_use_the_whole_range_and_the_limit(api):
    http, _, users = api

    created = await create(http, users["owner"], port=BASE_PORT + 9, memory_mb=8192)

    assert created.status_code == 201, created.text
    assert (created.json()["port"], created.json()["memory_mb"]) == (BASE_PORT + 9, 8192)


@pytest.mark.parametrize(
    ("field", "value"),
    [("port", BASE_PORT + 10), ("port", 1024), ("memory_mb", 32768)],
    ids=["port-above-range", "port-1024", "memory-32768"],
)
async def test_an_admin_may_leave_the_range_and_go_up_to_the_hard_maximum(api, field, value):
    http, app, users = api
    await app.state.container.redis.hset("mcdash:nodes:local", "memory_total", 64 * 1024**3)
    other = value + 1 if field == "port" else value

    created = await create(http, users["admin"], **{field: value})
    sid = (await create(http, users["owner"], name="theirs")).json()["id"]
    updated = await http.put(f"/api/v2/servers/{sid}", headers=users["admin"], json={field: other})

    assert created.status_code == 201, created.text
    assert created.json()[field] == value
    assert updated.status_code == 200, updated.text
    assert updated.json()[field] == other


@pytest.mark.parametrize(
    ("role", "memory_mb"),
    [("owner", 8192), ("admin", 16384), ("admin", 32768)],
    ids=["user-8192-on-4gib-node", "admin-16384-on-4gib-node", "admin-32768-on-4gib-node"],
)
async def test_nobody_gets_a_heap_larger_than_the_nodes_memory(api, role, memory_mb):
    http, app, users = api
    sid = (await create(http, users["owner"], name="small", memory_mb=1024)).json()["id"]
    await app.state.container.redis.hset("mcdash:nodes:local", "memory_total", 4 * 2**30)

    created = await create(http, users[role], memory_mb=memory_mb)
    updated = await http.put(
        f"/api/v2/servers/{sid}", headers=users[role], json={"memory_mb": memory_mb}
    )
    fits = await create(http, users[role], name="fits", memory_mb=3072)  # all that is left

    for response in (created, updated):
        body = assert_problem(response, 422, "invalid-input")
        assert body["allowed_range"] == [512, 4096]
        assert "more than node local has (4096 MiB of memory)" in body["detail"]
    assert fits.status_code == 201, fits.text


@pytest.mark.parametrize(
    "record", [None, "lots"], ids=["no-node-record", "memory-total-not-a-number"]
)
async def test_without_a_known_node_memory_only_the_limits_apply(api, record):
    http, app, users = api
    await create(http, users["admin"], name="first")  # node local now holds a server
    if record is None:  # its worker stopped: an operator may still place servers there
        await app.state.container.redis.delete("mcdash:nodes:local")
    else:
        await app.state.container.redis.hset("mcdash:nodes:local", "memory_total", record)

    created = await create(http, users["admin"], memory_mb=32768, node="local")

    assert created.status_code == 201, created.text


async def test_owners_see_only_their_servers_and_others_get_404(api):
    http, _, users = api
    server = (await create(http, users["owner"])).json()
    sid = server["id"]
    for method, path, body in (
        ("GET", f"/api/v2/servers/{sid}", None),
        ("PUT", f"/api/v2/servers/{sid}", {"motd": "mine now"}),
        ("DELETE", f"/api/v2/servers/{sid}", None),
        ("POST", f"/api/v2/servers/{sid}/start", None),
        ("POST", f"/api/v2/servers/{sid}/stop", None),
        ("POST", f"/api/v2/servers/{sid}/console", {"command": "list"}),
        ("GET", f"/api/v2/servers/{sid}/status", None),
        ("GET", f"/api/v2/servers/{sid}/logs", None),
    ):
        response = await http.request(method, path, headers=users["other"], json=body)
        assert_problem(response, 404, "server-not-found")
    assert (await http.get("/api/v2/servers/", headers=users["other"])).json()["total"] == 0
    mine = (await http.get("/api/v2/servers/", headers=users["owner"])).json()
    assert [item["id"] for item in mine["items"]] == [sid]
    everyone = (await http.get("/api/v2/servers/", headers=users["admin"])).json()
    assert everyone["items"][0]["owner_username"] == "owner1"
    assert (await http.get(f"/api/v2/servers/{sid}", headers=users["admin"])).status_code == 200


async def test_list_filters_and_pages(api):
    http, _, users = api
    for index in range(5):
        await create(http, users["owner"], name=f"srv{index}")
    page = (await http.get("/api/v2/servers/?limit=2&page=2", headers=users["owner"])).json()
    assert page["total"] == 5
    assert [item["name"] for item in page["items"]] == ["srv2", "srv1"]
    found = (await http.get("/api/v2/servers/?search=srv4", headers=users["owner"])).json()
    assert [item["name"] for item in found["items"]] == ["srv4"]
    running = await http.get("/api/v2/servers/?status=running", headers=users["owner"])
    assert running.json()["total"] == 0
    for bad in ("status=flying", "limit=0", "limit=101", "page=0", "server_type=x"):
        assert_problem(await http.get(f"/api/v2/servers/?{bad}", headers=users["owner"]), 422)


async def test_lifecycle_rules_without_a_worker(api, db):
    http, app, users = api
    owner = users["owner"]
    server = (await create(http, owner)).json()
    sid = server["id"]
    await app.state.container.redis.delete("mcdash:nodes:local")
    no_eula = await http.post(f"/api/v2/servers/{sid}/start", headers=owner)
    assert assert_problem(no_eula, 409)["reason"] == "eula-not-accepted"
    assert_problem(await http.post(f"/api/v2/servers/{sid}/stop", headers=owner), 409)
    await http.put(f"/api/v2/servers/{sid}", headers=owner, json={"eula_accepted": True})
    started = await http.post(f"/api/v2/servers/{sid}/start", headers=owner)
    assert started.status_code == 202
    body = started.json()
    assert body["state"] == "starting"
    assert body["node_online"] is False
    assert "offline" in body["message"]
    assert_problem(await http.post(f"/api/v2/servers/{sid}/start", headers=owner), 409)
    assert_problem(await http.delete(f"/api/v2/servers/{sid}", headers=owner), 409)
    listed = (await http.get("/api/v2/servers/", headers=owner)).json()["items"][0]
    assert listed["status"] == "starting", "the writer sees its own write at once"
    stopping = await http.post(f"/api/v2/servers/{sid}/stop", headers=owner)
    assert stopping.json()["state"] == "stopping"


async def test_console_policy(api, db):
    http, app, users = api
    owner = users["owner"]
    sid = (await create(http, owner, eula_accepted=True)).json()["id"]
    url = f"/api/v2/servers/{sid}/console"
    stopped = await http.post(url, headers=owner, json={"command": "list"})
    assert "console commands need it running" in assert_problem(stopped, 409)["detail"]
    await http.post(f"/api/v2/servers/{sid}/start", headers=owner)
    bus = app.state.bus
    await bus.handle(
        RecordProcessLaunched(server_id=uuid.UUID(sid), pid=1, process_started_at=1.0, java="17")
    )
    await bus.handle(RecordServerReady(server_id=uuid.UUID(sid), detected_by="test"))
    for command, status in (
        ("reload", 403),
        ("/reload confirm", 403),
        ("stop", 403),
        ("STOP", 403),
        ("return run stop", 403),
        ("return run reload", 403),
        ("execute as @a run return run stop", 403),
        ("x" * 201, 422),
        ("say hi\nop Mallory", 422),
        ("say hi\rop Mallory", 422),
        ("say \x1b[31mred", 422),
        ("say \u2028op Mallory", 422),
        ("   ", 422),
    ):
        response = await http.post(url, headers=owner, json={"command": command})
        assert_problem(response, status)
    offline = await http.post(url, headers=owner, json={"command": "deop Steve"})
    assert_problem(offline, 503, "node-offline")
    redis = app.state.container.redis
    pubsub = redis.pubsub()
    await pubsub.subscribe("node:local:console")
    try:
        sent = await http.post(url, headers=owner, json={"command": "/deop Steve"})
        assert sent.status_code == 202, sent.text
        assert sent.json()["command"] == "deop Steve"
        message = None
        while message is None or message["type"] != "message":
            message = await pubsub.get_message(timeout=2)
        assert json.loads(message["data"]) == {"server_id": sid, "command": "deop Steve"}
    finally:
        await pubsub.aclose()
    audited = await db.fetch(
        "SELECT event_data, metadata FROM domain_events WHERE event_type='ConsoleCommandExecuted'"
    )
    assert len(audited) == 1, "refused commands are not audited as executed"
    assert json.loads(audited[0]["event_data"])["command"] == "deop Steve"


async def test_console_allowlist_setting_refuses_other_verbs(settings, clean):
    app = create_app(
        settings.model_copy(update={"console_allowed_verbs": ["say", "list", "return"]})
    )
    async with in_process(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            await register(http, "admin1")
            admin = bearer(await login(http, "admin1"))
            url = f"/api/v2/servers/{uuid.uuid4()}/console"

            refused = await http.post(url, headers=admin, json={"command": "time set day"})
            nested = await http.post(url, headers=admin, json={"command": "return run op @s"})
            passed = await http.post(url, headers=admin, json={"command": "say hi"})

    assert assert_problem(refused, 403)["allowed"] == ["list", "return", "say"]
    assert assert_problem(nested, 403)["verb"] == "op"
    assert_problem(passed, 404)  # past the policy: there is no such server


async def test_update_rewrites_settings_and_flags_restart_on_a_running_server(api):
    http, app, users = api
    owner = users["owner"]
    sid = (await create(http, owner, eula_accepted=True)).json()["id"]
    updated = await http.put(
        f"/api/v2/servers/{sid}", headers=owner, json={"motd": "Hello §a world"}
    )
    assert updated.json()["motd"] == "Hello §a world"
    assert updated.json()["restart_required"] is False
    await http.post(f"/api/v2/servers/{sid}/start", headers=owner)
    bus = app.state.bus
    await bus.handle(
        RecordProcessLaunched(server_id=uuid.UUID(sid), pid=1, process_started_at=1.0, java="17")
    )
    await bus.handle(RecordServerReady(server_id=uuid.UUID(sid), detected_by="test"))
    running = await http.put(f"/api/v2/servers/{sid}", headers=owner, json={"max_players": 50})
    assert running.json()["restart_required"] is True
    assert running.json()["max_players"] == 50
    described = await http.put(f"/api/v2/servers/{sid}", headers=owner, json={"description": "x"})
    assert described.json()["restart_required"] is True
    unknown = await http.put(f"/api/v2/servers/{sid}", headers=owner, json={"name": "renamed"})
    assert_problem(unknown, 422)
    bad_version = await http.put(f"/api/v2/servers/{sid}", headers=owner, json={"version": "9.9"})
    assert_problem(bad_version, 422, "unknown-version")


async def test_java_requirement_is_checked_against_the_node(api, db):
    http, app, users = api
    owner = users["owner"]
    sid = (await create(http, owner, eula_accepted=True)).json()["id"]
    await app.state.container.redis.hset(
        "mcdash:nodes:local",
        mapping={"java": json.dumps([{"major": 17, "path": "/usr/bin/java", "version": "17.0.1"}])},
    )
    response = await http.post(f"/api/v2/servers/{sid}/start", headers=owner)
    body = assert_problem(response, 422, "java-runtime-missing")
    assert "needs Java 21" in body["detail"]
    assert "Java 17 (/usr/bin/java)" in body["detail"]
    assert await db.fetchval("SELECT status FROM servers WHERE id=$1", uuid.UUID(sid)) == "stopped"


async def test_custom_jar_upload(api):
    http, _, users = api
    owner = users["owner"]
    sid = (await create(http, owner, server_type="custom", eula_accepted=True)).json()["id"]
    no_jar = await http.post(f"/api/v2/servers/{sid}/start", headers=owner)
    assert assert_problem(no_jar, 409)["reason"] == "jar-missing"
    admin = users["admin"]  # a jar is code: server:code, which users lack by default
    not_a_jar = await http.put(
        f"/api/v2/servers/{sid}/jar", headers=admin, files={"file": ("x.jar", b"not a zip")}
    )
    assert_problem(not_a_jar, 422, "invalid-jar")
    from tests.upstream import VANILLA_JAR, sha256

    ok = await http.put(
        f"/api/v2/servers/{sid}/jar", headers=admin, files={"file": ("s.jar", VANILLA_JAR)}
    )
    assert ok.json() == {"sha256": sha256(VANILLA_JAR), "size": len(VANILLA_JAR)}
    detail = (await http.get(f"/api/v2/servers/{sid}", headers=owner)).json()
    assert detail["jar_sha256"] == sha256(VANILLA_JAR)


async def test_delete_removes_the_server(api, db):
    http, _, users = api
    owner = users["owner"]
    sid = (await create(http, owner)).json()["id"]
    assert (await http.delete(f"/api/v2/servers/{sid}", headers=owner)).status_code == 204
    assert_problem(await http.get(f"/api/v2/servers/{sid}", headers=owner), 404)
    assert (await http.get("/api/v2/servers/", headers=owner)).json()["total"] == 0
    assert (
        await db.fetchval("SELECT count(*) FROM domain_events WHERE event_type='ServerDeleted'")
        == 1
    )


async def test_versions_catalogue(api):
    http, _, users = api
    vanilla = (await http.get("/api/v2/versions/vanilla", headers=users["owner"])).json()
    assert [v["version"] for v in vanilla][:2] == ["1.21.4", "1.20.4"]
    paper = (await http.get("/api/v2/versions/paper", headers=users["owner"])).json()
    assert paper[0]["version"] == "1.21.4"
    assert_problem(await http.get("/api/v2/versions/quilt", headers=users["owner"]), 422)


async def test_a_start_no_worker_claims_expires_visibly(api, db):
    http, app, users = api
    owner = users["owner"]
    sid = (await create(http, owner, eula_accepted=True)).json()["id"]
    await http.post(f"/api/v2/servers/{sid}/start", headers=owner)
    bus = app.state.bus
    assert await bus.handle(ExpireStaleStarts()) == [], "a fresh start is left alone"
    await db.execute(
        "UPDATE servers SET state_changed_at = now() - interval '1 hour' WHERE id=$1",
        uuid.UUID(sid),
    )
    assert await bus.handle(ExpireStaleStarts()) == [uuid.UUID(sid)]
    status = (await http.get(f"/api/v2/servers/{sid}/status", headers=owner)).json()
    assert status["state"] == "stopped"
    assert "did not pick up the start" in status["status_message"]
    events = await db.fetch(
        "SELECT event_type FROM domain_events WHERE aggregate_id=$1 ORDER BY position",
        uuid.UUID(sid),
    )
    assert events[-1][0] == "ServerStartFailed"
