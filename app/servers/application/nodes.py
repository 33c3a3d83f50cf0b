"""The nodes as operators see and steer them: listed with capacity and use, and cordoned."""

from __future__ import annotations

from collections.abc import Sequence

from app.servers.application.handlers import UowFactory
from app.servers.application.messages import CordonNode, GetNode, ListNodes, NodeView
from app.servers.domain.errors import NodeNotFound
from app.servers.domain.nodes import validate_node_name
from app.servers.domain.ports import NodeGateway, NodeInfo, NodeUsage, ServerRepository
from app.shared.domain import Forbidden
from app.shared.security import Principal


def _operator(actor: Principal) -> None:
    if not actor.sees_everything():
        raise Forbidden("only operators and admins see and manage the nodes")


async def _views(repository: ServerRepository, online: Sequence[NodeInfo]) -> list[NodeView]:
    infos = {info.name: info for info in online}
    usage = await repository.node_usage()
    cordoned = await repository.cordoned()
    return [
        NodeView(
            name=name,
            online=name in infos,
            cordoned=name in cordoned,
            server_count=usage.get(name, NodeUsage()).servers,
            memory_allocated_mb=usage.get(name, NodeUsage()).memory_mb,
            info=infos.get(name),
        )
        for name in sorted({*infos, *usage, *cordoned})
    ]


async def handle_list_nodes(
    query: ListNodes, *, uow: UowFactory, nodes: NodeGateway
) -> Sequence[NodeView]:
    """Online nodes, and the offline ones that hold servers or are cordoned."""
    _operator(query.actor)
    online = await nodes.nodes()
    async with uow() as work:
        return await _views(work.servers, online)


async def handle_get_node(query: GetNode, *, uow: UowFactory, nodes: NodeGateway) -> NodeView:
    _operator(query.actor)
    online = await nodes.nodes()
    async with uow() as work:
        found = next((v for v in await _views(work.servers, online) if v.name == query.name), None)
    if found is None:
        raise NodeNotFound(f"node {query.name} is not known", node=query.name)
    return found


async def handle_cordon_node(cmd: CordonNode, *, uow: UowFactory, nodes: NodeGateway) -> NodeView:
    """Any valid node name may be cordoned, so a node can be kept empty before it first starts."""
    _operator(cmd.actor)
    validate_node_name(cmd.name)
    online = await nodes.nodes()
    async with uow() as work:
        await work.servers.set_cordoned(cmd.name, cmd.cordoned)
        views = await _views(work.servers, online)
        await work.commit()
    found = next((v for v in views if v.name == cmd.name), None)
    return found or NodeView(
        name=cmd.name,
        online=False,
        cordoned=cmd.cordoned,
        server_count=0,
        memory_allocated_mb=0,
        info=None,
    )
