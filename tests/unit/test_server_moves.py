"""Moving a stopped server to another node, through the bootstrapped bus on fakes: what is
refused before anything is copied, and what a move copies, switches and leaves to clean up."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest

from app.servers.application.handlers import NodeOffline
from app.servers.application.messages import CordonNode, CreateServer, MoveServer, UpdateServer
from app.servers.application.placement import NodeCordoned, NodeFull
from app.servers.domain.errors import InvalidTransition, MoveFailed
from app.servers.domain.events import ServerMoved
from app.servers.domain.model import ServerState, ServerType
from app.shared.domain import ConcurrencyConflict, Conflict, DomainError, Forbidden, InvalidInput
from app.shared.security import Role
from tests.fakes import FakeApp, node_record, principal

ALICE = principal("alice")
OPERATOR = principal("ops", role=Role.OPERATOR)
FILES = {"server.properties": b"motd=hi\n", "world/level.dat": b"\x00level"}
JAR = "a" * 64


def nodes(world: FakeApp, *, ports: dict[str, tuple[int, int]] | None = None, **mb: int) -> None:
    """These nodes online, each with that much memory and its own ports (or those given)."""
    world.servers.nodes.online = set(mb)
    world.servers.nodes.records = {
        name: node_record(
            name,
            memory_mb=size,
            ports=(ports or {}).get(name, (30000 + i * 100, 30000 + i * 100 + 99)),
        )
        for i, (name, size) in enumerate(sorted(mb.items()))
    }


async def server_on(world: FakeApp, node: str, memory_mb: int = 1024, **values: Any) -> uuid.UUID:
    body: dict[str, Any] = {
        "name": f"s-{uuid.uuid4().hex[:8]}",
        "description": None,
        "server_type": ServerType.CUSTOM,
        "version": "1.21.4",
        "memory_mb": memory_mb,
        "node": node,
    }
    owner = principal("alice", role=Role.ADMIN, user_id=ALICE.user_id)
    server_id = await world.bus.handle(CreateServer(owner=owner, **(body | values)))
    world.servers.trees.files[(node, server_id)] = dict(FILES)
    return server_id


def with_jar(world: FakeApp, server_id: uuid.UUID, node: str) -> None:
    server = world.db.servers[server_id]
    server.config = dataclasses.replace(server.config, jar_sha256=JAR)
    world.servers.trees.jars[JAR] = {node}


def unmoved(world: FakeApp, server_id: uuid.UUID) -> bool:
    trees = world.servers.trees
    return (
        world.db.servers[server_id].node == "a"
        and "delete_files" not in world.servers.nodes.actions(server_id)
        and not world.events.of(ServerMoved)
        and ("b", server_id) not in trees.files
        and ("b", server_id) not in trees.staged
    )


async def running(world: FakeApp, server_id: uuid.UUID) -> None:
    world.db.servers[server_id].state = ServerState.RUNNING


async def cordoned(world: FakeApp, server_id: uuid.UUID) -> None:
    world.db.cordoned.add("b")


async def offline(world: FakeApp, server_id: uuid.UUID) -> None:
    world.servers.nodes.online.discard("b")


async def full(world: FakeApp, server_id: uuid.UUID) -> None:
    await server_on(world, "b", memory_mb=3584)


async def nothing(world: FakeApp, server_id: uuid.UUID) -> None:
    pass


@pytest.mark.parametrize(
    ("node", "actor", "prepare", "refusal"),
    [
        pytest.param("b", OPERATOR, running, InvalidTransition, id="running"),
        pytest.param("a", OPERATOR, nothing, Conflict, id="same-node"),
        pytest.param("b", OPERATOR, cordoned, NodeCordoned, id="cordoned-target"),
        pytest.param("b", OPERATOR, full, NodeFull, id="full-target"),
        pytest.param("b", OPERATOR, offline, NodeOffline, id="offline-target"),
        pytest.param("b", ALICE, nothing, Forbidden, id="user-not-operator"),
        pytest.param("B_bad", OPERATOR, nothing, InvalidInput, id="malformed-node-name"),
    ],
)
async def test_a_move_that_cannot_happen_is_refused_before_anything_is_copied(
    world: FakeApp, node: str, actor: Any, prepare: Any, refusal: type[DomainError]
) -> None:
    nodes(world, a=4096, b=4096)
    server_id = await server_on(world, "a")
    await prepare(world, server_id)

    with pytest.raises(refusal) as refused:
        await world.bus.handle(MoveServer(actor=actor, server_id=server_id, node=node))

    assert unmoved(world, server_id)
    assert world.servers.trees.discarded == []
    if refusal is InvalidTransition:
        assert "stop it first" in str(refused.value)


async def test_a_move_copies_the_files_and_jar_switches_the_node_and_removes_the_old_copy(
    world: FakeApp,
) -> None:
    nodes(world, a=4096, b=4096, ports={"a": (30000, 30099), "b": (30000, 30099)})
    server_id = await server_on(world, "a", port=30042)
    with_jar(world, server_id, "a")

    await world.bus.handle(MoveServer(actor=OPERATOR, server_id=server_id, node="b"))

    server = world.db.servers[server_id]
    assert (server.node, server.port) == ("b", 30042)
    assert world.servers.trees.files[("b", server_id)] == FILES
    assert world.servers.trees.jars[JAR] == {"a", "b"}
    moved = world.events.of(ServerMoved)
    assert [(e.from_node, e.to_node, e.port) for e in moved] == [("a", "b", 30042)]
    deletes = [j.node for j in world.servers.nodes.jobs if j.action == "delete_files"]
    assert deletes == ["a"]


async def test_a_port_outside_the_targets_range_becomes_its_next_free_one(world: FakeApp) -> None:
    nodes(world, a=4096, b=4096)
    server_id = await server_on(world, "a")
    taken = await server_on(world, "b")

    await world.bus.handle(MoveServer(actor=OPERATOR, server_id=server_id, node="b"))

    assert world.db.servers[taken].port == 30100
    assert (world.db.servers[server_id].node, world.db.servers[server_id].port) == ("b", 30101)


async def test_a_copy_that_does_not_match_the_source_aborts_the_move(world: FakeApp) -> None:
    nodes(world, a=4096, b=4096)
    server_id = await server_on(world, "a")
    world.servers.trees.tamper = True

    with pytest.raises(MoveFailed):
        await world.bus.handle(MoveServer(actor=OPERATOR, server_id=server_id, node="b"))

    assert unmoved(world, server_id)
    assert world.servers.trees.discarded == [("b", server_id, False)]
    assert world.servers.trees.files[("a", server_id)] == FILES


async def test_a_change_during_the_copy_aborts_the_move_and_discards_the_copy(
    world: FakeApp,
) -> None:
    nodes(world, a=4096, b=4096)
    server_id = await server_on(world, "a")

    async def meanwhile() -> None:
        owner = principal("alice", role=Role.ADMIN, user_id=ALICE.user_id)
        await world.bus.handle(UpdateServer(actor=owner, server_id=server_id, motd="changed"))

    world.servers.trees.during_copy = meanwhile

    with pytest.raises(ConcurrencyConflict):
        await world.bus.handle(MoveServer(actor=OPERATOR, server_id=server_id, node="b"))

    assert unmoved(world, server_id)
    assert world.servers.trees.discarded == [("b", server_id, True)]
    assert world.servers.trees.files[("a", server_id)] == FILES


async def test_a_cordon_placed_during_the_copy_aborts_the_switch(world: FakeApp) -> None:
    nodes(world, a=4096, b=4096)
    server_id = await server_on(world, "a")

    async def meanwhile() -> None:
        await world.bus.handle(CordonNode(actor=OPERATOR, name="b", cordoned=True))

    world.servers.trees.during_copy = meanwhile

    with pytest.raises(NodeCordoned):
        await world.bus.handle(MoveServer(actor=OPERATOR, server_id=server_id, node="b"))

    assert unmoved(world, server_id)
    assert world.servers.trees.discarded == [("b", server_id, True)]
