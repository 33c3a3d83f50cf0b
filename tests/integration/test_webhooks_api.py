"""The webhooks API: registration's checks (URL, addresses, event types, secret, server
filter, limit), the secret shown once, and every route's ownership rule."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest

from app.main import create_app
from app.servers.domain.events import ServerStarted
from app.users.domain.events import UserLoggedIn
from tests.agent import in_process
from tests.conftest import admin_owner_other
from tests.integration.test_auth_api import assert_problem
from tests.integration.test_groups_api import BASE_PORT, new_server

PUBLIC = "https://93.184.215.14/hook"


@pytest.fixture
async def api(settings, clean):
    ports = {"server_port_range_start": BASE_PORT + 10, "server_port_range_end": BASE_PORT + 19}
    app = create_app(settings.model_copy(update={"webhooks_max_per_user": 3, **ports}))
    async with in_process(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            users, _ = await admin_owner_other(http)
            yield http, users, app


async def create(http, headers, **body):
    return await http.post(
        "/api/v2/webhooks/", headers=headers, json={"url": PUBLIC, "event_types": ["*"], **body}
    )


async def test_the_secret_is_shown_once_and_never_again(api):
    http, users, _ = api
    given = await create(http, users["owner"], secret="s" * 16, event_types=["ServerStarted"])
    assert given.status_code == 201, given.text
    assert given.json()["secret"] == "s" * 16
    generated = (await create(http, users["owner"])).json()
    assert len(generated["secret"]) >= 32
    shown = await http.get(f"/api/v2/webhooks/{generated['id']}", headers=users["owner"])
    assert shown.status_code == 200
    assert "secret" not in shown.json()
    listed = await http.get("/api/v2/webhooks/", headers=users["owner"])
    assert listed.json()["total"] == 2
    assert all("secret" not in item for item in listed.json()["items"])
    patched = await http.patch(
        f"/api/v2/webhooks/{generated['id']}",
        headers=users["owner"],
        json={"secret": "t" * 20, "format": "discord", "active": False},
    )
    assert patched.status_code == 200
    assert "secret" not in patched.json()
    assert (patched.json()["format"], patched.json()["active"]) == ("discord", False)


async def test_another_users_webhook_is_not_found_and_admins_see_all(api):
    http, users, _ = api
    webhook_id = (await create(http, users["owner"])).json()["id"]
    other = users["other"]
    base = f"/api/v2/webhooks/{webhook_id}"
    for method, path, body in (
        ("GET", base, None),
        ("PATCH", base, {"active": False}),
        ("DELETE", base, None),
        ("GET", f"{base}/deliveries", None),
        ("POST", f"{base}/test", None),
    ):
        response = await http.request(method, path, headers=other, json=body)
        assert_problem(response, 404, "not-found")
    assert (await http.get("/api/v2/webhooks/", headers=other)).json()["total"] == 0
    assert (await http.get("/api/v2/webhooks/", headers=users["admin"])).json()["total"] == 1
    assert (await http.get(base, headers=users["admin"])).status_code == 200
    assert (await http.delete(base, headers=users["owner"])).status_code == 204
    assert_problem(await http.get(base, headers=users["owner"]), 404, "not-found")
    assert (await http.get("/api/v2/webhooks/")).status_code == 401


@pytest.mark.parametrize(
    ("url", "slug"),
    [
        pytest.param("http://127.0.0.1/hook", "webhook-address-forbidden", id="loopback"),
        pytest.param("http://127.8.9.10:8080/", "webhook-address-forbidden", id="loopback-8"),
        pytest.param("http://10.1.2.3/hook", "webhook-address-forbidden", id="private-10"),
        pytest.param("http://192.168.1.1/", "webhook-address-forbidden", id="private-192"),
        pytest.param("http://172.16.0.1/", "webhook-address-forbidden", id="private-172"),
        pytest.param("http://169.254.169.254/latest", "webhook-address-forbidden", id="metadata"),
        pytest.param("http://0.0.0.0/", "webhook-address-forbidden", id="unspecified"),
        pytest.param("http://[::1]/", "webhook-address-forbidden", id="ipv6-loopback"),
        pytest.param("http://[::ffff:127.0.0.1]/", "webhook-address-forbidden", id="v4-mapped"),
        pytest.param("http://[fe80::1]/", "webhook-address-forbidden", id="ipv6-link-local"),
        pytest.param("http://[fd00::1]/", "webhook-address-forbidden", id="ipv6-unique-local"),
        pytest.param("http://100.64.0.1/", "webhook-address-forbidden", id="carrier-nat"),
        pytest.param("http://localhost:8000/", "webhook-address-forbidden", id="localhost-name"),
        pytest.param("http://2130706433/", "webhook-address-forbidden", id="decimal-ip"),
        pytest.param("file:///etc/passwd", "invalid-input", id="file-scheme"),
        pytest.param("ftp://93.184.215.14/", "invalid-input", id="ftp-scheme"),
        pytest.param("gopher://93.184.215.14:70/", "invalid-input", id="gopher-scheme"),
        pytest.param("//93.184.215.14/", "invalid-input", id="no-scheme"),
        pytest.param("http:///path", "invalid-input", id="no-host"),
        pytest.param("http://u:p@93.184.215.14/", "invalid-input", id="credentials"),
        pytest.param("http://93.184.215.14:99999/", "invalid-input", id="port-out-of-range"),
        pytest.param("http://93.184.215.14/a b", "invalid-input", id="space"),
        pytest.param("http://93.184.215.14/\u0000", "invalid-input", id="nul"),
        pytest.param("http://no-such-host.invalid/", "invalid-input", id="unresolvable"),
    ],
)
async def test_urls_that_may_not_be_webhooks(api, url, slug):
    http, users, _ = api
    assert_problem(await create(http, users["owner"], url=url), 422, slug)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"event_types": []}, id="no-event-types"),
        pytest.param({"event_types": ["NoSuchEvent"]}, id="unknown-event-type"),
        pytest.param({"event_types": ["*", "ServerStarted"]}, id="star-and-others"),
        pytest.param({"event_types": ["ServerStarted"] * 51}, id="too-many-event-types"),
        pytest.param({"event_types": ["x" * 101]}, id="event-type-too-long"),
        pytest.param({"secret": "short"}, id="secret-too-short"),
        pytest.param({"secret": "s" * 201}, id="secret-too-long"),
        pytest.param({"secret": "s" * 15 + "\u0007"}, id="secret-control-char"),
        pytest.param({"format": "xml"}, id="unknown-format"),
        pytest.param({"url": "http://x/" + "a" * 2050}, id="url-too-long"),
        pytest.param({"server_id": "not-a-uuid"}, id="server-id-malformed"),
        pytest.param({"extra": 1}, id="unknown-field"),
    ],
)
async def test_bodies_that_are_refused(api, body):
    http, users, _ = api
    response = await create(http, users["owner"], **body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_server_filter_must_be_a_server_you_may_see(api):
    http, users, _ = api
    unknown = "00000000-0000-4000-8000-000000000001"
    owner, other = users["owner"], users["other"]
    assert_problem(await create(http, owner, server_id=unknown), 404, "server-not-found")
    theirs = (await new_server(http, other, "theirs"))["id"]
    mine = (await new_server(http, owner, "mine"))["id"]
    assert_problem(await create(http, owner, server_id=theirs), 404, "server-not-found")
    created = await create(http, owner, server_id=mine)
    assert created.status_code == 201
    assert created.json()["server_id"] == mine
    path = f"/api/v2/webhooks/{created.json()['id']}"
    moved = await http.patch(path, headers=owner, json={"server_id": theirs})
    assert_problem(moved, 404, "server-not-found")
    cleared = await http.patch(path, headers=owner, json={"server_id": None})
    assert cleared.status_code == 200
    assert cleared.json()["server_id"] is None
    assert (await create(http, users["admin"], server_id=theirs)).status_code == 201


async def test_bounded_pages_and_the_per_user_limit(api):
    http, users, _ = api
    for _ in range(3):
        assert (await create(http, users["owner"])).status_code == 201
    assert_problem(await create(http, users["owner"]), 409, "webhook-limit-reached")
    assert (await create(http, users["other"])).status_code == 201
    for query in ("limit=101", "limit=0", "page=0", "page=100001"):
        response = await http.get(f"/api/v2/webhooks/?{query}", headers=users["owner"])
        assert response.status_code == 422, query
    types = (await http.get("/api/v2/webhook-event-types/", headers=users["owner"])).json()
    assert types[0] == "*"
    assert "ServerStarted" in types
    assert "BackupCompleted" in types


async def test_a_users_webhook_gets_only_events_of_their_own_servers(api):
    """Admins' webhooks get every event; a user's, only those of servers the user owns."""
    http, users, app = api
    owner, other, admin = users["owner"], users["other"], users["admin"]
    mine = (await new_server(http, owner, "mine"))["id"]
    theirs = (await new_server(http, other, "theirs"))["id"]
    owners_hook = (await create(http, owner)).json()["id"]
    admins_hook = (await create(http, admin)).json()["id"]
    now = datetime.now(UTC)
    for server_id in (mine, theirs):
        await app.state.bus.publish(
            ServerStarted(
                occurred_at=now, server_id=uuid.UUID(server_id), pid=1, detected_by="ping"
            )
        )
    await app.state.bus.publish(
        UserLoggedIn(occurred_at=now, user_id=uuid.uuid4(), session_id=uuid.uuid4())
    )

    async def logged(headers, webhook_id):
        path = f"/api/v2/webhooks/{webhook_id}/deliveries?limit=100"
        items = (await http.get(path, headers=headers)).json()["items"]
        return sorted(item["event_type"] for item in items)

    assert (await logged(owner, owners_hook)).count("ServerStarted") == 1
    assert "UserLoggedIn" not in await logged(owner, owners_hook)
    admin_sees = await logged(admin, admins_hook)
    assert admin_sees.count("ServerStarted") == 2
    assert "UserLoggedIn" in admin_sees
