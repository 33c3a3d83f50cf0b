"""The groups API without a worker: validation, ownership, Mojang lookups, events and the view."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from app.groups.domain.model import offline_uuid
from app.main import create_app
from tests.agent import in_process
from tests.conftest import bearer, login, register
from tests.integration.test_auth_api import assert_problem
from tests.upstream import serve_upstream

ALICE_ONLINE = "0f3a6bf1c6e94f6b8b4ff0a1d2c3b4a5"
BASE_PORT = 42000 + (uuid.uuid4().int % 500) * 20


@pytest.fixture
def upstream():
    with serve_upstream() as served:
        served.json("/users/profiles/minecraft/Alice", {"id": ALICE_ONLINE, "name": "Alice"})
        served.json("/users/profiles/minecraft/alice", {"id": ALICE_ONLINE, "name": "Alice"})
        served.json("/users/profiles/minecraft/Bob", {"id": "1" * 32, "name": "Bob"})
        served.routes["/users/profiles/minecraft/Ghost204"] = (204, b"")
        served.routes["/users/profiles/minecraft/Broken"] = (500, b"oops")
        yield served


async def make_api(settings, upstream_base: str):
    configured = settings.model_copy(
        update={
            "mojang_profile_api_url": upstream_base,
            "server_port_range_start": BASE_PORT,
            "server_port_range_end": BASE_PORT + 9,
        }
    )
    return create_app(configured)


@pytest.fixture
async def api(settings, clean, upstream):
    app = await make_api(settings, upstream.base)
    async with in_process(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            await register(http, "admin1")
            admin = bearer(await login(http, "admin1"))
            users = {"admin": admin}
            for name in ("owner1", "other1", "oper1"):
                user_id = (await register(http, name)).json()["id"]
                await http.patch(f"/api/v2/users/{user_id}/approve", headers=admin)
                if name == "oper1":
                    await http.patch(
                        f"/api/v2/users/{user_id}/role", headers=admin, json={"role": "operator"}
                    )
                users[name.removesuffix("1")] = bearer(await login(http, name))
            yield http, app, users


async def new_group(http, headers, **body):
    body = {"name": "admins", "group_type": "op", **body}
    response = await http.post("/api/v2/groups/", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def new_server(http, headers, name="lobby"):
    response = await http.post(
        "/api/v2/servers/",
        headers=headers,
        json={"name": name, "server_type": "custom", "version": "1.20.4", "memory_mb": 512},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_get_update_delete_and_events(api, db):
    http, _, users = api
    group = await new_group(http, users["owner"], description="staff")
    assert group["op_level"] == 4
    assert group["players"] == []
    assert group["version"] == 1
    got = await http.get(f"/api/v2/groups/{group['id']}", headers=users["owner"])
    assert got.status_code == 200
    assert got.headers["etag"] == '"1"'
    updated = await http.put(
        f"/api/v2/groups/{group['id']}",
        headers={**users["owner"], "If-Match": '"1"'},
        json={"name": "mods", "op_level": 2},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["name"] == "mods"
    assert updated.json()["op_level"] == 2
    assert updated.headers["etag"] == '"2"'
    stale = await http.put(
        f"/api/v2/groups/{group['id']}",
        headers={**users["owner"], "If-Match": '"1"'},
        json={"name": "late"},
    )
    assert_problem(stale, 412, "precondition-failed")
    deleted = await http.delete(f"/api/v2/groups/{group['id']}", headers=users["owner"])
    assert deleted.status_code == 204
    assert_problem(await http.get(f"/api/v2/groups/{group['id']}", headers=users["owner"]), 404)
    rows = await db.fetch(
        "SELECT event_type FROM domain_events WHERE aggregate_id=$1 ORDER BY position",
        uuid.UUID(group["id"]),
    )
    assert [r[0] for r in rows] == ["GroupCreated", "GroupUpdated", "GroupDeleted"]


async def test_concurrent_updates_with_the_same_etag_one_wins(api):
    http, _, users = api
    group = await new_group(http, users["owner"])
    headers = {**users["owner"], "If-Match": '"1"'}
    results = await asyncio.gather(
        *(
            http.put(f"/api/v2/groups/{group['id']}", headers=headers, json={"name": name})
            for name in ("first", "second")
        )
    )
    codes = sorted(r.status_code for r in results)
    assert codes in ([200, 409], [200, 412]), [r.text for r in results]
    final = (await http.get(f"/api/v2/groups/{group['id']}", headers=users["owner"])).json()
    assert final["version"] == 2
    assert final["name"] in ("first", "second")


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "group_type": "admin"},
        {"name": "x", "group_type": "op", "op_level": 0},
        {"name": "x", "group_type": "op", "op_level": 5},
        {"name": "x", "group_type": "whitelist", "op_level": 2},
        {"name": "", "group_type": "op"},
        {"name": "x" * 101, "group_type": "op"},
        {"name": "x", "group_type": "op", "extra": 1},
        {"name": "x", "group_type": "op", "description": "d" * 501},
    ],
    ids=[
        "bad-type",
        "level-0",
        "level-5",
        "level-on-whitelist",
        "empty-name",
        "name-too-long",
        "unknown-field",
        "description-too-long",
    ],
)
async def test_bad_group_bodies_are_422(api, db, body):
    http, _, users = api
    assert_problem(await http.post("/api/v2/groups/", headers=users["owner"], json=body), 422)
    assert await db.fetchval("SELECT count(*) FROM groups") == 0


async def test_duplicate_group_name_is_409(api):
    http, _, users = api
    await new_group(http, users["owner"])
    again = await http.post(
        "/api/v2/groups/", headers=users["owner"], json={"name": "ADMINS", "group_type": "op"}
    )
    assert_problem(again, 409)


async def test_add_players_online_offline_rename_and_remove(api, db):
    http, _, users = api
    group = await new_group(http, users["owner"], group_type="whitelist")
    gid = group["id"]
    online = await http.post(
        f"/api/v2/groups/{gid}/players", headers=users["owner"], json={"name": "alice"}
    )
    assert online.status_code == 201, online.text
    assert online.json()["uuid"] == str(uuid.UUID(ALICE_ONLINE))
    assert online.json()["name"] == "Alice", "the canonical spelling comes from Mojang"
    offline = await http.post(
        f"/api/v2/groups/{gid}/players",
        headers=users["owner"],
        json={"name": "Carol", "mode": "offline"},
    )
    assert offline.json()["uuid"] == str(offline_uuid("Carol"))
    duplicate = await http.post(
        f"/api/v2/groups/{gid}/players", headers=users["owner"], json={"name": "Alice"}
    )
    assert_problem(duplicate, 409)
    other = await new_group(http, users["owner"], name="second", group_type="whitelist")
    detail = (await http.get(f"/api/v2/groups/{gid}", headers=users["owner"])).json()
    assert [p["name"] for p in detail["players"]] == ["Alice", "Carol"]
    removed = await http.delete(
        f"/api/v2/groups/{gid}/players/{online.json()['uuid']}", headers=users["owner"]
    )
    assert removed.status_code == 204
    assert_problem(
        await http.delete(f"/api/v2/groups/{gid}/players/{uuid.uuid4()}", headers=users["owner"]),
        404,
    )
    assert other["players"] == []
    events = await db.fetch(
        "SELECT event_type FROM domain_events WHERE aggregate_id=$1 ORDER BY position",
        uuid.UUID(gid),
    )
    assert [r[0] for r in events] == [
        "GroupCreated",
        "PlayerAddedToGroup",
        "PlayerAddedToGroup",
        "PlayerRemovedFromGroup",
    ]
    assert await db.fetchval("SELECT count(*) FROM players") == 2


async def test_rename_keeps_the_uuid(api, upstream, db):
    http, _, users = api
    first = await new_group(http, users["owner"], group_type="whitelist")
    second = await new_group(http, users["owner"], name="second", group_type="whitelist")
    added = await http.post(
        f"/api/v2/groups/{first['id']}/players", headers=users["owner"], json={"name": "Bob"}
    )
    upstream.json("/users/profiles/minecraft/Bobby", {"id": "1" * 32, "name": "Bobby"})
    again = await http.post(
        f"/api/v2/groups/{second['id']}/players", headers=users["owner"], json={"name": "Bobby"}
    )
    assert again.json()["id"] == added.json()["id"]
    assert again.json()["uuid"] == added.json()["uuid"]
    rows = await db.fetch("SELECT username FROM players")
    assert [r[0] for r in rows] == ["Bobby"]
    first_detail = (await http.get(f"/api/v2/groups/{first['id']}", headers=users["owner"])).json()
    assert first_detail["players"][0]["name"] == "Bobby"


@pytest.mark.parametrize(
    ("body", "status", "slug"),
    [
        ({"name": "ab"}, 422, None),
        ({"name": "a" * 17}, 422, None),
        ({"name": "bad-name"}, 422, None),
        ({"name": "Ålice"}, 422, None),
        ({"name": "../etc"}, 422, None),
        ({"name": "Nobody"}, 422, "unknown-player"),
        ({"name": "Ghost204"}, 422, "unknown-player"),
        ({"name": "Broken"}, 503, "profile-service-unavailable"),
        ({"name": "Alice", "mode": "cracked"}, 422, None),
    ],
    ids=[
        "name-too-short",
        "name-too-long",
        "name-invalid-chars",
        "name-unicode",
        "name-traversal",
        "unknown-on-mojang-404",
        "unknown-on-mojang-204",
        "mojang-error",
        "bad-mode",
    ],
)
async def test_bad_players_are_refused(api, db, body, status, slug):
    http, _, users = api
    group = await new_group(http, users["owner"])
    response = await http.post(
        f"/api/v2/groups/{group['id']}/players", headers=users["owner"], json=body
    )
    problem = assert_problem(response, status, slug)
    if slug == "unknown-player":
        assert problem["detail"] == f"no Minecraft account named {body['name']}"
    assert await db.fetchval("SELECT count(*) FROM group_players") == 0


async def test_mojang_down_is_503(settings, clean):
    with serve_upstream() as dead:
        base = dead.base
    app = await make_api(settings, base)
    async with in_process(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            await register(http, "admin1")
            admin = bearer(await login(http, "admin1"))
            group = await new_group(http, admin)
            response = await http.post(
                f"/api/v2/groups/{group['id']}/players", headers=admin, json={"name": "Alice"}
            )
            assert_problem(response, 503, "profile-service-unavailable")
            offline = await http.post(
                f"/api/v2/groups/{group['id']}/players",
                headers=admin,
                json={"name": "Alice", "mode": "offline"},
            )
            assert offline.status_code == 201


async def test_ownership_others_get_404_operators_read_only_admins_all(api):
    http, _, users = api
    group = await new_group(http, users["owner"])
    gid = group["id"]
    assert_problem(await http.get(f"/api/v2/groups/{gid}", headers=users["other"]), 404)
    assert_problem(
        await http.put(f"/api/v2/groups/{gid}", headers=users["other"], json={"name": "x"}), 404
    )
    assert_problem(await http.delete(f"/api/v2/groups/{gid}", headers=users["other"]), 404)
    assert (await http.get(f"/api/v2/groups/{gid}", headers=users["oper"])).status_code == 200
    assert_problem(
        await http.put(f"/api/v2/groups/{gid}", headers=users["oper"], json={"name": "x"}), 403
    )
    admin_put = await http.put(f"/api/v2/groups/{gid}", headers=users["admin"], json={"name": "y"})
    assert admin_put.status_code == 200
    assert_problem(await http.get("/api/v2/groups/"), 401)


async def test_attach_detach_rules_and_sync_jobs_are_coalesced(api, db, redis_url):
    http, app, users = api
    group = await new_group(http, users["owner"], group_type="whitelist")
    gid = group["id"]
    server = await new_server(http, users["owner"])
    sid = server["id"]
    foreign_server = await new_server(http, users["other"], name="theirs")
    foreign_group = await new_group(http, users["other"], name="theirs", group_type="whitelist")

    for path, headers, status in (
        (f"{gid}/servers/{foreign_server['id']}", users["owner"], 404),
        (f"{foreign_group['id']}/servers/{sid}", users["owner"], 404),
        (f"{uuid.uuid4()}/servers/{sid}", users["owner"], 404),
        (f"{gid}/servers/{sid}", users["oper"], 403),
    ):
        response = await http.post(f"/api/v2/groups/{path}", headers=headers, json={})
        assert_problem(response, status)
    for priority in (-1, 1001, "high"):
        bad = await http.post(
            f"/api/v2/groups/{gid}/servers/{sid}",
            headers=users["owner"],
            json={"priority": priority},
        )
        assert_problem(bad, 422)
    attached = await http.post(
        f"/api/v2/groups/{gid}/servers/{sid}", headers=users["owner"], json={"priority": 7}
    )
    assert attached.status_code == 201, attached.text
    assert attached.json()["servers"][0]["priority"] == 7
    duplicate = await http.post(f"/api/v2/groups/{gid}/servers/{sid}", headers=users["owner"])
    assert_problem(duplicate, 409)
    for name in ("Alice", "Bob"):
        added = await http.post(
            f"/api/v2/groups/{gid}/players", headers=users["owner"], json={"name": name}
        )
        assert added.status_code == 201
    queue = app.state.container.infra.sync_redis
    assert queue.llen("rq:queue:node:local:high") == 1, "a burst of changes queues one sync job"

    access = await http.get(f"/api/v2/servers/{sid}/access", headers=users["owner"])
    assert access.status_code == 200
    body = access.json()
    assert [w["name"] for w in body["whitelist"]] == ["Alice", "Bob"]
    assert body["groups"][0]["priority"] == 7
    assert body["authoritative"] is False
    assert_problem(await http.get(f"/api/v2/servers/{sid}/access", headers=users["other"]), 404)
    mode = await http.put(
        f"/api/v2/servers/{sid}/access", headers=users["owner"], json={"authoritative": True}
    )
    assert mode.status_code == 200
    assert mode.json()["authoritative"] is True
    assert_problem(
        await http.put(
            f"/api/v2/servers/{sid}/access", headers=users["oper"], json={"authoritative": False}
        ),
        403,
    )

    detached = await http.delete(f"/api/v2/groups/{gid}/servers/{sid}", headers=users["owner"])
    assert detached.status_code == 204
    again = await http.delete(f"/api/v2/groups/{gid}/servers/{sid}", headers=users["owner"])
    assert_problem(again, 404)
    events = await db.fetch(
        "SELECT event_type, event_data FROM domain_events WHERE aggregate_id=$1 ORDER BY position",
        uuid.UUID(gid),
    )
    assert [r[0] for r in events] == [
        "GroupCreated",
        "GroupAttachedToServer",
        "PlayerAddedToGroup",
        "PlayerAddedToGroup",
        "GroupDetachedFromServer",
    ]


async def test_list_groups_view_filters_and_pagination(api):
    http, _, users = api
    for index in range(5):
        await new_group(http, users["owner"], name=f"ops-{index}")
    for index in range(3):
        await new_group(http, users["owner"], name=f"wl-{index}", group_type="whitelist")
    theirs = await new_group(http, users["other"], name="ops-theirs")
    one = (await http.get("/api/v2/groups/?type=op", headers=users["owner"])).json()
    assert one["total"] == 5
    first = (await http.get("/api/v2/groups/?limit=3", headers=users["owner"])).json()
    second = (await http.get("/api/v2/groups/?limit=3&page=3", headers=users["owner"])).json()
    assert first["total"] == 8
    assert len(first["items"]) == 3
    assert len(second["items"]) == 2
    assert [g["name"] for g in first["items"]] == ["wl-2", "wl-1", "wl-0"]
    named = (await http.get("/api/v2/groups/?name=WL-1", headers=users["owner"])).json()
    assert [g["name"] for g in named["items"]] == ["wl-1"]
    sneaky = await http.get(
        f"/api/v2/groups/?owner_id={theirs['owner_id']}", headers=users["owner"]
    )
    assert sneaky.json()["total"] == 8, "owners only ever list their own groups"
    everyone = (await http.get("/api/v2/groups/?limit=100", headers=users["admin"])).json()
    assert everyone["total"] == 9
    filtered = await http.get(
        f"/api/v2/groups/?owner_id={theirs['owner_id']}", headers=users["oper"]
    )
    assert [g["name"] for g in filtered.json()["items"]] == ["ops-theirs"]
    gid = first["items"][0]["id"]
    await http.post(f"/api/v2/groups/{gid}/players", headers=users["owner"], json={"name": "Bob"})
    refreshed = (await http.get("/api/v2/groups/?name=wl-2", headers=users["owner"])).json()
    assert refreshed["items"][0]["player_count"] == 1
    assert refreshed["items"][0]["owner_username"] == "owner1"
    for query in ("type=admin", "limit=0", "limit=101", "page=0", "owner_id=nope"):
        assert_problem(await http.get(f"/api/v2/groups/?{query}", headers=users["owner"]), 422)
