"""Placement through the bootstrapped bus on fakes: which node a new server goes to, which of
its ports it gets, and the nodes as operators list and cordon them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from app.servers.application.messages import CordonNode, CreateServer, GetNode, ListNodes
from app.servers.application.placement import NodeCordoned, NodeFull, NoNodeOnline
from app.servers.domain.errors import NodeNotFound
from app.servers.domain.model import ServerType
from app.shared.domain import Forbidden, InvalidInput
from app.shared.security import Role
from tests.fakes import FakeApp, node_record, principal

ALICE = principal("alice")
OPERATOR = principal("ops", role=Role.OPERATOR)
ADMIN = principal("root", role=Role.ADMIN)


async def create(world: FakeApp, owner=ALICE, **values: Any) -> uuid.UUID:
    body: dict[str, Any] = {
        "name": f"s-{uuid.uuid4().hex[:8]}",
        "description": None,
        "server_type": ServerType.CUSTOM,
        "version": "1.21.4",
        "memory_mb": 1024,
    }
    return await world.bus.handle(CreateServer(owner=owner, **(body | values)))


def nodes(world: FakeApp, **memory_mb: int) -> None:
    """These nodes online (and only these), each with that much memory and its own ports."""
    world.servers.nodes.online = set(memory_mb)
    world.servers.nodes.records = {
        name: node_record(name, memory_mb=mb, ports=(30000 + i * 100, 30000 + i * 100 + 99))
        for i, (name, mb) in enumerate(sorted(memory_mb.items()))
    }


def placed(world: FakeApp, server_id: uuid.UUID) -> tuple[str, int]:
    server = world.db.servers[server_id]
    return server.node, server.port


async def test_servers_go_where_the_most_memory_is_left_and_spread(world: FakeApp) -> None:
    nodes(world, a=4096, b=6144)

    chosen = [placed(world, await create(world))[0] for _ in range(5)]

    # b has 2048 MiB more, so takes two; then they are even (a wins the tie by name) and
    # each next server goes to whichever has more left.
    assert chosen == ["b", "b", "a", "b", "a"]


async def test_the_port_comes_from_the_chosen_nodes_advertised_range(world: FakeApp) -> None:
    nodes(world, a=4096, b=8192)

    assert placed(world, await create(world)) == ("b", 30100)
    assert placed(world, await create(world)) == ("b", 30101)
    assert placed(world, await create(world, ADMIN, node="a")) == ("a", 30000)


async def test_two_nodes_may_give_the_same_port(world: FakeApp) -> None:
    nodes(world, a=4096, b=4096)

    one = await create(world, ADMIN, node="a", port=31000)
    two = await create(world, ADMIN, node="b", port=31000)

    assert (placed(world, one), placed(world, two)) == (("a", 31000), ("b", 31000))


async def test_a_cordoned_node_gets_no_new_servers(world: FakeApp) -> None:
    nodes(world, a=4096, b=8192)
    await world.bus.handle(CordonNode(actor=OPERATOR, name="b", cordoned=True))

    assert placed(world, await create(world))[0] == "a"
    with pytest.raises(NodeCordoned, match="node b is cordoned"):
        await create(world, ADMIN, node="b")

    await world.bus.handle(CordonNode(actor=OPERATOR, name="b", cordoned=False))
    assert placed(world, await create(world))[0] == "b"


@pytest.mark.parametrize(
    ("online", "cordon", "error", "match"),
    [
        pytest.param({}, None, NoNodeOnline, "no node is online", id="no-node-online"),
        pytest.param({"a": 2048}, None, NodeFull, "left for another server", id="all-full"),
        pytest.param(
            {"a": 8192}, "a", NodeFull, "every online node is cordoned", id="all-cordoned"
        ),
    ],
)
async def test_when_no_node_can_take_it_the_answer_says_why(
    world: FakeApp, online: dict[str, int], cordon: str | None, error: type, match: str
) -> None:
    nodes(world, **online)
    if online:
        await create(world, ADMIN, memory_mb=2048, node="a")
    if cordon:
        await world.bus.handle(CordonNode(actor=ADMIN, name=cordon, cordoned=True))

    with pytest.raises(error, match=match):
        await create(world, memory_mb=1024)


async def test_an_explicit_node_must_have_room(world: FakeApp) -> None:
    nodes(world, a=2048)
    await create(world, ADMIN, node="a", memory_mb=2048)

    with pytest.raises(NodeFull, match="node a has 0 MiB left") as caught:
        await create(world, ADMIN, node="a", memory_mb=1024)
    assert caught.value.extra == {"node": "a", "free_mb": 0}


async def test_the_memory_ratio_lets_a_node_take_more_heap_than_it_has(
    world_with: Any,
) -> None:
    world = world_with(placement_memory_ratio=2.0)
    nodes(world, a=2048)

    for _ in range(4):
        assert placed(world, await create(world))[0] == "a"
    with pytest.raises(NodeFull):
        await create(world)


@pytest.mark.parametrize(
    ("owner", "values", "error"),
    [
        pytest.param(ALICE, {"node": "a"}, Forbidden, id="user-names-a-node"),
        pytest.param(ADMIN, {"node": "nowhere"}, InvalidInput, id="unknown-offline-node"),
        pytest.param(ALICE, {"port": 25565}, InvalidInput, id="user-port-outside-nodes-range"),
    ],
)
async def test_what_a_create_may_not_ask_for(
    world: FakeApp, owner: Any, values: dict[str, Any], error: type
) -> None:
    nodes(world, a=4096)

    with pytest.raises(error):
        await create(world, owner, **values)
    assert world.db.servers == {}


async def test_an_offline_node_that_holds_servers_may_still_be_named(world: FakeApp) -> None:
    nodes(world, a=4096, b=4096)
    await create(world, ADMIN, node="b")
    nodes(world, a=4096)  # b's worker stops

    assert placed(world, await create(world, ADMIN, node="b"))[0] == "b"


async def test_operators_list_online_nodes_and_offline_ones_that_matter(world: FakeApp) -> None:
    nodes(world, a=4096, b=8192)
    await create(world, ADMIN, node="b", memory_mb=2048)
    await create(world, ADMIN, node="b", memory_mb=1024)
    await world.bus.handle(CordonNode(actor=ADMIN, name="spare", cordoned=True))
    nodes(world, a=4096)

    listed = await world.bus.handle(ListNodes(actor=OPERATOR))

    assert [
        (n.name, n.online, n.cordoned, n.server_count, n.memory_allocated_mb) for n in listed
    ] == [("a", True, False, 0, 0), ("b", False, False, 2, 3072), ("spare", False, True, 0, 0)]
    one = await world.bus.handle(GetNode(actor=OPERATOR, name="a"))
    assert one.info is not None
    assert one.info.port_range == (30000, 30099)


async def test_nodes_are_for_operators_and_admins(world: FakeApp) -> None:
    with pytest.raises(Forbidden):
        await world.bus.handle(ListNodes(actor=ALICE))
    with pytest.raises(Forbidden):
        await world.bus.handle(CordonNode(actor=ALICE, name="local", cordoned=True))
    with pytest.raises(NodeNotFound):
        await world.bus.handle(GetNode(actor=ADMIN, name="nowhere"))


@pytest.mark.parametrize(
    "name",
    ["", "UPPER", "-dash-first", "a" * 64, "has space", "dot.ted"],
    ids=["empty", "upper-case", "dash-first", "64-chars", "space", "dot"],
)
async def test_a_malformed_node_name_cannot_be_cordoned(world: FakeApp, name: str) -> None:
    with pytest.raises(InvalidInput):
        await world.bus.handle(CordonNode(actor=ADMIN, name=name, cordoned=True))
    assert world.db.cordoned == set()
