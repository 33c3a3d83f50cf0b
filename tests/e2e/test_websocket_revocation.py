"""Open WebSockets honour revocation: logout, deactivation, role changes and token expiry (H1)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest
from jose import jwt
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.conftest import PASSWORD

pytestmark = pytest.mark.e2e


def ws_url(dashboard, path: str) -> str:
    return dashboard.url.replace("http://", "ws://") + path


def sockets_of(dashboard, sid: str) -> dict[str, str]:
    return {
        "console": f"/ws/servers/{sid}/console",
        "logs": f"/ws/servers/{sid}/logs",
        "status": f"/ws/servers/{sid}/status",
        "notifications": "/api/v2/ws/notifications",
    }


async def close_code(ws, timeout: float = 10) -> tuple[int, str]:
    """Wait until the server closes the socket; its close code and reason."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        received = closed.rcvd
    assert received is not None, "closed without a close frame"
    return received.code, received.reason


async def still_open(ws) -> bool:
    pong = await ws.ping()
    await asyncio.wait_for(pong, timeout=5)
    return True


async def command(ws, text: str) -> dict:
    await ws.send(json.dumps({"command": text}))
    return json.loads(await asyncio.wait_for(ws.recv(), timeout=10))


async def log_in(url: str, username: str, password: str = PASSWORD) -> str:
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.post(
            "/api/v2/auth/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])


async def another_user(dashboard, username: str, role: str) -> tuple[str, str]:
    """An approved user with `role`, and an access token of theirs."""
    async with httpx.AsyncClient(base_url=dashboard.url) as http:
        body = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
        user_id = (await http.post("/api/v2/auth/register", json=body)).json()["id"]
    await dashboard.http.patch(f"/api/v2/users/{user_id}/approve")
    if role != "user":
        changed = await dashboard.http.patch(f"/api/v2/users/{user_id}/role", json={"role": role})
        assert changed.status_code == 200, changed.text
    return user_id, await log_in(dashboard.url, username)


@pytest.fixture
async def server_id(dashboard, start_worker, fake_jar) -> str:
    start_worker()  # the server is placed on an online node, its jar stored there
    return str((await dashboard.create_custom_server(fake_jar, name="watched"))["id"])


async def test_logout_closes_that_sessions_sockets_with_4401_and_no_other(dashboard, server_id):
    other_session = await log_in(dashboard.url, "owner")
    paths = sockets_of(dashboard, server_id)
    opened = [
        await connect(ws_url(dashboard, path), subprotocols=["bearer", dashboard.token])
        for path in paths.values()
    ]
    survivor = await connect(
        ws_url(dashboard, paths["console"]), subprotocols=["bearer", other_session]
    )
    try:
        await asyncio.sleep(0.3)
        assert (await dashboard.http.post("/api/v2/auth/logout")).status_code == 204
        for name, ws in zip(paths, opened, strict=True):
            code, reason = await close_code(ws)
            assert (name, code) == (name, 4401)
            assert "logged out" in reason
        assert await still_open(survivor)
        # the other session's console still takes commands (the server is stopped: 409)
        assert (await command(survivor, "list"))["status"] == 409
    finally:
        for ws in (*opened, survivor):
            await ws.close()


async def test_deactivation_closes_every_socket_of_the_user_with_4401(dashboard, server_id):
    user_id, token = await another_user(dashboard, "ops", "operator")
    console = await connect(
        ws_url(dashboard, f"/ws/servers/{server_id}/console"), subprotocols=["bearer", token]
    )
    notifications = await connect(
        ws_url(dashboard, "/api/v2/ws/notifications"), subprotocols=["bearer", token]
    )
    async with console, notifications:
        assert (await command(console, "list"))["status"] == 409
        off = await dashboard.http.patch(f"/api/v2/users/{user_id}/deactivate")
        assert off.status_code == 200, off.text
        for ws in (console, notifications):
            code, reason = await close_code(ws)
            assert code == 4401
            assert "can no longer sign in" in reason


async def test_a_demoted_admin_loses_a_socket_only_admins_may_hold_with_4403(dashboard, server_id):
    user_id, token = await another_user(dashboard, "deputy", "admin")
    console = await connect(
        ws_url(dashboard, f"/ws/servers/{server_id}/console"), subprotocols=["bearer", token]
    )
    notifications = await connect(
        ws_url(dashboard, "/api/v2/ws/notifications"), subprotocols=["bearer", token]
    )
    async with console, notifications:
        assert (await command(console, "list"))["status"] == 409
        demoted = await dashboard.http.patch(f"/api/v2/users/{user_id}/role", json={"role": "user"})
        assert demoted.status_code == 200, demoted.text
        code, reason = await close_code(console)
        assert code == 4403
        assert "no longer" in reason
        # a user may still watch notifications (of their own servers only)
        assert await still_open(notifications)
    # and cannot open the console again
    async with connect(
        ws_url(dashboard, f"/ws/servers/{server_id}/console"), subprotocols=["bearer", token]
    ) as again:
        assert (await close_code(again))[0] == 4404


async def test_a_promotion_keeps_the_socket_and_its_new_rights(dashboard, server_id):
    user_id, token = await another_user(dashboard, "rookie", "operator")
    async with connect(
        ws_url(dashboard, f"/ws/servers/{server_id}/console"), subprotocols=["bearer", token]
    ) as console:
        await dashboard.http.patch(f"/api/v2/users/{user_id}/role", json={"role": "admin"})
        await asyncio.sleep(0.5)
        assert await still_open(console)
        assert (await command(console, "list"))["status"] == 409


async def test_a_command_checks_the_session_first_even_without_a_notice(
    dashboard, server_id, settings
):
    """With the change notice lost, the next command still finds the session revoked."""
    async with connect(
        ws_url(dashboard, f"/ws/servers/{server_id}/console"),
        subprotocols=["bearer", dashboard.token],
    ) as console:
        assert (await command(console, "list"))["status"] == 409
        claims = jwt.get_unverified_claims(dashboard.token)
        redis = Redis.from_url(settings.redis_url)
        try:
            await redis.set(f"auth:session:{claims['sid']}:revoked", "1", ex=600)
        finally:
            await redis.aclose()
        await console.send(json.dumps({"command": "list"}))
        code, reason = await close_code(console)
        assert code == 4401
        assert "logged out" in reason


async def test_sockets_close_with_4401_when_the_access_token_expires(
    dashboard, server_id, settings
):
    claims = jwt.get_unverified_claims(dashboard.token)
    now = int(time.time())
    short = jwt.encode(
        {**claims, "iat": now, "exp": now + 3, "jti": str(uuid.uuid4())},
        settings.jwt_secret.get_secret_value(),
        algorithm="HS256",
    )
    paths = sockets_of(dashboard, server_id)
    opened_at = time.monotonic()
    opened = [
        await connect(ws_url(dashboard, path), subprotocols=["bearer", short])
        for path in paths.values()
    ]
    try:
        for ws in opened:
            code, reason = await close_code(ws, timeout=15)
            assert code == 4401
            assert "expired" in reason
        assert time.monotonic() - opened_at >= 1.5
    finally:
        for ws in opened:
            await ws.close()


async def test_a_password_change_closes_the_other_sessions_sockets(dashboard, server_id):
    other_session = await log_in(dashboard.url, "owner")
    path = ws_url(dashboard, f"/ws/servers/{server_id}/console")
    mine = await connect(path, subprotocols=["bearer", dashboard.token])
    theirs = await connect(path, subprotocols=["bearer", other_session])
    async with mine, theirs:
        changed = await dashboard.http.put(
            "/api/v2/users/me",
            json={"current_password": PASSWORD, "new_password": "Another-Pass-77"},
        )
        assert changed.status_code == 200, changed.text
        assert (await close_code(theirs))[0] == 4401
        assert (await command(mine, "list"))["status"] == 409
