"""WebSockets are rate-limited: console commands by the console limit (M4), opening and
messages by the websocket limit (M9)."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

from tests.e2e.test_websocket_revocation import close_code, still_open, ws_url

pytestmark = pytest.mark.e2e

CONSOLE_LIMIT, WEBSOCKET_LIMIT = 3, 10


@pytest.fixture
def stack_env(stack_env):
    return {
        **stack_env,
        "MCDASH_RATE_LIMIT_CONSOLE": f"{CONSOLE_LIMIT}/minute",
        "MCDASH_RATE_LIMIT_WEBSOCKET": f"{WEBSOCKET_LIMIT}/minute",
    }


async def reply_to(ws, text: str) -> dict:
    await ws.send(text)
    return json.loads(await asyncio.wait_for(ws.recv(), timeout=10))


async def test_console_socket_commands_count_in_the_console_limit(
    dashboard, start_worker, fake_jar
):
    start_worker()
    sid = (await dashboard.create_custom_server(fake_jar, name="flooded"))["id"]
    path = ws_url(dashboard, f"/ws/servers/{sid}/console")
    async with connect(path, subprotocols=["bearer", dashboard.token]) as ws:
        statuses = [
            (await reply_to(ws, json.dumps({"command": f"say {n}"})))["status"]
            for n in range(CONSOLE_LIMIT)
        ]
        # the server is stopped, so each command that gets through is a 409
        assert statuses == [409] * CONSOLE_LIMIT
        limited = await reply_to(ws, json.dumps({"command": "say one too many"}))
        assert limited["type"] == "error"
        assert limited["status"] == 429
        assert 1 <= limited["retry_after"] <= 60
        # the socket stays open, and malformed input is still answered without a command
        assert await still_open(ws)
        assert (await reply_to(ws, "not json"))["status"] == 422
    # the HTTP route shares the user's console bucket
    posted = await dashboard.http.post(f"/api/v2/servers/{sid}/console", json={"command": "list"})
    assert posted.status_code == 429


async def test_opening_and_messages_count_in_the_websocket_limit(dashboard, start_worker, fake_jar):
    start_worker()
    sid = (await dashboard.create_custom_server(fake_jar, name="chatty"))["id"]
    path = ws_url(dashboard, f"/ws/servers/{sid}/status")
    async with connect(path, subprotocols=["bearer", dashboard.token]) as ws:
        for _ in range(WEBSOCKET_LIMIT - 2):
            await ws.send("ignored")
        # the socket's opening and the messages above used up all but one
        await ws.send("the last one allowed")
        limited = await reply_to(ws, "one too many")
        assert (limited["type"], limited["status"]) == ("error", 429)
        assert await still_open(ws)
    async with connect(path, subprotocols=["bearer", dashboard.token]) as refused:
        code, reason = await close_code(refused)
    assert code == 4429
    assert "retry in" in reason
