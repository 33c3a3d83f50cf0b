"""The node agent over real HTTP: each request needs a fresh token the API signed for this node,
this server and this operation; paths are checked again on the node; and the API answers a
503 naming the node when its agent is down, silent or keyed differently."""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
import uuid

import httpx
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from app.shared.agent import NodeTokens
from app.shared.nodes import node_key
from tests.agent import running_agent
from tests.integration import test_files_api

api = test_files_api.api  # the files API in process, with node local's agent

TTL = 60


@pytest.fixture
async def agent(settings, clean):
    server = uuid.uuid4()
    root = settings.resolved_data_dir / "servers" / str(server)
    root.mkdir(parents=True)
    (root / "server.properties").write_text("motd=hello\n")
    async with running_agent(settings, "local") as url, httpx.AsyncClient(base_url=url) as http:
        yield Agent(http, NodeTokens(settings.node_key(), ttl=TTL), server)


class Agent:
    def __init__(self, http: httpx.AsyncClient, tokens: NodeTokens, server: uuid.UUID) -> None:
        self.http = http
        self.tokens = tokens
        self.server = server

    async def listing(self, token: str | None, server: uuid.UUID | None = None, path: str = ""):
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return await self.http.post(
            f"/v1/servers/{server or self.server}/files/listing",
            json={"path": path, "page": 1, "limit": 50},
            headers=headers,
        )

    def token(self, op: str = "files.listing", server: uuid.UUID | None = None, **kw) -> str:
        return self.tokens.mint(kw.pop("node", "local"), op, server or self.server)


def problem(response: httpx.Response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == f"urn:mcdash:problem:{slug}", body
    return body


async def test_a_valid_token_lists_the_servers_directory(agent):
    response = await agent.listing(agent.token())
    assert response.status_code == 200, response.text
    assert [item["name"] for item in response.json()["items"]] == ["server.properties"]


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Basic dXNlcjpwYXNz", "Bearer not-a-jwt", "Bearer a.b.c"],
    ids=["none", "scheme-only", "basic-auth", "garbage", "three-garbage-parts"],
)
async def test_no_token_or_a_malformed_one_is_401(agent, header):
    headers = {"Authorization": header} if header else {}
    response = await agent.http.post(
        f"/v1/servers/{agent.server}/files/listing",
        json={"path": "", "page": 1, "limit": 50},
        headers=headers,
    )
    problem(response, 401, "node-token-invalid")


async def test_a_token_signed_with_another_secret_is_401(agent):
    forged = NodeTokens("another-secret-" + "x1y2z3" * 8, ttl=TTL)
    response = await agent.listing(forged.mint("local", "files.listing", agent.server))
    problem(response, 401, "node-token-invalid")


async def test_an_expired_token_is_401(agent, settings):
    past = NodeTokens(settings.node_key(), ttl=TTL, clock=lambda: time.time() - 3600)
    response = await agent.listing(past.mint("local", "files.listing", agent.server))
    assert "expired" in problem(response, 401, "node-token-invalid")["detail"]


async def test_a_replayed_token_is_401(agent):
    token = agent.token()
    assert (await agent.listing(token)).status_code == 200
    response = await agent.listing(token)
    assert "already used" in problem(response, 401, "node-token-invalid")["detail"]


async def test_a_token_for_another_node_is_401(agent):
    response = await agent.listing(agent.token(node="node-b"))
    problem(response, 401, "node-token-invalid")


async def test_a_token_for_another_server_is_403(agent):
    other = uuid.uuid4()
    response = await agent.listing(agent.token(server=other))
    problem(response, 403, "node-token-forbidden")


async def test_a_token_for_another_operation_is_403(agent):
    response = await agent.listing(agent.token(op="files.delete"))
    problem(response, 403, "node-token-forbidden")


async def test_a_token_for_no_server_does_not_open_a_servers_files(agent):
    token = agent.tokens.mint("local", "files.listing", None)
    problem(await agent.listing(token), 403, "node-token-forbidden")


@pytest.mark.parametrize(
    "path",
    ["../", "../../etc", "/etc/passwd", "a/../../..", ".mcdash", "a\x00b"],
    ids=["dotdot", "dotdot-etc", "absolute", "climb-out", "control-dir", "nul"],
)
async def test_the_node_checks_paths_itself(agent, path):
    response = await agent.listing(agent.token(), path=path)
    assert response.status_code in (400, 403, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_node_without_a_record_is_a_503_naming_it(api, redis_url):
    redis = Redis.from_url(redis_url)
    await redis.delete(node_key("local"))
    await redis.aclose()
    await asyncio.sleep(2.1)  # the API remembers where a node listens for two seconds
    response = await api.get()
    body = problem(response, 503, "node-unavailable")
    assert body["node"] == "local"


async def test_an_agent_that_is_gone_is_a_503_not_a_hang(api, redis_url):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    redis = Redis.from_url(redis_url)
    await redis.hset(node_key("local"), "url", f"http://127.0.0.1:{port}")
    await redis.aclose()
    await asyncio.sleep(2.1)
    started = time.monotonic()
    response = await api.get()
    problem(response, 503, "node-unavailable")
    assert time.monotonic() - started < 10


async def test_an_agent_with_another_secret_is_a_503_that_says_so(api, settings, redis_url):
    other = settings.model_copy(
        update={
            "data_dir": settings.resolved_data_dir / "elsewhere",
            "node_secret": SecretStr(secrets.token_urlsafe(48)),
        }
    )
    other.resolved_data_dir.mkdir()
    async with running_agent(other, "local") as url:
        redis = Redis.from_url(redis_url)
        await redis.hset(node_key("local"), "url", url)
        await redis.aclose()
        await asyncio.sleep(2.1)
        response = await api.get()
    body = problem(response, 503, "node-misconfigured")
    assert "MCDASH_NODE_SECRET" in body["detail"]
