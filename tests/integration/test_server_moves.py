"""Moving a stopped server between nodes (issue 11): the API, on a data directory of its own,
copies the server's tree and jar from one real agent to another over HTTP and switches the
server over; the nodes refuse a tree that would reach out of its directory. PostgreSQL and
Redis are real; nodes `local` and `b` each have their own data directory."""

from __future__ import annotations

import io
import os
import secrets
import tarfile
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from app.main import create_app
from app.servers.infrastructure.remote import AgentServerTrees
from app.settings import Settings
from app.shared.agent import AgentClient
from app.shared.domain import DomainError
from app.shared.jobqueue import json_queue
from app.shared.nodes import NodeJob, queue_names
from tests.agent import advertise, running_agent
from tests.conftest import bearer, login, register
from tests.fakes import runnable_jar


@dataclass
class Nodes:
    http: httpx.AsyncClient
    admin: dict[str, str]
    dirs: dict[str, Path]
    agents: AgentClient
    sync_redis: object

    def tree(self, node: str, server_id: str) -> Path:
        return self.dirs[node] / "servers" / server_id

    def servers_dir(self, node: str) -> list[str]:
        root = self.dirs[node] / "servers"
        return sorted(p.name for p in root.iterdir()) if root.exists() else []

    def queued_deletes(self, node: str) -> list[list[str]]:
        queue = json_queue(queue_names(node)[2], self.sync_redis)  # type: ignore[arg-type]
        return [job.args for job in queue.jobs if job.func_name == NodeJob.DELETE_FILES.value]


@pytest.fixture
async def nodes(settings: Settings, clean: None, tmp_path: Path) -> AsyncIterator[Nodes]:
    api = settings.model_copy(
        update={"data_dir": tmp_path / "api", "node_secret": SecretStr(secrets.token_urlsafe(48))}
    )
    dirs = {"local": tmp_path / "node-local", "b": tmp_path / "node-b"}
    application = create_app(api)
    async with application.router.lifespan_context(application), AsyncExitStack() as stack:
        infra = application.state.container.infra
        for name, data_dir in dirs.items():
            own = api.model_copy(update={"data_dir": data_dir})
            url = await stack.enter_async_context(running_agent(own, name))
            await advertise(infra.redis, own, name, url)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            await register(http, "admin1")
            admin = bearer(await login(http, "admin1"))
            yield Nodes(http, admin, dirs, infra.agents, infra.sync_redis)
    assert not (tmp_path / "api" / "servers").exists(), "the API kept a server's files"


async def custom_server_on_local(nodes: Nodes) -> str:
    body = {
        "name": "moving",
        "server_type": "custom",
        "version": "1.21.4",
        "memory_mb": 512,
        "node": "local",
    }
    created = await nodes.http.post("/api/v2/servers/", headers=nodes.admin, json=body)
    assert created.status_code == 201, created.text
    sid = str(created.json()["id"])
    jar = await nodes.http.put(
        f"/api/v2/servers/{sid}/jar",
        headers=nodes.admin,
        files={"file": ("server.jar", runnable_jar(), "application/java-archive")},
    )
    assert jar.status_code == 200, jar.text
    tree = nodes.tree("local", sid)
    (tree / "world" / "region").mkdir(parents=True)
    (tree / "world" / "region" / "r.0.0.mca").write_bytes(os.urandom(700_000))
    (tree / "server.properties").write_text("motd=moving\n")
    (tree / "plugins").mkdir()
    (tree / "plugins" / "empty.yml").write_bytes(b"")
    os.symlink("world/region", tree / "regions")
    (tree / "server.jar").write_bytes(b"a link to the cache, not copied")
    (tree / ".mcdash").mkdir()
    (tree / ".mcdash" / "console.log").write_text("private")
    return sid


def snapshot(root: Path) -> dict[str, bytes | str]:
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        if relative == "server.jar" or relative.startswith(".mcdash"):
            continue
        if path.is_symlink():
            found[relative] = f"-> {os.readlink(path)}"
        elif path.is_file():
            found[relative] = path.read_bytes()
        else:
            found[relative] = "dir"
    return found


async def test_a_stopped_custom_server_moves_with_its_files_and_jar(nodes: Nodes) -> None:
    sid = await custom_server_on_local(nodes)
    before = snapshot(nodes.tree("local", sid))
    sha256 = (await nodes.http.get(f"/api/v2/servers/{sid}", headers=nodes.admin)).json()[
        "jar_sha256"
    ]

    moved = await nodes.http.post(
        f"/api/v2/servers/{sid}/move", headers=nodes.admin, json={"node": "b"}
    )

    assert moved.status_code == 200, moved.text
    assert moved.json()["node"] == "b"
    shown = await nodes.http.get(f"/api/v2/servers/{sid}", headers=nodes.admin)
    assert shown.json()["node"] == "b"
    assert snapshot(nodes.tree("b", sid)) == before
    assert os.readlink(nodes.tree("b", sid) / "regions") == "world/region"
    assert not (nodes.tree("b", sid) / ".mcdash").exists()
    assert not (nodes.tree("b", sid) / "server.jar").exists()
    jar = nodes.dirs["b"] / "jars" / f"{sha256}.jar"
    assert jar.read_bytes() == (nodes.dirs["local"] / "jars" / f"{sha256}.jar").read_bytes()
    assert nodes.servers_dir("b") == [sid]
    assert nodes.queued_deletes("local") == [[sid]]

    back = await nodes.http.post(
        f"/api/v2/servers/{sid}/move", headers=nodes.admin, json={"node": "local"}
    )
    assert back.status_code == 409, "the old copy is still there until delete_files runs"
    assert back.json()["reason"] == "server-files-present"


def _tar(*members: tarfile.TarInfo) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    return buffer.getvalue()


def _member(name: str, *, link: str | None = None, size: int = 1) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    if link is not None:
        info.type, info.linkname = tarfile.SYMTYPE, link
    else:
        info.size = size
    return info


@pytest.mark.parametrize(
    "members",
    [
        pytest.param([_member("../escaped")], id="dot-dot"),
        pytest.param([_member("/tmp/absolute-escape")], id="absolute-path"),
        pytest.param([_member("ok"), _member("out", link="../../..")], id="link-out-of-tree"),
        pytest.param([_member("etc", link="/etc")], id="absolute-link"),
    ],
)
async def test_a_tree_reaching_out_of_its_directory_is_refused_and_leaves_nothing(
    nodes: Nodes, members: list[tarfile.TarInfo]
) -> None:
    sid = uuid.uuid4()

    with pytest.raises(DomainError) as refused:
        await nodes.agents.call(
            "b",
            "servers.tree-write",
            "PUT",
            f"/v1/servers/{sid}/tree/incoming",
            server=sid,
            content=_tar(*members),
        )

    assert refused.value.status == 422
    assert nodes.servers_dir("b") == []
    assert not (nodes.dirs["b"] / "escaped").exists()


async def test_a_copy_that_differs_from_the_source_aborts_the_move(
    nodes: Nodes, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = await custom_server_on_local(nodes)
    copy = AgentServerTrees.copy

    async def changed_after_copy(
        self: AgentServerTrees, server_id: uuid.UUID, **nodes_: str
    ) -> str:
        received = await copy(self, server_id, **nodes_)
        (nodes.tree("local", sid) / "server.properties").write_text("motd=edited meanwhile\n")
        return received

    monkeypatch.setattr(AgentServerTrees, "copy", changed_after_copy)

    moved = await nodes.http.post(
        f"/api/v2/servers/{sid}/move", headers=nodes.admin, json={"node": "b"}
    )

    assert moved.status_code == 502, moved.text
    assert moved.json()["type"] == "urn:mcdash:problem:move-failed"
    shown = await nodes.http.get(f"/api/v2/servers/{sid}", headers=nodes.admin)
    assert shown.json()["node"] == "local"
    assert nodes.servers_dir("b") == []
    assert nodes.queued_deletes("local") == []
