"""Local-storage backups live on the node that took them (issue 11): the API, on a data
directory of its own, reaches them only through the nodes' agents. Two real agents over two
other data directories stand for nodes `local` and `b`; PostgreSQL and Redis are real."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from app.main import create_app
from app.settings import Settings
from app.shared.agent import AgentClient
from app.shared.domain import DomainError
from tests.agent import advertise, running_agent
from tests.conftest import bearer, login, register
from tests.integration.test_backups_api import archive, server, upload


@dataclass
class Nodes:
    http: httpx.AsyncClient
    api_dir: Path
    dirs: dict[str, Path]
    users: dict[str, dict[str, str]]
    agents: dict[str, AsyncExitStack]
    agent_client: AgentClient

    def archives(self, node: str) -> list[Path]:
        root = self.dirs[node] / "backups"
        return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []

    def spooled(self, node: str) -> list[Path]:
        spool = self.dirs[node] / "agent" / "backup-uploads"
        return sorted(spool.iterdir()) if spool.exists() else []

    async def stop(self, node: str) -> None:
        """The node's worker goes away: its agent stops answering."""
        await self.agents.pop(node).aclose()


@pytest.fixture
async def nodes(settings: Settings, clean: None, tmp_path: Path) -> AsyncIterator[Nodes]:
    secret = SecretStr(secrets.token_urlsafe(48))
    api = settings.model_copy(
        update={
            "data_dir": tmp_path / "api",
            "node_secret": secret,
            "backup_max_upload_bytes": 256 * 1024,
        }
    )
    dirs = {"local": tmp_path / "node-local", "b": tmp_path / "node-b"}
    application = create_app(api)
    async with application.router.lifespan_context(application), AsyncExitStack() as outer:
        redis = application.state.container.infra.redis
        agents: dict[str, AsyncExitStack] = {}
        for name, data_dir in dirs.items():
            own = api.model_copy(update={"data_dir": data_dir})
            stack = AsyncExitStack()
            url = await stack.enter_async_context(running_agent(own, name))
            await advertise(redis, own, name, url)
            agents[name] = stack
            outer.push_async_callback(lambda s=stack: s.aclose())
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            await register(http, "admin1")
            admin = bearer(await login(http, "admin1"))
            user_id = (await register(http, "owner1")).json()["id"]
            await http.patch(f"/api/v2/users/{user_id}/approve", headers=admin)
            users = {"admin": admin, "owner": bearer(await login(http, "owner1"))}
            # New servers go to node local; a test puts one on b with place_on().
            cordon = await http.patch("/api/v2/nodes/b", headers=admin, json={"cordoned": True})
            assert cordon.status_code == 200, cordon.text
            world = Nodes(
                http,
                api.resolved_data_dir,
                dirs,
                users,
                agents,
                application.state.container.infra.agents,
            )
            yield world
    assert not (world.api_dir / "backups").exists(), "the API kept archives on its own disk"
    assert not (world.api_dir / "tmp").exists(), "the API spooled an upload on its own disk"


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "not within the time"
        await asyncio.sleep(0.05)


async def test_upload_download_and_delete_go_to_the_node(nodes):
    http, owner = nodes.http, nodes.users["owner"]
    sid = await server(http, owner)
    data = archive({"world/level.dat": b"generation=7\n" * 1000})
    uploaded = await upload(http, owner, sid, data)
    assert uploaded.status_code == 201, uploaded.text
    bid = uploaded.json()["id"]
    stored = nodes.dirs["local"] / "backups" / sid / f"{bid}.tar.gz"
    assert nodes.archives("local") == [stored]
    assert stored.read_bytes() == data
    assert nodes.spooled("local") == []
    download = await http.get(f"/api/v2/backups/{bid}/download", headers=owner)
    assert download.status_code == 200
    assert download.content == data
    assert download.headers["content-length"] == str(len(data))
    assert (await http.delete(f"/api/v2/backups/{bid}", headers=owner)).status_code == 204
    assert nodes.archives("local") == []
    stored.parent.mkdir(parents=True, exist_ok=True)
    gone = await http.get(f"/api/v2/backups/{bid}/download", headers=owner)
    assert gone.status_code == 404


async def test_an_archive_gone_from_its_node_is_410(nodes):
    http, owner = nodes.http, nodes.users["owner"]
    sid = await server(http, owner)
    bid = (await upload(http, owner, sid, archive({"a": b"a"}))).json()["id"]
    (nodes.dirs["local"] / "backups" / sid / f"{bid}.tar.gz").unlink()
    response = await http.get(f"/api/v2/backups/{bid}/download", headers=owner)
    assert response.status_code == 410
    assert response.json()["type"] == "urn:mcdash:problem:backup-archive-missing"


def _multipart(data: bytes, *, cut: bool) -> tuple[bytes, str]:
    boundary = "mcdash-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="w.tar.gz"\r\n'
        "Content-Type: application/gzip\r\n\r\n"
    ).encode()
    tail = b"" if cut else f"\r\n--{boundary}--\r\n".encode()
    return head + data + tail, f"multipart/form-data; boundary={boundary}"


async def _raising_body(data: bytes) -> AsyncIterator[bytes]:
    body, _ = _multipart(data, cut=True)
    for start in range(0, len(body) // 2, 16 * 1024):
        yield body[start : start + 16 * 1024]
        await asyncio.sleep(0.01)
    raise ConnectionResetError("the client went away midway")


LARGE = secrets.token_bytes(200 * 1024)  # no archive, but the node spools it before it checks


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("client-gone-midway", None),
        ("multipart-cut-before-its-end", 400),
        ("over-the-upload-limit", 413),
        ("not-an-archive", 422),
        ("jar-in-plugins-without-server-code", 403),
    ],
)
async def test_an_upload_that_does_not_end_well_leaves_nothing_on_the_node(nodes, db, kind, status):
    http, owner = nodes.http, nodes.users["owner"]
    sid = await server(http, owner)
    url = f"/api/v2/servers/{sid}/backups/upload"
    if kind == "client-gone-midway":
        _, content_type = _multipart(LARGE, cut=True)
        with pytest.raises(ConnectionResetError):
            await http.post(
                url,
                headers={**owner, "Content-Type": content_type},
                content=_raising_body(LARGE),
            )
    else:
        if kind == "multipart-cut-before-its-end":
            body, content_type = _multipart(LARGE, cut=True)
        elif kind == "over-the-upload-limit":
            body, content_type = _multipart(LARGE + LARGE, cut=False)
        elif kind == "not-an-archive":
            body, content_type = _multipart(LARGE, cut=False)
        else:
            body, content_type = _multipart(archive({"plugins/evil.jar": b"PK"}), cut=False)
        response = await http.post(
            url, headers={**owner, "Content-Type": content_type}, content=body
        )
        assert response.status_code == status, response.text
    await eventually(lambda: nodes.spooled("local") == [])
    assert nodes.archives("local") == []
    assert await db.fetchval("SELECT count(*) FROM backups") == 0


async def test_a_jar_in_plugins_is_kept_for_an_admin(nodes):
    http, admin = nodes.http, nodes.users["admin"]
    sid = await server(http, admin)
    response = await upload(http, admin, sid, archive({"plugins/tool.jar": b"PK"}))
    assert response.status_code == 201, response.text
    assert len(nodes.archives("local")) == 1


async def test_an_offline_node_is_a_503_naming_it(nodes, db):
    http, owner = nodes.http, nodes.users["owner"]
    sid = await server(http, owner)
    bid = (await upload(http, owner, sid, archive({"a": b"a"}))).json()["id"]
    await nodes.stop("local")
    for method, path, extra in (
        ("GET", f"/api/v2/backups/{bid}/download", {}),
        ("POST", f"/api/v2/servers/{sid}/backups/upload", {"files": {"file": ("w", b"x")}}),
    ):
        response = await http.request(method, path, headers=owner, **extra)
        assert response.status_code == 503, (path, response.text)
        assert response.json()["type"] == "urn:mcdash:problem:node-unavailable"
        assert response.json()["node"] == "local"
    assert await db.fetchval("SELECT count(*) FROM backups") == 1
    deleted = await http.delete(f"/api/v2/backups/{bid}", headers=owner)
    assert deleted.status_code == 204, "the row goes; the archive left on the node is logged"


async def place_on(db, server_id: str, node: str) -> None:
    """Where placement would have put it: the server lives on `node`."""
    await db.execute("UPDATE servers SET node=$1 WHERE id=$2", node, uuid.UUID(server_id))


async def test_a_restore_onto_another_node_stages_the_archive_there(nodes, db):
    http, admin = nodes.http, nodes.users["admin"]
    source = await server(http, admin, "source")
    target = await server(http, admin, "target")
    await place_on(db, target, "b")
    data = archive({"world/level.dat": b"generation=3\n"})
    bid = (await upload(http, admin, source, data)).json()["id"]
    accepted = await http.post(
        f"/api/v2/backups/{bid}/restore",
        headers=admin,
        json={"server_id": target, "from_other_server": True},
    )
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["node"] == "b"
    staged = nodes.dirs["b"] / "backups" / target / "staged" / f"{bid}.tar.gz"
    assert nodes.archives("b") == [staged]
    assert staged.read_bytes() == data
    assert nodes.spooled("b") == []
    locks = await db.fetch("SELECT server_id, operation FROM backup_locks")
    assert [(str(r[0]), r[1]) for r in locks] == [(target, "restore")]


async def test_a_restore_from_an_offline_node_is_a_503_and_frees_the_target(nodes, db):
    http, admin = nodes.http, nodes.users["admin"]
    source = await server(http, admin, "source")
    target = await server(http, admin, "target")
    await place_on(db, target, "b")
    bid = (await upload(http, admin, source, archive({"a": b"a"}))).json()["id"]
    await nodes.stop("local")
    refused = await http.post(
        f"/api/v2/backups/{bid}/restore",
        headers=admin,
        json={"server_id": target, "from_other_server": True},
    )
    assert refused.status_code == 503, refused.text
    assert refused.json()["node"] == "local"
    assert "node local" in refused.json()["detail"]
    assert await db.fetchval("SELECT count(*) FROM backup_locks") == 0
    row = await db.fetchrow("SELECT restore_status, restore_error FROM backups")
    assert row["restore_status"] == "failed"
    assert "node local" in row["restore_error"]
    assert nodes.archives("b") == []


async def test_a_deleted_servers_archives_go_from_its_node(nodes, db):
    http, owner = nodes.http, nodes.users["owner"]
    sid = await server(http, owner)
    kept = await server(http, owner, "kept")
    for sid_ in (sid, kept):
        assert (await upload(http, owner, sid_, archive({"a": b"a"}))).status_code == 201
    assert (await http.delete(f"/api/v2/servers/{sid}", headers=owner)).status_code == 204
    await eventually(lambda: not (nodes.dirs["local"] / "backups" / sid).exists())
    assert [p.parent.name for p in nodes.archives("local")] == [kept]


@pytest.mark.parametrize(
    "key",
    [
        "../../node.key",
        "{other}/{bid}.tar.gz",
        "{sid}/not-a-uuid.tar.gz",
        "{sid}/{bid}.zip",
        "{sid}/deeper/{bid}.tar.gz",
        "{sid}/{bid}.tar.gz/..",
    ],
    ids=[
        "dotdot",
        "other-server",
        "not-a-uuid",
        "not-an-archive",
        "other-folder",
        "trailing-dotdot",
    ],
)
async def test_the_node_refuses_keys_outside_the_servers_archives(nodes, key):
    """Asked straight, with a valid token: the node checks every key itself."""
    http, owner = nodes.http, nodes.users["owner"]
    sid = await server(http, owner)
    bid = (await upload(http, owner, sid, archive({"a": b"a"}))).json()["id"]
    agents = nodes.agent_client
    bad = key.format(sid=sid, bid=bid, other=uuid.uuid4())
    base = f"/v1/servers/{sid}/backups"
    for op, method, path, extra in (
        ("backups.download", "GET", f"{base}/archive", {"params": {"key": bad}}),
        ("backups.delete", "POST", f"{base}/archive/delete", {"json": {"key": bad}}),
    ):
        with pytest.raises(DomainError) as refused:
            await agents.call("local", op, method, path, server=uuid.UUID(sid), **extra)
        assert refused.value.status == 422, (op, refused.value.detail)
    assert len(nodes.archives("local")) == 1
