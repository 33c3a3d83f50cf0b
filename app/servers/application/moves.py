"""Moving a stopped server to another node: its directory (and custom jar) copied through the
two agents and checked by digest, the server switched over in one transaction, the old copy
then removed by the source node's worker.

Nothing is held open while the files travel; the switch refuses when the server changed
meanwhile (started, edited, moved by someone else) and the target's copy is thrown away.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from app.servers.application.handlers import NodeOffline, ServerPolicy, UowFactory, visible
from app.servers.application.messages import MoveServer
from app.servers.application.placement import Placement, place
from app.servers.domain.errors import InvalidTransition, MoveFailed
from app.servers.domain.model import Server
from app.servers.domain.nodes import validate_node_name
from app.servers.domain.ports import NodeGateway, NodeInfo, ServerRepository, ServerTrees
from app.shared.domain import Clock, ConcurrencyConflict, Conflict, DomainError, Forbidden

log = structlog.get_logger(__name__)


async def handle_move_server(
    cmd: MoveServer,
    *,
    uow: UowFactory,
    clock: Clock,
    policy: ServerPolicy,
    nodes: NodeGateway,
    trees: ServerTrees,
) -> None:
    if not cmd.actor.sees_everything():
        raise Forbidden("only operators and admins move servers between nodes")
    target = validate_node_name(cmd.node)
    online = await nodes.nodes()
    async with uow() as work:  # never committed: only checks that the target takes it now
        server = visible(await work.servers.get(cmd.server_id), cmd.actor, cmd.server_id)
        _check_movable(server, target, online)
        await _place(work.servers, online, policy, server, target)
    source, seen = server.node, server.version
    try:
        await _copy(trees, server, source=source, target=target)
    except BaseException:
        await _discard(trees, target, server, live=False)
        raise
    try:
        await _switch(uow, clock, policy, nodes, cmd, target=target, seen=seen)
    except BaseException:
        if not await _may_live_on(uow, server, target):
            await _discard(trees, target, server, live=True)
        raise
    await nodes.enqueue(source, "delete_files", server.id)


def _check_movable(server: Server, target: str, online: Sequence[NodeInfo]) -> None:
    if target == server.node:
        raise Conflict(f"server {server.name} is already on node {target}", field="node")
    if server.is_active:
        raise InvalidTransition(
            f"server {server.name} is {server.state.value}; stop it first to move it"
        )
    up = {info.name for info in online}
    for node in (server.node, target):
        if node not in up:
            raise NodeOffline(
                f"node {node} is offline: a move needs the workers of both nodes", node=node
            )


async def _place(
    servers: ServerRepository,
    online: Sequence[NodeInfo],
    policy: ServerPolicy,
    server: Server,
    target: str,
) -> Placement:
    """The target node and port, refused when the node is cordoned or has no room; the
    server keeps its port when the target has it free and in its range."""
    return await place(
        servers,
        online,
        policy.placement,
        memory_mb=server.config.memory_mb,
        node=target,
        port=None,
        check_port_range=True,
        prefer_port=server.port,
    )


async def _copy(trees: ServerTrees, server: Server, *, source: str, target: str) -> None:
    """Copy the jar and the tree to the target's staging; both must be what the source has."""
    sha256 = server.config.jar_sha256
    if sha256:
        stored = await trees.copy_jar(server.id, sha256, source=source, target=target)
        if stored != sha256:
            raise MoveFailed(
                f"node {target} stored the jar as {stored}, not {sha256}; nothing was moved",
                node=target,
            )
    received = await trees.copy(server.id, source=source, target=target)
    expected = await trees.digest(source, server.id)
    if received != expected:
        raise MoveFailed(
            f"the copy on node {target} does not match the files on node {source} (digest"
            f" {received[:12]} != {expected[:12]}); nothing was moved",
            node=target,
        )
    await trees.commit(target, server.id)


async def _switch(
    uow: UowFactory,
    clock: Clock,
    policy: ServerPolicy,
    nodes: NodeGateway,
    cmd: MoveServer,
    *,
    target: str,
    seen: int,
) -> None:
    online = await nodes.nodes()
    async with uow() as work:
        server = visible(await work.servers.get(cmd.server_id), cmd.actor, cmd.server_id)
        if server.version != seen:
            raise ConcurrencyConflict(
                f"server {server.name} changed while its files were copied; nothing was moved,"
                " try again"
            )
        placed = await _place(work.servers, online, policy, server, target)
        server.move(node=placed.node, port=placed.port, now=clock.now())
        await work.commit()


async def _may_live_on(uow: UowFactory, server: Server, node: str) -> bool:
    """Whether the server may be on `node` after all (a commit whose answer was lost), so its
    copy there must stay."""
    try:
        async with uow() as work:
            found = await work.servers.get(server.id)
    except Exception:  # noqa: BLE001 - unknown is kept, never removed
        return True
    return found is not None and found.node == node


async def _discard(trees: ServerTrees, node: str, server: Server, *, live: bool) -> None:
    """Best effort: a copy left on the target is unused, and a later move onto that node is
    refused (409) while it is there."""
    try:
        await trees.discard(node, server.id, live=live)
    except DomainError as exc:
        log.warning("move_copy_not_discarded", server_id=str(server.id), node=node, error=str(exc))
