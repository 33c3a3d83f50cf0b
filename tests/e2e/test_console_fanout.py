"""Console fan-out behind the real uvicorn: shared deflated frames that a standard client reads,
every line in order, and a viewer that stops reading dropped with 4008 while the others go on."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.servers.infrastructure.runtime import CONSOLE_CHANNEL, CONSOLE_STREAM
from app.shared.nodes import NODE_NAMES, node_key
from tests.e2e.test_websocket_revocation import ws_url

pytestmark = pytest.mark.e2e

QUEUE = 10


@pytest.fixture
def stack_env(stack_env):
    return {**stack_env, "MCDASH_WEBSOCKET_QUEUE_SIZE": str(QUEUE)}


@pytest.fixture
async def watched(dashboard, stack_env):
    """A server on a stand-in node record (no worker) and a Redis client to write its console."""
    redis = Redis.from_url(stack_env["MCDASH_REDIS_URL"], decode_responses=True)
    await redis.hset(node_key("fanout"), mapping={"host": "127.0.0.1", "last_seen": time.time()})
    await redis.sadd(NODE_NAMES, "fanout")
    await redis.expire(node_key("fanout"), 600)
    created = await dashboard.http.post(
        "/api/v2/servers/",
        json={"name": "fanout", "server_type": "custom", "version": "1.20.4", "memory_mb": 512},
    )
    assert created.status_code == 201, created.text
    yield created.json()["id"], redis
    await redis.aclose()


async def publish(redis: Redis, server_id: str, texts: list[str]) -> None:
    """What ConsoleTail does with a batch of lines."""
    entries = []
    for text in texts:
        at = time.time()
        stream = CONSOLE_STREAM.format(server_id=server_id)
        entry = await redis.xadd(stream, {"line": text, "at": f"{at:.3f}"})
        entries.append({"id": entry, "line": text, "at": at})
    await redis.publish(CONSOLE_CHANNEL.format(server_id=server_id), json.dumps(entries))


async def lines_until(ws, count: int, timeout: float = 30) -> list[str]:
    seen: list[str] = []
    async with asyncio.timeout(timeout):
        while len(seen) < count:
            message = json.loads(await ws.recv())
            if message["type"] in ("backlog", "lines"):
                seen.extend(line["line"] for line in message["lines"])
    return seen


async def read_all(ws, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while True:
            await ws.recv()


def unread_socket(port: int) -> socket.socket:
    """A connected socket with a tiny receive buffer: a viewer on a slow link."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def test_deflated_viewers_read_every_line_in_order(dashboard, watched):
    server_id, redis = watched
    path = ws_url(dashboard, f"/ws/servers/{server_id}/console")
    offered = "permessage-deflate; client_max_window_bits"
    async with (
        connect(path, subprotocols=["bearer", dashboard.token]) as first,
        connect(path, subprotocols=["bearer", dashboard.token]) as second,
    ):
        negotiated = first.response.headers["Sec-WebSocket-Extensions"]
        assert "server_no_context_takeover" in negotiated, offered
        assert "client_no_context_takeover" in negotiated
        # A socket is live once it has a line: its checks and its attach run after the
        # handshake, and a loaded box may take longer over them than the publishing below.
        await publish(redis, server_id, ["ready"])
        for viewer in (first, second):
            assert await lines_until(viewer, 1) == ["ready"]
        texts = [f"line {n:04d} " + "x" * (n % 97) for n in range(300)]
        for start in range(0, len(texts), 7):
            await publish(redis, server_id, texts[start : start + 7])
        assert await lines_until(first, len(texts)) == texts
        assert await lines_until(second, len(texts)) == texts
        await first.send(json.dumps({"command": "list"}))
        reply = json.loads(await asyncio.wait_for(first.recv(), timeout=10))
        assert reply["type"] == "error", "commands still answered: the server is not running"


async def test_a_viewer_that_stops_reading_is_dropped_alone(dashboard, watched):
    server_id, redis = watched
    path = ws_url(dashboard, f"/ws/servers/{server_id}/console")
    port = int(dashboard.url.rsplit(":", 1)[1])
    async with (
        connect(path, subprotocols=["bearer", dashboard.token]) as fast,
        connect(
            path,
            subprotocols=["bearer", dashboard.token],
            sock=unread_socket(port),
            compression=None,
            max_queue=1,
        ) as slow,
    ):
        texts = []  # 8 MB: past what the kernel buffers for a socket (tcp_wmem up to 4 MB)
        for batch in range(80):
            chunk = [f"{batch:02d}-{n:02d} {os.urandom(5000).hex()}" for n in range(10)]
            texts.extend(chunk)
            await publish(redis, server_id, chunk)
            await asyncio.sleep(0.01)
        assert await lines_until(fast, len(texts)) == texts, "the others get everything, in order"
        with pytest.raises(ConnectionClosed) as closed:
            await read_all(slow)
        assert closed.value.rcvd is not None, "closed with a close frame"
        assert closed.value.rcvd.code == 4008
        assert "fell behind" in closed.value.rcvd.reason
        await publish(redis, server_id, ["after the drop"])
        assert await lines_until(fast, 1) == ["after the drop"]


async def test_live_viewers_outlive_their_call_and_are_answered_in_order(dashboard, watched):
    """A live viewer is handed off from its ASGI call (app/shared/handoff.py): what it sends is
    still answered, one message after another; a binary message closes it with 1003."""
    server_id, redis = watched
    auth = {"subprotocols": ["bearer", dashboard.token]}
    async with (
        connect(ws_url(dashboard, f"/ws/servers/{server_id}/console"), **auth) as console,
        connect(ws_url(dashboard, f"/ws/servers/{server_id}/logs"), **auth) as logs,
    ):
        await publish(redis, server_id, ["ready"])
        assert await lines_until(console, 1) == ["ready"]
        assert await lines_until(logs, 1) == ["ready"]
        assert await open_viewers(dashboard) == 2
        sent = ["not json", json.dumps({"command": "list"}), "[]", json.dumps({"command": "x"})]
        for text in sent:
            await console.send(text)
        replies = [json.loads(await asyncio.wait_for(console.recv(), 10)) for _ in sent]
        assert [r["type"] for r in replies] == ["error"] * 4
        statuses = [r["status"] for r in replies]
        assert statuses[0] == statuses[2] == 422, replies
        assert statuses[1] == statuses[3] != 422, "commands reach the bus: the server is stopped"
        await publish(redis, server_id, ["still live"])
        assert await lines_until(console, 1) == ["still live"]
        await logs.send(b"\x00binary")
        with pytest.raises(ConnectionClosed) as closed:
            await read_all(logs)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1003
        await publish(redis, server_id, ["after"])
        assert await lines_until(console, 1) == ["after"], "the other viewer goes on"
    async with asyncio.timeout(10):  # and once closed, each has left the hub
        while await open_viewers(dashboard) != 0:
            await asyncio.sleep(0.1)


async def open_viewers(dashboard) -> float:
    text = (await dashboard.http.get("/metrics")).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "mcdash_websocket_connections" and sample.labels["channel"] == "console"
    )
