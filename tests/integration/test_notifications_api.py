"""Stored notifications: who is told of what, once per event, and the read marks."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from app.backups.infrastructure.progress import NOTIFICATIONS_CHANNEL
from app.groups.infrastructure.sync import AccessSync
from app.main import create_app
from app.monitoring.infrastructure import notifications as infra
from app.monitoring.infrastructure import streams
from app.servers.domain.events import ServerCrashed
from app.servers.infrastructure.runtime import CONSOLE_STREAM, STATUS_CHANNEL
from app.shared.domain import SystemClock
from tests.agent import in_process
from tests.conftest import admin_owner_other
from tests.integration.test_servers_api import create
from tests.upstream import serve_upstream


@pytest.fixture
async def api(settings, clean):
    """An admin, an owner and another user (both approved: two registrations were waiting)."""
    with serve_upstream() as upstream:
        configured = settings.model_copy(
            update={
                "mojang_manifest_url": f"{upstream.base}/mc/game/version_manifest_v2.json",
                "paper_api_url": f"{upstream.base}/v3",
            }
        )
        app = create_app(configured)
        async with in_process(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                users, _ = await admin_owner_other(http)
                yield http, app, users


async def notifications_of(http, headers, want: int, **params):
    async with asyncio.timeout(10):
        while True:
            page = (await http.get("/api/v2/notifications", headers=headers, params=params)).json()
            if len(page["items"]) >= want:
                return page
            await asyncio.sleep(0.05)


def test_the_channel_and_stream_keys_are_the_other_contexts():
    assert streams.CONSOLE_STREAM == CONSOLE_STREAM
    assert streams.STATUS_CHANNEL == STATUS_CHANNEL
    assert infra.BACKUPS_CHANNEL == NOTIFICATIONS_CHANNEL


async def test_a_registration_waiting_for_approval_tells_the_admins_only(api, db):
    http, _, users = api
    page = await notifications_of(http, users["admin"], 2)
    types = [item["type"] for item in page["items"]]
    assert types == ["user.registration_pending", "user.registration_pending"]
    assert {item["data"]["username"] for item in page["items"]} == {"owner1", "other1"}
    for role in ("owner", "other"):
        mine = (await http.get("/api/v2/notifications", headers=users[role])).json()
        assert mine["items"] == []
        assert mine["unread"] == 0
    positions = await db.fetch("SELECT event_position FROM notifications")
    assert all(row["event_position"] > 0 for row in positions), "the stored event's position"


async def test_a_crash_tells_the_owner_and_admins_once_however_often_it_is_delivered(api, db):
    http, app, users = api
    server = (await create(http, users["owner"])).json()
    crashed = ServerCrashed(
        occurred_at=datetime.now(UTC),
        server_id=uuid.UUID(server["id"]),
        exit_code=137,
        reason="killed",
        will_restart=False,
    )
    for _ in range(3):  # the relay delivers at least once
        await app.state.bus.publish(crashed)
    owner = await notifications_of(http, users["owner"], 1)
    assert [item["type"] for item in owner["items"]] == ["server.crashed"]
    notice = owner["items"][0]
    assert notice["server_id"] == server["id"]
    assert notice["severity"] == "error"
    assert notice["data"]["will_restart"] is False
    assert notice["title"] == "lobby crashed; the restart policy gave up"
    admin = await notifications_of(http, users["admin"], 3, unread="true")
    assert [i["type"] for i in admin["items"]].count("server.crashed") == 1
    other = (await http.get("/api/v2/notifications", headers=users["other"])).json()
    assert other["items"] == []
    count = await db.fetchval("SELECT count(*) FROM notifications WHERE type = 'server.crashed'")
    assert count == 2


async def test_read_marks_and_paging(api):
    http, _, users = api
    page = await notifications_of(http, users["admin"], 2)
    first, second = page["items"]
    assert page["unread"] == 2
    read = await http.post(f"/api/v2/notifications/{first['id']}/read", headers=users["admin"])
    assert read.status_code == 200
    assert read.json()["read_at"] is not None
    again = await http.post(f"/api/v2/notifications/{first['id']}/read", headers=users["admin"])
    assert again.json()["read_at"] == read.json()["read_at"], "read once, when first read"
    unread = (await http.get("/api/v2/notifications?unread=true", headers=users["admin"])).json()
    assert [i["id"] for i in unread["items"]] == [second["id"]]
    one = (await http.get("/api/v2/notifications?limit=1", headers=users["admin"])).json()
    assert one["next_before"] == first["id"]
    rest = (
        await http.get(
            f"/api/v2/notifications?limit=1&before={one['next_before']}", headers=users["admin"]
        )
    ).json()
    assert [i["id"] for i in rest["items"]] == [second["id"]]
    assert rest["next_before"] is None
    everything = await http.post("/api/v2/notifications/read-all", headers=users["admin"])
    assert everything.json() == {"marked": 1}
    assert (await http.get("/api/v2/notifications", headers=users["admin"])).json()["unread"] == 0


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("get", "/api/v2/notifications?limit=0", 422, id="limit-zero"),
        pytest.param("get", "/api/v2/notifications?limit=201", 422, id="limit-too-big"),
        pytest.param("get", "/api/v2/notifications?before=nope", 422, id="before-not-uuid"),
        pytest.param("post", "/api/v2/notifications/nope/read", 422, id="id-not-uuid"),
        pytest.param("post", f"/api/v2/notifications/{uuid.uuid4()}/read", 404, id="unknown-id"),
    ],
)
async def test_bad_input(api, method, path, status):
    http, _, users = api
    response = await getattr(http, method)(path, headers=users["owner"])
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_another_users_notification_cannot_be_marked(api):
    http, _, users = api
    page = await notifications_of(http, users["admin"], 1)
    theirs = page["items"][0]["id"]
    response = await http.post(f"/api/v2/notifications/{theirs}/read", headers=users["owner"])
    assert response.status_code == 404
    assert (await http.get("/api/v2/notifications")).status_code == 401


async def test_a_failed_group_sync_tells_the_owner_and_admins_live_and_stored(api, db, tmp_path):
    http, app, users = api
    server = (await create(http, users["owner"])).json()
    sid = uuid.UUID(server["id"])
    owner_id = await db.fetchval("SELECT id FROM users WHERE username = 'owner1'")
    redis = app.state.container.redis
    pubsub = redis.pubsub()
    await pubsub.subscribe(infra.USER_CHANNEL.format(user_id=owner_id))
    await pubsub.get_message(timeout=1)  # the subscription's confirmation
    directory = tmp_path / "server"
    directory.mkdir()
    (directory / "whitelist.json").write_text("{not json")
    sync = AccessSync(app.state.bus, SystemClock())
    outcome = await sync.apply(sid, directory, console=None)
    assert outcome is not None
    assert outcome.failures
    async with asyncio.timeout(10):
        while (message := await pubsub.get_message(timeout=1)) is None:
            pass
    await pubsub.aclose()
    pushed = json.loads(message["data"])["notification"]
    assert pushed["type"] == "groups.sync_failed"
    owner = await notifications_of(http, users["owner"], 1)
    stored = owner["items"][0]
    assert stored["id"] == pushed["id"], "the row pushed is the row stored"
    assert stored["server_id"] == server["id"]
    assert stored["severity"] == "error"
    assert stored["title"] == "Ops and whitelist of lobby could not be synced"
    assert stored["body"] == "whitelist.json is not valid JSON; it was left as it is"
    assert stored["data"]["check_only"] is False
    admin = await notifications_of(http, users["admin"], 3)
    assert [i["type"] for i in admin["items"]].count("groups.sync_failed") == 1
    assert (await http.get("/api/v2/notifications", headers=users["other"])).json()["items"] == []

    # A sync that fails outright (the lists cannot be written) is told too, then raised.
    await http.put(
        f"/api/v2/servers/{sid}/access", headers=users["admin"], json={"authoritative": True}
    )
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    with pytest.raises(FileExistsError):
        await sync.apply(sid, not_a_directory, console=None)
    owner = await notifications_of(http, users["owner"], 2)
    assert owner["items"][0]["type"] == "groups.sync_failed"
    assert owner["items"][0]["body"].startswith("FileExistsError")

    # A sync without failures tells nobody; a server gone since tells nobody either.
    (directory / "whitelist.json").write_text("[]")
    clean = await sync.apply(sid, directory, console=None)
    assert clean is not None
    assert clean.failures == ()
    assert await sync.apply(uuid.uuid4(), directory, console=None) is None
    count = await db.fetchval("SELECT count(*) FROM notifications WHERE type='groups.sync_failed'")
    assert count == 4, "two failures, each for the owner and the admin"
