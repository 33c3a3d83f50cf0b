"""Placement on real PostgreSQL and Redis: concurrent creates over two nodes never race for a
port, servers spread by free memory, and operators see and cordon the nodes."""

from __future__ import annotations

import asyncio
import collections
import time
import uuid

import httpx
import pytest

from app.main import create_app
from app.shared.nodes import node_key
from tests.agent import advertise, in_process
from tests.conftest import bearer, login, register
from tests.integration.test_auth_api import assert_problem

BASE_PORT = 20000 + (uuid.uuid4().int % 60) * 600
PER_NODE = 300


@pytest.fixture
async def api(settings, clean):
    configured = settings.model_copy(
        update={
            "server_port_range_start": BASE_PORT,
            "server_port_range_end": BASE_PORT + PER_NODE - 1,
            "placement_memory_ratio": 10.0,
        }
    )
    app = create_app(configured)
    async with in_process(app):
        infra = app.state.container.infra
        other = configured.model_copy(
            update={
                "server_port_range_start": BASE_PORT + PER_NODE,
                "server_port_range_end": BASE_PORT + 2 * PER_NODE - 1,
            }
        )
        await advertise(infra.redis, other, "b", "http://127.0.0.1:9")  # online, never called
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            await register(http, "admin1")
            admin = bearer(await login(http, "admin1"))
            user_id = (await register(http, "owner1")).json()["id"]
            await http.patch(f"/api/v2/users/{user_id}/approve", headers=admin)
            owner = bearer(await login(http, "owner1"))
            yield Api(http, infra.redis, {"admin": admin, "owner": owner})


class Api:
    def __init__(self, http: httpx.AsyncClient, redis, users) -> None:
        self.http = http
        self.redis = redis
        self.users = users

    async def create(self, name: str, user: str = "admin", **extra) -> httpx.Response:
        body = {"name": name, "server_type": "custom", "version": "1.21.4", "memory_mb": 512}
        return await self.http.post("/api/v2/servers/", headers=self.users[user], json=body | extra)

    async def nodes(self) -> dict[str, dict]:
        listed = await self.http.get("/api/v2/nodes/", headers=self.users["admin"])
        assert listed.status_code == 200, listed.text
        return {node["name"]: node for node in listed.json()["items"]}


async def test_500_creates_10_at_a_time_get_0_conflicts_and_unique_ports_per_node(api):
    gate = asyncio.Semaphore(10)
    latencies: list[float] = []

    async def one(index: int) -> httpx.Response:
        async with gate:
            started = time.perf_counter()
            response = await api.create(f"many-{index:03d}")
            latencies.append(time.perf_counter() - started)
            return response

    answers = await asyncio.gather(*(one(i) for i in range(500)))

    statuses = collections.Counter(answer.status_code for answer in answers)
    assert statuses == {201: 500}, [a.text for a in answers if a.status_code != 201][:3]
    placed = [(a.json()["node"], a.json()["port"]) for a in answers]
    assert len(set(placed)) == 500
    per_node = collections.Counter(node for node, _ in placed)
    # Equal nodes share them: a node is chosen before its lock is taken, so creates running
    # together may pick the same one (each still checks its room under the lock).
    assert abs(per_node["local"] - per_node["b"]) <= 20, per_node
    for node, port in placed:
        low = BASE_PORT if node == "local" else BASE_PORT + PER_NODE
        assert low <= port < low + PER_NODE, (node, port)
    latencies.sort()
    print(
        f"\n500 creates, 10 at a time: p50 {latencies[250] * 1000:.1f} ms, "
        f"p95 {latencies[475] * 1000:.1f} ms"
    )
    nodes = await api.nodes()
    assert (nodes["local"]["server_count"], nodes["b"]["server_count"]) == (
        per_node["local"],
        per_node["b"],
    )
    assert nodes["b"]["memory_allocated_mb"] == per_node["b"] * 512


async def test_servers_go_to_the_node_with_the_most_memory_left(api):
    await api.redis.hset(node_key("b"), "memory_total", 8 * 2**30)
    await api.redis.hset(node_key("local"), "memory_total", 6 * 2**30)

    nodes = [(await api.create(f"spread-{i}", memory_mb=4096)).json()["node"] for i in range(4)]

    # With the ratio of 10, b has 80 GiB of room and local 60: b takes each server until
    # they are even, then they alternate (a tie goes to the first name, b).
    assert nodes == ["b"] * 4
    more = [(await api.create(f"more-{i}", memory_mb=4096)).json()["node"] for i in range(6)]
    assert more == ["b", "b", "local", "b", "local", "b"]


async def test_a_cordoned_node_gets_no_new_servers_and_shows_it(api):
    cordon = await api.http.patch(
        "/api/v2/nodes/b", headers=api.users["admin"], json={"cordoned": True}
    )
    assert cordon.status_code == 200, cordon.text
    assert cordon.json()["cordoned"] is True

    automatic = [(await api.create(f"c-{i}")).json()["node"] for i in range(3)]
    explicit = await api.create("onto-b", node="b")

    assert automatic == ["local"] * 3
    assert_problem(explicit, 409, "node-cordoned")
    shown = (await api.http.get("/api/v2/nodes/b", headers=api.users["admin"])).json()
    assert (shown["online"], shown["cordoned"], shown["server_count"]) == (True, True, 0)
    assert shown["port_range"] == [BASE_PORT + PER_NODE, BASE_PORT + 2 * PER_NODE - 1]
    uncordon = await api.http.patch(
        "/api/v2/nodes/b", headers=api.users["admin"], json={"cordoned": False}
    )
    assert uncordon.json()["cordoned"] is False
    assert (await api.create("back-on-b", node="b")).json()["node"] == "b"


async def test_the_node_list_shows_capacity_and_what_its_worker_advertises(api):
    await api.create("one", node="local", memory_mb=1024)

    nodes = await api.nodes()

    local = nodes["local"]
    assert local["online"] is True
    assert local["url"].startswith("http://127.0.0.1:")
    assert local["memory_total"] > 0
    assert local["cpu_count"] >= 1
    assert local["server_count"] == 1
    assert local["memory_allocated_mb"] == 1024
    assert local["port_range"] == [BASE_PORT, BASE_PORT + PER_NODE - 1]
    assert local["java"], "the Java runtimes the worker found"
    assert local["version"]


async def test_when_no_node_is_online_a_create_is_a_503(api):
    await api.redis.delete(node_key("local"), node_key("b"))

    assert_problem(await api.create("nowhere"), 503, "no-node-online")


@pytest.mark.parametrize(
    ("user", "method", "path", "body", "status"),
    [
        ("owner", "GET", "/api/v2/nodes/", None, 403),
        ("owner", "PATCH", "/api/v2/nodes/b", {"cordoned": True}, 403),
        ("admin", "GET", "/api/v2/nodes/nowhere", None, 404),
        ("admin", "GET", "/api/v2/nodes/Not_A_Name", None, 422),
        ("admin", "PATCH", "/api/v2/nodes/" + "a" * 64, {"cordoned": True}, 422),
        ("admin", "PATCH", "/api/v2/nodes/b", {"cordoned": "yes"}, 422),
        ("admin", "PATCH", "/api/v2/nodes/b", {"cordoned": True, "extra": 1}, 422),
        ("admin", "PATCH", "/api/v2/nodes/b", {}, 422),
    ],
    ids=[
        "user-lists-nodes",
        "user-cordons",
        "unknown-node",
        "malformed-name",
        "name-64-chars",
        "cordoned-not-a-bool",
        "unknown-field",
        "empty-body",
    ],
)
async def test_bad_node_requests(api, user, method, path, body, status):
    response = await api.http.request(method, path, headers=api.users[user], json=body)
    assert_problem(response, status)


@pytest.mark.parametrize(
    ("user", "extra", "status", "slug"),
    [
        ("owner", {"node": "b"}, 403, "forbidden"),
        ("admin", {"node": "nowhere"}, 422, "invalid-input"),
        ("admin", {"node": "Bad Name"}, 422, None),
        ("owner", {"port": BASE_PORT - 1}, 422, "invalid-input"),
    ],
    ids=["user-names-a-node", "unknown-offline-node", "malformed-node", "user-port-off-range"],
)
async def test_bad_placement_requests(api, user, extra, status, slug):
    response = await api.create("bad", user=user, **extra)
    body = assert_problem(response, status)
    if slug:
        assert body["type"].endswith(slug)
