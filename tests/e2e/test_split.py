"""The split topology end to end: the API keeps no server data, each node keeps its own.

One API with a data directory of its own, workers for nodes a and b (a data directory, game
ports and node agent each) and the scheduler. Servers on node b go through the flows the
single-node e2e tests drive (files, custom jar, console, groups, local backups); a server on
node a must not see a byte of it change. Then placement: spread by free memory, cordons, and
what creating a server answers when nodes go down.

One test function on one topology: its four processes take longer to start than the flows take
to run, and a module-scoped topology could be set up once per xdist worker anyway."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from redis.asyncio import Redis

from app.shared.nodes import node_key
from tests.e2e.conftest import Dashboard, read_until
from tests.e2e.split import (  # noqa: F401 - the fixtures split and admin
    PORT_RANGES,
    Split,
    admin_fixture,
    create_on,
    create_server,
    snapshot,
    split_fixture,
    written,
)
from tests.e2e.test_backups import wait_backup
from tests.e2e.test_groups import console_reply, group, wait_entries, wait_file, whitelist_reply

pytestmark = pytest.mark.e2e

PROBLEM = "urn:mcdash:problem:"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def in_range(port: int, node: str) -> bool:
    start, end = PORT_RANGES[node]
    return start <= port <= end


async def test_servers_on_two_nodes_keep_their_data_on_their_node(split, admin, fake_jar):
    steady = await create_on(admin, fake_jar, "steady", "a")
    assert in_range(steady["port"], "a"), steady
    await run_once(admin, steady["id"])
    a_dir = split.server_dir("a", steady["id"])
    assert (a_dir / "server.properties").is_file()
    a_before = snapshot(a_dir)

    await both_nodes_are_listed(split, admin)
    remote = await files_jar_console_and_groups_on_b(split, admin, fake_jar, a_dir)
    archived = await backups_on_b(split, admin, fake_jar)
    assert snapshot(a_dir) == a_before, "node b's work changed node a's server"
    assert not (split.nodes["a"].data_dir / "backups" / archived).exists()
    assert_each_directory_holds_its_own(split, {"a": {steady["id"]}, "b": {remote, archived}})

    await placement_by_free_memory_and_cordons(admin)
    await nodes_going_down(split, admin, remote)
    assert snapshot(a_dir) == a_before, "node a's server changed"
    assert_each_directory_holds_its_own(split, await placement(admin))


async def run_once(dashboard: Dashboard, sid: str) -> None:
    """Start and stop: the server's directory then holds a world, properties, the jar."""
    started = await dashboard.http.post(f"/api/v2/servers/{sid}/start")
    assert started.status_code == 202, started.text
    await dashboard.wait_state(sid, "running")
    assert (await dashboard.http.post(f"/api/v2/servers/{sid}/stop")).status_code == 202
    await dashboard.wait_state(sid, "stopped")


async def nodes_by_name(dashboard: Dashboard) -> dict[str, dict]:
    listed = await dashboard.http.get("/api/v2/nodes/")
    assert listed.status_code == 200, listed.text
    return {node["name"]: node for node in listed.json()["items"]}


async def both_nodes_are_listed(split: Split, dashboard: Dashboard) -> None:
    nodes = await nodes_by_name(dashboard)
    assert set(nodes) == {"a", "b"}, nodes
    redis = Redis.from_url(split.redis_url, decode_responses=True)
    try:
        for name, node in nodes.items():
            assert node["online"] is True, node
            assert node["cordoned"] is False, node
            assert node["port_range"] == list(PORT_RANGES[name]), node
            assert node["url"] == await redis.hget(node_key(name), "url"), node
            assert node["memory_total"] > 0, node
    finally:
        await redis.aclose()
    assert [nodes[name]["server_count"] for name in ("a", "b")] == [1, 0], nodes
    assert [nodes[name]["memory_allocated_mb"] for name in ("a", "b")] == [512, 0], nodes
    one = await dashboard.http.get("/api/v2/nodes/b")
    assert one.status_code == 200, one.text
    assert one.json()["name"] == "b"
    assert one.json()["url"] == nodes["b"]["url"]


async def files_jar_console_and_groups_on_b(
    split: Split, dashboard: Dashboard, jar: Path, a_dir: Path
) -> str:
    http = dashboard.http
    server = await create_on(dashboard, jar, "remote", "b")
    sid = server["id"]
    assert in_range(server["port"], "b"), server
    b_dir = split.server_dir("b", sid)
    jar_sha = sha256(jar.read_bytes())
    cache = split.nodes["b"].data_dir / "jars"
    assert any(sha256(p.read_bytes()) == jar_sha for p in cache.rglob("*") if p.is_file()), (
        "the custom jar is kept in node b's jar cache"
    )

    assert (await http.post(f"/api/v2/servers/{sid}/start")).status_code == 202
    await dashboard.wait_state(sid, "running")
    assert sha256((b_dir / "server.jar").read_bytes()) == jar_sha
    assert f"server-port={server['port']}" in (b_dir / "server.properties").read_text()

    # Console: over the WebSocket and over REST, answered by the JVM node b runs.
    async with dashboard.console(sid) as ws:
        await read_until(ws, lambda line: "Done (" in line)
        await ws.send(json.dumps({"command": "list"}))
        lines = await read_until(ws, lambda line: "players online" in line)
        assert "There are 0 of a max of 20 players online" in lines[-1]
        sent = await http.post(f"/api/v2/servers/{sid}/console", json={"command": "say via-rest"})
        assert sent.status_code == 202, sent.text
        await read_until(ws, lambda line: "[Server] via-rest" in line)

    # Files: node b's copy is what the API reads and writes.
    files = f"/api/v2/servers/{sid}/files"
    note = await http.put(f"{files}/plugins/notes.yml", json={"content": "a: 1\n"})
    assert note.status_code == 201, note.text
    assert (b_dir / "plugins" / "notes.yml").read_text() == "a: 1\n"
    properties = await http.get(f"{files}/server.properties")
    assert properties.status_code == 200, properties.text
    original = properties.json()["content"]
    assert f"server-port={server['port']}" in original
    edited = original + "view-distance=6\n"
    stale = await http.put(
        f"{files}/server.properties", json={"content": edited}, headers={"If-Match": '"stale"'}
    )
    assert stale.status_code == 412, stale.text
    saved = await http.put(
        f"{files}/server.properties",
        json={"content": edited},
        headers={"If-Match": properties.headers["etag"]},
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["restart_required"] is True
    assert "view-distance=6" in (b_dir / "server.properties").read_text()
    history = (await http.get(f"{files}/server.properties/history")).json()["items"]
    assert [(item["action"], item["outcome"]) for item in history] == [
        ("written", "applied"),
        ("written", "rejected"),  # the stale write, recorded and refused
        ("original", "applied"),
    ]
    restored = await http.post(
        f"{files}/server.properties/history/{history[-1]['version']}/restore",
        headers={"If-Match": saved.headers["etag"]},
    )
    assert restored.status_code == 200, restored.text
    assert (b_dir / "server.properties").read_text() == original

    uploaded = await http.post(
        f"{files}/upload", params={"path": "config"}, files={"file": ("up.yml", b"up: true\n")}
    )
    assert uploaded.status_code == 201, uploaded.text
    assert (b_dir / "config" / "up.yml").read_bytes() == b"up: true\n"
    download = await http.get(f"{files}/config/up.yml/download")
    assert download.status_code == 200, download.text
    assert download.content == b"up: true\n"
    region = await http.get(f"{files}/world/region/r.0.0.mca/download")
    assert region.status_code == 200, region.text
    assert region.content.startswith(b"generation=")

    # Out of the server's directory: refused by the API's parse, and by node b for a link in
    # b's directory that leads to a's server.
    escape = os.path.relpath(a_dir, b_dir)
    assert (await http.get(files, params={"path": escape})).status_code == 400
    assert (await http.get(f"{files}/%2e%2e/{Path(escape).name}/ops.json")).status_code == 400
    moved = await http.post(f"{files}/plugins/notes.yml/move", json={"to": f"{escape}/x.yml"})
    assert moved.status_code == 400, moved.text
    os.symlink(a_dir, b_dir / "neighbour")
    try:
        peek = await http.get(f"{files}/neighbour/server.properties")
        assert peek.status_code == 403, peek.text
        assert (await http.get(f"{files}/neighbour/server.properties/download")).status_code == 403
        planted = await http.put(
            f"{files}/neighbour/planted.txt",
            json={"content": "pwned"},
            headers={"If-None-Match": "*"},
        )
        assert planted.status_code == 403, planted.text
        sneaked = await http.post(
            f"{files}/upload", params={"path": "neighbour"}, files={"file": ("x.txt", b"x")}
        )
        assert sneaked.status_code == 403, sneaked.text
    finally:
        (b_dir / "neighbour").unlink()

    # Groups: ops and whitelist written in b's directory, the running server told.
    players = await group(dashboard, "players", "whitelist", "Alice")
    assert (await http.post(f"/api/v2/groups/{players}/servers/{sid}")).status_code == 201
    await wait_file(b_dir / "whitelist.json", lambda names: names == {"Alice"})
    reply = await console_reply(dashboard, sid, "whitelist list", whitelist_reply)
    assert reply.endswith("There are 1 whitelisted player(s): Alice")
    staff = await group(dashboard, "staff", "op", "Bob", op_level=2)
    assert (await http.post(f"/api/v2/groups/{staff}/servers/{sid}")).status_code == 201
    ops = await wait_entries(
        b_dir / "ops.json", lambda entries: [e["level"] for e in entries] == [2]
    )
    assert [entry["name"] for entry in ops] == ["Bob"]
    access = (await http.get(f"/api/v2/servers/{sid}/access")).json()
    assert access["last_sync"]["failures"] == []

    assert (await http.post(f"/api/v2/servers/{sid}/stop")).status_code == 202
    await dashboard.wait_state(sid, "stopped")
    return str(sid)


def world_archive(level: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("world/level.dat")
        info.size = len(level)
        tar.addfile(info, io.BytesIO(level))
    return buffer.getvalue()


async def backups_on_b(split: Split, dashboard: Dashboard, jar: Path) -> str:
    """Local storage: node b keeps the archives; download, upload and restore go through it."""
    http = dashboard.http
    server = await create_on(dashboard, jar, "archived", "b")
    sid = server["id"]
    b_dir = split.server_dir("b", sid)
    kept = split.nodes["b"].data_dir / "backups" / sid
    assert (await http.post(f"/api/v2/servers/{sid}/start")).status_code == 202
    await dashboard.wait_state(sid, "running")

    requested = await http.post(f"/api/v2/servers/{sid}/backups", json={"name": "live"})
    assert requested.status_code == 202, requested.text
    backup = await wait_backup(dashboard, requested.json()["id"])
    assert backup["status"] == "completed", backup
    stored = kept / f"{backup['id']}.tar.gz"
    assert stored.is_file(), sorted(p.name for p in kept.parent.rglob("*"))
    download = await http.get(f"/api/v2/backups/{backup['id']}/download")
    assert download.status_code == 200, download.text
    assert sha256(download.content) == backup["sha256"] == sha256(stored.read_bytes())
    with tarfile.open(fileobj=io.BytesIO(download.content), mode="r:gz") as tar:
        assert "world/level.dat" in tar.getnames()

    archive = world_archive(b"uploaded world\n")
    imported = await http.post(
        f"/api/v2/servers/{sid}/backups/upload",
        params={"name": "imported"},
        files={"file": ("world.tar.gz", archive, "application/gzip")},
    )
    assert imported.status_code == 201, imported.text
    upload = imported.json()
    assert upload["status"] == "completed", upload
    assert (kept / f"{upload['id']}.tar.gz").read_bytes() == archive

    assert (await http.post(f"/api/v2/servers/{sid}/stop")).status_code == 202
    await dashboard.wait_state(sid, "stopped")
    restore = await http.post(f"/api/v2/backups/{upload['id']}/restore")
    assert restore.status_code == 202, restore.text
    restored = await wait_backup(
        dashboard, upload["id"], field="restore_status", until=("completed", "failed")
    )
    assert restored["restore_status"] == "completed", restored
    assert (b_dir / "world" / "level.dat").read_bytes() == b"uploaded world\n"
    safety = (await http.get(f"/api/v2/servers/{sid}/backups?backup_type=safety")).json()
    assert safety["total"] == 1, safety
    assert (kept / f"{safety['items'][0]['id']}.tar.gz").is_file()
    return str(sid)


async def placed(dashboard: Dashboard, name: str, **extra) -> str:
    """Create a server (placed by the API unless `node` is given); the node it went to."""
    created = await create_server(dashboard, name, **extra)
    assert created.status_code == 201, created.text
    server = created.json()
    assert in_range(server["port"], server["node"]), server
    return str(server["node"])


async def allocated(dashboard: Dashboard) -> list[int]:
    nodes = await nodes_by_name(dashboard)
    return [nodes[name]["memory_allocated_mb"] for name in ("a", "b")]


async def placement_by_free_memory_and_cordons(dashboard: Dashboard) -> None:
    """Both nodes are this machine, so the most free memory is the least allocated. The sizes
    keep the two apart: no choice here is a tie."""
    http = dashboard.http
    assert await allocated(dashboard) == [512, 1024]
    assert await placed(dashboard, "spread-1", memory_mb=1024) == "a"
    assert await placed(dashboard, "spread-2", memory_mb=768) == "b"
    assert await placed(dashboard, "spread-3") == "a"
    assert await allocated(dashboard) == [2048, 1792]

    cordon = await http.patch("/api/v2/nodes/a", json={"cordoned": True})
    assert cordon.status_code == 200, cordon.text
    assert cordon.json()["cordoned"] is True
    assert (await nodes_by_name(dashboard))["a"]["cordoned"] is True
    assert await placed(dashboard, "cordoned-1") == "b"
    assert await placed(dashboard, "cordoned-2") == "b"  # b has less free memory than a now
    refused = await create_server(dashboard, "explicit", node="a")
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"] == f"{PROBLEM}node-cordoned"
    both = await http.patch("/api/v2/nodes/b", json={"cordoned": True})
    assert both.status_code == 200, both.text
    nowhere = await create_server(dashboard, "nowhere")
    assert nowhere.status_code == 409, nowhere.text
    assert nowhere.json()["type"] == f"{PROBLEM}node-full"

    for name in ("a", "b"):
        uncordon = await http.patch(f"/api/v2/nodes/{name}", json={"cordoned": False})
        assert uncordon.status_code == 200, uncordon.text
        assert uncordon.json()["cordoned"] is False
    assert await allocated(dashboard) == [2048, 2816]
    assert await placed(dashboard, "uncordoned") == "a"
    assert await placed(dashboard, "explicit", node="b") == "b"
    listed = (await http.get("/api/v2/servers/", params={"limit": 100})).json()["items"]
    assert len({(server["node"], server["port"]) for server in listed}) == len(listed) == 10


async def nodes_going_down(split: Split, dashboard: Dashboard, on_b: str) -> None:
    """A stopped node stays listed (it holds servers) as offline and takes no new server, even
    with the most free memory; its servers' files are a 503 naming it; with every node down,
    creating a server is a 503."""
    http = dashboard.http
    listed = (await http.get("/api/v2/servers/", params={"limit": 100})).json()["items"]
    for server in listed:
        if server["name"] in ("cordoned-1", "cordoned-2", "explicit"):
            deleted = await http.delete(f"/api/v2/servers/{server['id']}")
            assert deleted.status_code == 204, deleted.text
    assert await allocated(dashboard) == [2560, 1792]  # b has the most free memory now
    split.stop_node("b")
    nodes = await nodes_by_name(dashboard)
    assert nodes["b"]["online"] is False, nodes
    assert nodes["a"]["online"] is True, nodes
    assert await placed(dashboard, "while-b-is-down") == "a"
    unreachable = await http.get(f"/api/v2/servers/{on_b}/files/server.properties")
    assert unreachable.status_code == 503, unreachable.text
    assert unreachable.json()["type"] == f"{PROBLEM}node-unavailable"
    assert unreachable.json()["node"] == "b", unreachable.text
    split.stop_node("a")
    none_online = await create_server(dashboard, "no-node")
    assert none_online.status_code == 503, none_online.text
    assert none_online.json()["type"] == f"{PROBLEM}no-node-online"


async def placement(dashboard: Dashboard) -> dict[str, set[str]]:
    """Which servers each node has, as the API lists them."""
    listed = await dashboard.http.get("/api/v2/servers/", params={"limit": 100})
    assert listed.status_code == 200, listed.text
    found: dict[str, set[str]] = {}
    for server in listed.json()["items"]:
        found.setdefault(server["node"], set()).add(server["id"])
    return found


def assert_each_directory_holds_its_own(split: Split, servers_of: dict[str, set[str]]) -> None:
    """The API's and the scheduler's data directories stay empty (both secrets come from the
    environment, so neither needs a key file; servers/, jars/, backups/, tmp/ and agent/ are
    node data); each node's holds the directories of the servers placed on it, and no other."""
    for process in (split.api, split.scheduler):
        assert written(process.data_dir) == set(), (
            process.name,
            sorted(p.relative_to(process.data_dir).as_posix() for p in process.data_dir.rglob("*")),
        )
    for name, node in split.nodes.items():
        servers = node.data_dir / "servers"
        held = {p.name for p in servers.iterdir() if p.is_dir()} if servers.exists() else set()
        assert held <= servers_of.get(name, set()), (name, held, servers_of)
