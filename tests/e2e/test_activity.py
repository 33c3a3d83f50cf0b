"""A server's activity through the real API and worker: who did what, from which address."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import read_until

pytestmark = pytest.mark.e2e

STRANGER = {"username": "stranger", "email": "s@example.com", "password": "Outsider-Pass-9"}


async def activity_until(
    dashboard, sid: str, wanted: set[str], timeout: float = 30
) -> list[dict[str, Any]]:
    """The projection runs behind the request: poll until every wanted action is there."""
    deadline = time.monotonic() + timeout
    while True:
        response = await dashboard.http.get(f"/api/v2/servers/{sid}/activity?limit=200")
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        if wanted <= {item["action"] for item in items}:
            return items
        assert time.monotonic() < deadline, f"still {[i['action'] for i in items]}"
        await asyncio.sleep(0.2)


async def stranger_token(dashboard, url: str) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        assert (await http.post("/api/v2/auth/register", json=STRANGER)).status_code == 201
        users = (await dashboard.http.get("/api/v2/admin/users?search=stranger")).json()
        approved = await dashboard.http.patch(f"/api/v2/users/{users['items'][0]['id']}/approve")
        assert approved.status_code == 200, approved.text
        login = await http.post(
            "/api/v2/auth/login",
            json={"username": STRANGER["username"], "password": STRANGER["password"]},
        )
        return str(login.json()["access_token"])


async def wait_backup(dashboard, backup_id: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = (await dashboard.http.get(f"/api/v2/backups/{backup_id}")).json()
        if body["status"] in ("completed", "failed"):
            return body
        assert time.monotonic() < deadline, f"backup still {body}"
        await asyncio.sleep(0.2)


async def test_start_console_file_edit_and_backup_appear_with_actor_and_address(
    dashboard, start_worker, fake_jar, live_server
):
    start_worker()
    sid = (await dashboard.create_custom_server(fake_jar, name="watched"))["id"]
    http = dashboard.http
    assert (await http.post(f"/api/v2/servers/{sid}/start")).status_code == 202
    await dashboard.wait_state(sid, "running")

    sent = await http.post(f"/api/v2/servers/{sid}/console", json={"command": "list"})
    assert sent.status_code == 202, sent.text
    async with dashboard.console(sid) as ws:
        await read_until(ws, lambda line: "Done (" in line)
        await ws.send(json.dumps({"command": "say from the socket"}))
        await read_until(ws, lambda line: "from the socket" in line)
    edited = await http.put(f"/api/v2/servers/{sid}/files/plugins/notes.yml", json={"content": "a"})
    assert edited.status_code == 201, edited.text
    requested = await http.post(f"/api/v2/servers/{sid}/backups", json={"name": "audited"})
    assert requested.status_code == 202, requested.text
    assert (await wait_backup(dashboard, requested.json()["id"]))["status"] == "completed"

    items = await activity_until(
        dashboard,
        sid,
        {
            "ServerStartRequested",
            "ServerStarted",
            "ConsoleCommandExecuted",
            "FileModified",
            "BackupCreated",
            "BackupCompleted",
        },
    )
    by_action: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_action.setdefault(item["action"], []).append(item)
    for action in ("ServerStartRequested", "FileModified", "BackupCreated"):
        (item,) = by_action[action]
        assert item["actor_username"] == "owner", item
        assert item["client_addr"] == "127.0.0.1", item
        assert item["server_id"] == sid
    commands = {item["details"]["command"]: item for item in by_action["ConsoleCommandExecuted"]}
    assert set(commands) == {"list", "say from the socket"}, "REST and WebSocket both audited"
    for item in commands.values():
        assert item["actor_username"] == "owner", item
        assert item["client_addr"] == "127.0.0.1", item
        assert "owner ran `" in item["summary"]
    assert by_action["FileModified"][0]["details"]["path"] == "plugins/notes.yml"
    assert "owner started" in by_action["ServerStartRequested"][0]["summary"]
    positions = [item["position"] for item in items]
    assert positions == sorted(positions, reverse=True), "newest first"
    assert {item["action"] for item in items} <= {
        "ServerCreated",
        "ServerConfigurationUpdated",
        "ServerStartRequested",
        "ServerStarted",
        "ConsoleCommandExecuted",
        "FileModified",
        "BackupCreated",
        "BackupCompleted",
    }, "activity leaves out noise such as ServerStarting and player counts"

    token = await stranger_token(dashboard, live_server.url)
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as stranger:
        stranger.headers["Authorization"] = f"Bearer {token}"
        hidden = await stranger.get(f"/api/v2/servers/{sid}/activity")
        assert hidden.status_code == 404, hidden.text
        assert hidden.headers["content-type"].startswith("application/problem+json")
        assert (await stranger.get("/api/v2/admin/audit")).status_code == 403

    assert (await http.post(f"/api/v2/servers/{sid}/stop")).status_code == 202
    await dashboard.wait_state(sid, "stopped")
