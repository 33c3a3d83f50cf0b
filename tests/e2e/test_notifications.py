"""Notifications with the real stack: a crash reaches the socket and the stored list; the
admin's metrics socket streams snapshots and refuses others with 4403."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.conftest import PASSWORD

pytestmark = pytest.mark.e2e


def ws_url(dashboard, path: str) -> str:
    return dashboard.url.replace("http://", "ws://") + path


async def test_a_crash_shows_up_on_the_socket_and_in_the_list(dashboard, start_worker, fake_jar):
    start_worker()
    sid = (await dashboard.create_custom_server(fake_jar, name="fragile"))["id"]
    async with connect(
        ws_url(dashboard, "/api/v2/ws/notifications"), subprotocols=["bearer", dashboard.token]
    ) as ws:
        assert (await dashboard.http.post(f"/api/v2/servers/{sid}/start")).status_code == 202
        await dashboard.wait_state(sid, "running")
        crash = {"command": "fake:crash"}
        assert (await dashboard.http.post(f"/api/v2/servers/{sid}/console", json=crash)).is_success
        seen: list[dict] = []
        async with asyncio.timeout(30):
            while not any(n["type"] == "server.crashed" for n in seen):
                message = json.loads(await ws.recv())
                if message["type"] == "notification":
                    seen.append(message["notification"])
    assert [n["type"] for n in seen] == ["server.started", "server.crashed"]
    crashed = seen[-1]
    assert crashed["server_id"] == sid
    assert crashed["severity"] == "error"
    listed = (await dashboard.http.get("/api/v2/notifications?unread=true")).json()
    assert crashed["id"] in [item["id"] for item in listed["items"]]
    assert listed["items"][0]["type"] == "server.crashed"


async def test_metrics_socket_is_for_admins(dashboard, start_worker):
    start_worker()
    async with connect(
        ws_url(dashboard, "/api/v2/ws/metrics"), subprotocols=["bearer", dashboard.token]
    ) as ws:
        snapshot = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert snapshot["type"] == "snapshot"
    assert [node["name"] for node in snapshot["nodes"]] == ["local"]
    assert isinstance(snapshot["servers_by_state"], dict)
    assert {"lag_seconds", "unprocessed_events"} <= set(snapshot["relay"])
    assert snapshot["requests_per_second"] >= 0
    assert isinstance(snapshot["viewers"], dict)
    async with httpx.AsyncClient(base_url=dashboard.url) as http:
        body = {"username": "plain", "email": "p@example.com", "password": PASSWORD}
        user_id = (await http.post("/api/v2/auth/register", json=body)).json()["id"]
        await dashboard.http.patch(f"/api/v2/users/{user_id}/approve")
        token = (
            await http.post("/api/v2/auth/login", json={"username": "plain", "password": PASSWORD})
        ).json()["access_token"]
    async with connect(
        ws_url(dashboard, "/api/v2/ws/metrics"), subprotocols=["bearer", token]
    ) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403
