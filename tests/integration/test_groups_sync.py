"""The node side of groups against a real database: launch hook, drift checks, broken files."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from pathlib import Path

from app.groups import module as groups
from app.groups.application.access import handle_server_file_changed
from app.groups.infrastructure.jobs import RedisSyncRequests
from app.groups.infrastructure.read import SqlGroupsReadModel
from app.groups.infrastructure.sync import AccessSync
from app.servers.application.messages import GetServer
from app.shared.domain import SystemClock
from tests.conftest import bearer, login, register


@dataclass(frozen=True)
class FileModifiedStandIn:
    server_id: uuid.UUID
    path: str


async def setup_server(client, settings):
    await register(client, "admin1")
    headers = bearer(await login(client, "admin1"))
    server = await client.post(
        "/api/v2/servers/",
        headers=headers,
        json={"name": "node", "server_type": "custom", "version": "1.20.4", "memory_mb": 512},
    )
    sid = server.json()["id"]
    group = await client.post(
        "/api/v2/groups/", headers=headers, json={"name": "wl", "group_type": "whitelist"}
    )
    gid = group.json()["id"]
    await client.post(
        f"/api/v2/groups/{gid}/players", headers=headers, json={"name": "Alice", "mode": "offline"}
    )
    attached = await client.post(f"/api/v2/groups/{gid}/servers/{sid}", headers=headers)
    assert attached.status_code == 201
    directory = settings.resolved_data_dir / "servers" / sid
    directory.mkdir(parents=True)
    return headers, uuid.UUID(sid), directory


def names(path: Path) -> list[str]:
    return [entry["name"] for entry in json.loads(path.read_text())]


async def test_before_launch_hook_applies_changes_queued_while_the_node_was_down(
    app, client, settings
):
    headers, sid, directory = await setup_server(client, settings)
    container = app.state.container
    container.infra.sync_redis.delete("rq:queue:node:local:high")
    (directory / "whitelist.json").write_text(json.dumps([{"uuid": "x", "name": "Hand"}]))
    server = await container.bus.handle(GetServer(actor=None, server_id=sid))
    await groups.node_sync(container.infra).before_launch(server, directory)
    assert names(directory / "whitelist.json") == ["Alice", "Hand"]
    assert json.loads((directory / "ops.json").read_text()) == []
    access = (await client.get(f"/api/v2/servers/{sid}/access", headers=headers)).json()
    assert access["last_sync"]["drift_whitelist"] == ["Hand"]
    assert access["last_sync"]["commands"] == []


async def test_file_changes_queue_a_drift_check_that_leaves_files_alone(app, client, settings):
    _, sid, directory = await setup_server(client, settings)
    container = app.state.container
    requests = RedisSyncRequests(container.redis, container.servers.nodes, ttl_seconds=60)
    nodes = SqlGroupsReadModel(container.infra.read_engine)
    queue = "rq:queue:node:local:low"
    await handle_server_file_changed(
        FileModifiedStandIn(sid, "server.properties"), server_nodes=nodes, access_sync=requests
    )
    assert container.infra.sync_redis.llen(queue) == 0
    for _ in range(3):
        await handle_server_file_changed(
            FileModifiedStandIn(sid, "whitelist.json"), server_nodes=nodes, access_sync=requests
        )
    assert container.infra.sync_redis.llen(queue) == 1
    await handle_server_file_changed(
        FileModifiedStandIn(uuid.uuid4(), "ops.json"), server_nodes=nodes, access_sync=requests
    )
    assert container.infra.sync_redis.llen(queue) == 1

    original = json.dumps([{"uuid": "z", "name": "Zed"}]).encode()
    (directory / "whitelist.json").write_bytes(original)
    outcome = await AccessSync(container.bus, SystemClock()).apply(
        sid, directory, console=None, check_only=True
    )
    assert outcome is not None
    assert outcome.drift_whitelist == ("Zed",)
    assert (directory / "whitelist.json").read_bytes() == original


async def test_unreadable_file_is_left_alone_unless_authoritative(app, client, settings):
    headers, sid, directory = await setup_server(client, settings)
    container = app.state.container
    (directory / "whitelist.json").write_text("{not json")
    sync = AccessSync(container.bus, SystemClock())
    outcome = await sync.apply(sid, directory, console=None)
    assert outcome is not None
    assert outcome.failures == ("whitelist.json is not valid JSON; it was left as it is",)
    assert (directory / "whitelist.json").read_text() == "{not json"
    await client.put(f"/api/v2/servers/{sid}/access", headers=headers, json={"authoritative": True})
    outcome = await sync.apply(sid, directory, console=None)
    assert outcome is not None
    assert outcome.failures == ()
    assert names(directory / "whitelist.json") == ["Alice"]
    gone = await sync.apply(uuid.uuid4(), directory / "missing", console=None)
    assert gone is None
    assert not (directory / "missing").exists()


async def test_hand_edit_through_the_file_manager_queues_a_drift_check(app, client, settings):
    headers, sid, directory = await setup_server(client, settings)
    container = app.state.container
    queue = "rq:queue:node:local:low"
    assert container.infra.sync_redis.llen(queue) == 0
    written = await client.put(
        f"/api/v2/servers/{sid}/files/whitelist.json",
        headers={**headers, "If-None-Match": "*"},
        json={"content": '[{"uuid": "z", "name": "Zed"}]\n'},
    )
    assert written.status_code == 201, written.text
    for _ in range(100):
        if container.infra.sync_redis.llen(queue) == 1:
            break
        await asyncio.sleep(0.05)
    assert container.infra.sync_redis.llen(queue) == 1
    assert (directory / "whitelist.json").read_text() == '[{"uuid": "z", "name": "Zed"}]\n'
