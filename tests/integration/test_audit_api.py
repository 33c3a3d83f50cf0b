"""The audit log with the API in process: who did what from where, the admin filters, keyset
pages and exports, server activity and who may see it, and bad input."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from pathlib import Path

import httpx
import pytest

from app.main import create_app
from app.monitoring.infrastructure.audit_store import safe_cell
from tests.agent import in_process
from tests.conftest import PASSWORD, admin_owner_other
from tests.integration.test_auth_api import assert_problem

AUDIT = "/api/v2/admin/audit"


class Api:
    def __init__(self, http: httpx.AsyncClient, users: dict, sid: str, root: Path, ids: dict):
        self.http, self.users, self.sid, self.root, self.ids = http, users, sid, root, ids

    async def audit(self, user: str = "admin", **params) -> httpx.Response:
        return await self.http.get(AUDIT, params=params, headers=self.users[user])

    async def activity(self, user: str = "owner", sid: str | None = None, **params):
        return await self.http.get(
            f"/api/v2/servers/{sid or self.sid}/activity", params=params, headers=self.users[user]
        )

    async def wait_for(self, action: str, **params) -> list[dict]:
        """The projection lags its commands a moment: poll until `action` is in the log."""
        for _ in range(200):
            response = await self.audit(action=action, **params)
            assert response.status_code == 200, response.text
            if items := response.json()["items"]:
                return list(items)
            await asyncio.sleep(0.05)
        raise AssertionError(f"{action} never reached the audit log")


@pytest.fixture
async def api(settings, clean):
    app = create_app(settings)
    async with in_process(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            users, ids = await admin_owner_other(http)
            created = await http.post(
                "/api/v2/servers/",
                headers=users["owner"],
                json={"name": "lobby", "server_type": "custom", "version": "1.0", "memory_mb": 512},
            )
            assert created.status_code == 201, created.text
            sid = created.json()["id"]
            root = settings.resolved_data_dir / "servers" / sid
            root.mkdir(parents=True)
            yield Api(http, users, sid, root, ids)


async def test_each_row_names_actor_address_request_and_server(api):
    (created,) = await api.wait_for("ServerCreated")
    assert created["actor_id"] == api.ids["owner"]
    assert created["actor_username"] == "owner1"
    assert created["client_addr"] == "203.0.113.7"
    assert created["request_id"]
    assert created["resource_type"] == "server"
    assert created["resource_id"] == created["server_id"] == api.sid
    assert created["summary"] == "owner1 created lobby"
    assert created["details"]["name"] == "lobby"

    saved = await api.http.put(
        f"/api/v2/servers/{api.sid}/files/motd.txt",
        json={"content": "hi\n"},
        headers={**api.users["owner"], "If-None-Match": "*"},
    )
    assert saved.status_code in (200, 201), saved.text
    (edit,) = await api.wait_for("FileModified")
    assert edit["resource_type"] == "file"
    assert edit["server_id"] == api.sid
    assert edit["actor_username"] == "owner1"
    assert edit["summary"] == "owner1 created motd.txt on lobby"


async def test_activity_is_for_those_who_may_see_the_server(api):
    await api.wait_for("ServerCreated")
    mine = await api.activity("owner")
    assert mine.status_code == 200
    assert [item["action"] for item in mine.json()["items"]] == ["ServerCreated"]
    assert (await api.activity("admin")).status_code == 200
    assert_problem(await api.activity("other"), 404)
    assert_problem(await api.activity("owner", sid=str(uuid.uuid4())), 404)


async def test_admin_routes_refuse_non_admins(api):
    assert_problem(await api.audit("owner"), 403)
    assert_problem(await api.audit("other", format="csv"), 403)
    anonymous = await api.http.get(AUDIT)
    assert anonymous.status_code == 401


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"since": "yesterday"}, id="bad-date"),
        pytest.param({"until": "2024-13-40T00:00:00Z"}, id="impossible-date"),
        pytest.param({"since": "2024-01-01T00:00:00"}, id="no-time-zone"),
        pytest.param(
            {"since": "2024-02-01T00:00:00Z", "until": "2024-01-01T00:00:00Z"},
            id="reversed-range",
        ),
        pytest.param({"limit": 0}, id="limit-zero"),
        pytest.param({"limit": 201}, id="limit-too-big"),
        pytest.param({"before": -1}, id="negative-cursor"),
        pytest.param({"action": "x" * 101}, id="action-too-long"),
        pytest.param({"action": "Drop;Table"}, id="action-bad-characters"),
        pytest.param({"actor_id": "not-a-uuid"}, id="actor-not-uuid"),
        pytest.param({"format": "xml"}, id="unknown-format"),
    ],
)
async def test_bad_filters_are_422(api, params):
    assert_problem(await api.audit(**params), 422)


async def test_filters_and_keyset_pages(api):
    await api.wait_for("ServerCreated")
    await api.wait_for("UserLoggedIn")
    everything = (await api.audit(limit=200)).json()["items"]
    positions = [item["position"] for item in everything]
    assert positions == sorted(positions, reverse=True)
    assert len(everything) >= 8

    pages, before = [], None
    while True:
        params = {"limit": 3, **({"before": before} if before else {})}
        body = (await api.audit(**params)).json()
        pages.extend(item["position"] for item in body["items"])
        if (before := body["next_before"]) is None:
            break
    assert pages == positions

    by_owner = (await api.audit(actor_id=api.ids["owner"])).json()["items"]
    assert by_owner
    assert {item["actor_id"] for item in by_owner} == {api.ids["owner"]}
    on_server = (await api.audit(server_id=api.sid)).json()["items"]
    assert {item["server_id"] for item in on_server} == {api.sid}
    users = (await api.audit(resource_type="user")).json()["items"]
    assert users
    assert {item["resource_type"] for item in users} == {"user"}
    first = everything[-1]["occurred_at"]
    in_range = (await api.audit(since=first, until=first)).json()["items"]
    assert [item["position"] for item in in_range] == [everything[-1]["position"]]
    future = (await api.audit(since="2999-01-01T00:00:00Z")).json()["items"]
    assert future == []


async def test_exports_stream_csv_and_ndjson(api):
    await api.wait_for("UserLoggedIn")
    await api.wait_for("ServerCreated")
    listed = (await api.audit(limit=200)).json()["items"]
    exported = await api.audit(format="csv")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [int(row["position"]) for row in rows] == [item["position"] for item in listed]
    assert json.loads(rows[-1]["details"]) == listed[-1]["details"]

    lines = (await api.audit(format="ndjson", resource_type="server")).text.splitlines()
    assert [json.loads(line)["action"] for line in lines] == ["ServerCreated"]


@pytest.mark.parametrize(
    ("cell", "exported"),
    [
        pytest.param('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")', id="equals"),
        pytest.param("+1+1", "'+1+1", id="plus"),
        pytest.param("-2+3", "'-2+3", id="minus"),
        pytest.param("@SUM(A1)", "'@SUM(A1)", id="at"),
        pytest.param("\tcmd", "'\tcmd", id="tab"),
        pytest.param("\rcmd", "'\rcmd", id="carriage-return"),
        pytest.param("admin1 logged in", "admin1 logged in", id="plain-text-untouched"),
        pytest.param("a=b", "a=b", id="equals-inside-untouched"),
        pytest.param("", "", id="empty"),
        pytest.param(None, "", id="none"),
    ],
)
def test_csv_cells_cannot_start_a_formula(cell, exported):
    assert safe_cell(cell) == exported


async def test_csv_export_defuses_a_formula_in_a_request_id(api):
    """X-Request-ID may start with '-': a spreadsheet must read it as text, not a formula."""
    logged_in = await api.http.post(
        "/api/v2/auth/login",
        json={"username": "other1", "password": PASSWORD},
        headers={"X-Request-ID": "-2-3"},
    )
    assert logged_in.status_code == 200, logged_in.text
    for _ in range(200):
        entries = [e for e in await api.wait_for("UserLoggedIn") if e["request_id"] == "-2-3"]
        if entries:
            break
        await asyncio.sleep(0.05)
    (entry,) = entries
    rows = list(csv.DictReader(io.StringIO((await api.audit(format="csv")).text)))
    (row,) = [row for row in rows if int(row["position"]) == entry["position"]]
    assert row["request_id"] == "'-2-3"
    assert row["summary"] == entry["summary"], "ordinary cells stay as they are"
    ndjson = (await api.audit(format="ndjson", action="UserLoggedIn")).text.splitlines()
    assert "-2-3" in {json.loads(line)["request_id"] for line in ndjson}, "JSON keeps the value"
