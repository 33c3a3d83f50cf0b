"""The file manager when more than one API talks to a node, and when the node goes away: two
API processes writing with one ETag (exactly one wins), a node stopped in the middle of an
upload or a download (the client sees an error; nothing partial stays on the node once its
agent is back), and an agent restarted with an upload in flight."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.agent import AgentServer, advertised_url, listen_socket
from app.files.domain.paths import TEMP_PREFIX
from app.main import create_app
from app.shared.agent import NodeTokens
from app.shared.nodes import node_key
from tests.agent import advertise, agent_process
from tests.conftest import bearer, login, register

MIB = 1024 * 1024


class Stack:
    def __init__(self, first, second, headers, sid: str, root: Path, settings) -> None:
        self.first = first
        self.second = second
        self.headers = headers
        self.sid = sid
        self.root = root
        self.settings = settings

    def url(self, path: str) -> str:
        return f"/api/v2/servers/{self.sid}/files/{path}"


@contextlib.asynccontextmanager
async def agent_for(settings, redis) -> AsyncIterator[str]:
    """Node local's agent in a process of its own, advertised; killed (-9) on the way out,
    as a worker dies."""
    async with agent_process(settings, "local") as url:
        await advertise(redis, settings, "local", url)
        yield url


@pytest.fixture
async def stack(settings, clean):
    configured = settings.model_copy(update={"file_upload_max_bytes": 64 * MIB})
    one, two = create_app(configured), create_app(configured)
    async with (
        one.router.lifespan_context(one),
        two.router.lifespan_context(two),
        contextlib.AsyncExitStack() as agents,
        contextlib.AsyncExitStack() as apis,
    ):
        redis = one.state.container.infra.redis
        await agents.enter_async_context(agent_for(configured, redis))
        # The first API over real HTTP, so a download streams to the client as it would.
        sock = listen_socket("127.0.0.1:0")
        served = AgentServer(one, sock, advertised_url(configured, sock))
        served.start()
        apis.push_async_callback(served.stop)
        first = httpx.AsyncClient(base_url=served.url, timeout=30)
        second = httpx.AsyncClient(transport=httpx.ASGITransport(app=two), base_url="http://two")
        async with first, second:
            await register(first, "admin1")
            headers = bearer(await login(first, "admin1"))
            created = await first.post(
                "/api/v2/servers/",
                headers=headers,
                json={"name": "lobby", "server_type": "custom", "version": "1.0", "memory_mb": 512},
            )
            assert created.status_code == 201, created.text
            sid = created.json()["id"]
            root = configured.resolved_data_dir / "servers" / sid
            root.mkdir(parents=True)
            yield Stack(first, second, headers, sid, root, configured), agents, redis


def leftovers(root: Path, data_dir: Path) -> list[str]:
    temps = [p.name for p in root.rglob(f"{TEMP_PREFIX}*")]
    journal = data_dir / "agent" / "uploads"
    return temps + ([p.name for p in journal.iterdir()] if journal.is_dir() else [])


async def test_two_api_processes_writing_with_one_etag_exactly_one_wins(stack):
    api, _, _ = stack
    (api.root / "server.properties").write_text("motd=first\n")
    for round_ in range(10):
        read = await api.first.get(api.url("server.properties"), headers=api.headers)
        etag = read.headers["etag"]
        contents = {name: f"motd={name}-{round_}\n" for name in ("one", "two")}
        answers = await asyncio.gather(
            *(
                client.put(
                    api.url("server.properties"),
                    json={"content": contents[name]},
                    headers={**api.headers, "If-Match": etag},
                )
                for client, name in ((api.first, "one"), (api.second, "two"))
            )
        )
        statuses = [answer.status_code for answer in answers]
        assert sorted(statuses) == [200, 412], [a.text for a in answers]
        winner = "one" if statuses[0] == 200 else "two"
        assert (api.root / "server.properties").read_text() == contents[winner]


async def test_a_node_stopped_midway_through_an_upload_leaves_nothing_once_it_is_back(stack):
    api, agents, redis = stack
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        boundary = b"--cut\r\n"
        yield boundary + b'Content-Disposition: form-data; name="file"; filename="w.bin"\r\n\r\n'
        for _ in range(32):
            yield b"\x07" * MIB
            sent += MIB
            if sent == 8 * MIB:
                await agents.aclose()  # the worker goes away with the upload half sent

    response = await api.second.post(  # in process: the 503 is read while the body is unsent
        api.url("upload"),
        params={"path": "world"},
        content=body(),
        headers={**api.headers, "Content-Type": "multipart/form-data; boundary=cut"},
    )

    assert response.status_code == 503, response.text
    assert response.json()["node"] == "local"
    assert not (api.root / "world" / "w.bin").exists()
    async with agent_for(api.settings, redis):  # the worker starts again, its agent with it
        assert leftovers(api.root, api.settings.resolved_data_dir) == []
        listed = await api.first.get(f"/api/v2/servers/{api.sid}/files", headers=api.headers)
        assert listed.status_code == 200


async def test_a_node_stopped_midway_through_a_download_is_an_error_for_the_client(stack):
    api, agents, redis = stack
    (api.root / "world").mkdir()
    (api.root / "world" / "big.bin").write_bytes(b"\x05" * (48 * MIB))
    received = 0
    with pytest.raises(httpx.HTTPError):  # noqa: PT012 - the stream breaks partway
        async with api.first.stream(
            "GET", api.url("world/big.bin") + "/download", headers=api.headers
        ) as response:
            assert response.status_code == 200
            async for chunk in response.aiter_raw():
                received += len(chunk)
                if received >= 4 * MIB and agents is not None:
                    closing, agents = agents, None
                    await closing.aclose()
    assert received < 48 * MIB
    await redis.delete(node_key("local"))


async def test_an_upload_the_api_never_commits_is_gone_after_an_agent_restart(stack):
    api, agents, redis = stack
    upload_id = uuid.uuid4().hex
    url = await redis.hget(node_key("local"), "url")
    tokens = NodeTokens(api.settings.node_key(), ttl=api.settings.node_token_ttl_seconds)
    token = tokens.mint("local", "files.upload", api.sid)
    async with httpx.AsyncClient(base_url=url) as node:
        sent = await node.put(
            f"/v1/servers/{api.sid}/files/uploads/{upload_id}",
            params={"path": "world/orphan.bin"},
            content=b"\x01" * MIB,
            headers={"Authorization": f"Bearer {token}"},
        )
    assert sent.status_code in (200, 201, 204), sent.text
    assert leftovers(api.root, api.settings.resolved_data_dir) != [], "held for the API's commit"

    await agents.aclose()  # the worker is killed before the API commits
    async with agent_for(api.settings, redis):
        assert leftovers(api.root, api.settings.resolved_data_dir) == []
        assert not (api.root / "world" / "orphan.bin").exists()
