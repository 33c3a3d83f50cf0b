"""The read models kept by key: a command rewrites only the rows its events name, the writer reads
its own write, a deleted server leaves the lists, and a rebuild replays the same rows."""

from __future__ import annotations

import httpx
import pytest
from pydantic import TypeAdapter

from app.main import create_app
from app.servers.application.messages import ServerListItem
from app.shared.domain import Page
from app.shared.projections import Projections
from tests.agent import in_process
from tests.conftest import admin_owner_other

SERVER = {"server_type": "custom", "version": "1.20.4", "memory_mb": 512}


@pytest.fixture
async def api(settings, clean):
    app = create_app(settings)
    async with in_process(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            users, _ = await admin_owner_other(http)
            yield http, app, users


async def create(http, headers, name: str) -> str:
    created = await http.post("/api/v2/servers/", headers=headers, json={"name": name, **SERVER})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def row_versions(db, table: str, key: str = "id") -> dict[str, str]:
    """Each row's xmin: the transaction that last wrote it."""
    rows = await db.fetch(f"SELECT {key}::text AS k, xmin::text AS x FROM {table}")
    return {row["k"]: row["x"] for row in rows}


async def test_a_command_rewrites_only_the_rows_its_events_name(api, db):
    http, _, users = api
    ids = [await create(http, users["owner"], name) for name in ("one", "two", "three")]
    before = await row_versions(db, "server_list")
    summaries = await row_versions(db, "backup_summary", "server_id")

    updated = await http.put(
        f"/api/v2/servers/{ids[1]}", headers=users["owner"], json={"max_players": 42}
    )
    assert updated.status_code == 200, updated.text

    # The writer reads its own write at once: the command returned after its projection.
    listed = await http.get("/api/v2/servers/?limit=10", headers=users["owner"])
    by_id = {item["id"]: item for item in listed.json()["items"]}
    assert by_id[ids[1]]["max_players"] == 42
    after = await row_versions(db, "server_list")
    assert after[ids[1]] != before[ids[1]]
    assert {k: v for k, v in after.items() if k != ids[1]} == {
        k: v for k, v in before.items() if k != ids[1]
    }, "the other servers' rows are not rewritten"
    assert await row_versions(db, "backup_summary", "server_id") == summaries, (
        "an update that renames nothing leaves the backup summaries alone"
    )


async def test_a_deleted_server_leaves_every_list_and_its_groups_count(api, db):
    http, _, users = api
    kept, gone = [await create(http, users["owner"], n) for n in ("kept", "gone")]
    group = await http.post(
        "/api/v2/groups/", headers=users["owner"], json={"name": "ops", "group_type": "op"}
    )
    group_id = group.json()["id"]
    for server_id in (kept, gone):
        attached = await http.post(
            f"/api/v2/groups/{group_id}/servers/{server_id}", headers=users["owner"], json={}
        )
        assert attached.status_code == 201, attached.text
    listed = await http.get("/api/v2/groups/", headers=users["owner"])
    assert listed.json()["items"][0]["server_count"] == 2

    deleted = await http.delete(f"/api/v2/servers/{gone}", headers=users["owner"])
    assert deleted.status_code in (202, 204), deleted.text

    servers = await http.get("/api/v2/servers/", headers=users["owner"])
    assert [item["id"] for item in servers.json()["items"]] == [kept]
    assert await db.fetchval("SELECT count(*) FROM backup_summary") == 1
    groups = await http.get("/api/v2/groups/", headers=users["owner"])
    assert groups.json()["items"][0]["server_count"] == 1


async def test_rebuilding_a_read_model_replays_the_same_rows(api, db):
    http, app, users = api
    for name in ("alpha", "bravo", "charlie"):
        await create(http, users["owner"], name)
    columns = "id, name, status, port, owner_username, backup_count, player_count"
    before = [dict(r) for r in await db.fetch(f"SELECT {columns} FROM server_list ORDER BY id")]
    projections: Projections = app.state.container.projections

    await projections.rebuild("server_list")
    assert await db.fetchval("SELECT count(*) FROM server_list") == 0
    while await projections.drain(["server_list"]):
        pass

    after = [dict(r) for r in await db.fetch(f"SELECT {columns} FROM server_list ORDER BY id")]
    assert after == before
    checkpoint = await db.fetchval(
        "SELECT position FROM projection_checkpoints WHERE name = 'server_list'"
    )
    assert checkpoint == await db.fetchval("SELECT max(position) FROM domain_events")


async def test_the_server_list_is_written_as_pydantic_would_write_it(api):
    """GET /servers skips pydantic on its hot path: its bytes must be the schema's own."""
    http, _, users = api
    for name, description in (("plain", None), ("quoted", 'a "quoted" \\ é ✓ description')):
        created = await http.post(
            "/api/v2/servers/",
            headers=users["owner"],
            json={"name": name, "description": description, **SERVER},
        )
        assert created.status_code == 201, created.text

    listed = await http.get("/api/v2/servers/", headers=users["owner"])

    assert listed.status_code == 200
    schema = TypeAdapter(Page[ServerListItem])
    assert schema.dump_json(schema.validate_json(listed.content)) == listed.content
    assert len(listed.json()["items"]) == 2
