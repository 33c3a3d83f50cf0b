"""register -> login -> me -> refresh -> logout against a running uvicorn server."""

from __future__ import annotations

import json

import httpx
import pytest

pytestmark = pytest.mark.e2e
PASSWORD = "Trail-Pass-2026"


async def test_full_journey_over_http_records_every_event(live_server, db):
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as http:
        registered = await http.post(
            "/api/v2/auth/register",
            json={"username": "journey", "email": "journey@example.com", "password": PASSWORD},
            headers={"X-Request-ID": "journey-register"},
        )
        assert registered.status_code == 201, registered.text
        tokens = (
            await http.post(
                "/api/v2/auth/login", json={"username": "journey", "password": PASSWORD}
            )
        ).json()
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        me = await http.get("/api/v2/users/me", headers=auth)
        assert me.json()["username"] == "journey"
        assert me.json()["role"] == "admin"
        rotated = await http.post(
            "/api/v2/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert rotated.status_code == 200
        new_auth = {"Authorization": f"Bearer {rotated.json()['access_token']}"}
        assert (await http.post("/api/v2/auth/logout", headers=new_auth)).status_code == 204
        assert (await http.get("/api/v2/users/me", headers=new_auth)).status_code == 401
        docs = await http.get("/docs")
        assert docs.status_code == 200
        assert "swagger" in docs.text.lower()
        schema = (await http.get("/openapi.json")).json()
        assert "/api/v2/auth/register" in schema["paths"]
        metrics = (await http.get("/metrics")).text
        assert 'route="/api/v2/auth/login",status="200"' in metrics

    rows = await db.fetch(
        "SELECT event_type, metadata FROM domain_events WHERE aggregate_id = $1 ORDER BY position",
        registered.json()["id"],
    )
    assert [row["event_type"] for row in rows] == [
        "UserRegistered",
        "UserLoggedIn",
        "UserLoggedOut",
    ]
    register_meta = json.loads(rows[0]["metadata"])
    assert register_meta["request_id"] == "journey-register"
    assert register_meta["client_addr"] == "127.0.0.1"
    assert json.loads(rows[2]["metadata"])["actor_id"] == registered.json()["id"]

    logs = [json.loads(line) for line in live_server.log_lines() if line.startswith("{")]
    register_logs = [line for line in logs if line.get("request_id") == "journey-register"]
    assert register_logs
    assert register_logs[-1]["route"] == "/api/v2/auth/register"
    assert all("request_id" in line for line in logs if line.get("event") == "request")
