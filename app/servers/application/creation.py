"""Creating a server: checked, placed on a node with room and given one of its ports."""

from __future__ import annotations

import uuid

from app.servers.application.handlers import ReleaseCheck, ServerPolicy, UowFactory
from app.servers.application.messages import CreateServer
from app.servers.application.placement import NodeRaced, place
from app.servers.domain.model import (
    LOADER_TYPES,
    Server,
    ServerConfig,
    ServerType,
    validate_name,
)
from app.servers.domain.ports import NodeGateway
from app.shared.domain import Clock, Conflict, Forbidden, InvalidInput, new_id

PLACEMENT_ATTEMPTS = 5


async def handle_create_server(
    cmd: CreateServer,
    *,
    uow: UowFactory,
    clock: Clock,
    policy: ServerPolicy,
    releases: ReleaseCheck,
    nodes: NodeGateway,
) -> uuid.UUID:
    validate_name(cmd.name)
    policy.check_limits(cmd.owner, memory_mb=cmd.memory_mb)
    if cmd.node is not None and not cmd.owner.sees_everything():
        raise Forbidden("only operators and admins choose a server's node", field="node")
    loader_version = None
    if cmd.server_type in LOADER_TYPES:
        loader_version = await releases.check_loader(
            cmd.server_type, cmd.version, cmd.loader_version
        )
    elif cmd.loader_version is not None:
        raise InvalidInput(
            f"a {cmd.server_type.value} server has no loader version", field="loader_version"
        )
    config = ServerConfig(
        server_type=cmd.server_type,
        version=cmd.version,
        memory_mb=cmd.memory_mb,
        max_players=cmd.max_players,
        motd=cmd.motd,
        online_mode=cmd.online_mode,
        whitelist=cmd.whitelist,
        loader_version=loader_version,
        restart=cmd.restart,
    )
    if cmd.server_type is not ServerType.CUSTOM:
        await releases.check_version(cmd.server_type, cmd.version)
    online = await nodes.nodes()
    for _ in range(PLACEMENT_ATTEMPTS):
        async with uow() as work:
            if await work.servers.name_taken(cmd.owner.user_id, cmd.name):
                raise Conflict(f"you already have a server named {cmd.name}", field="name")
            try:
                placed = await place(
                    work.servers,
                    online,
                    policy.placement,
                    memory_mb=cmd.memory_mb,
                    node=cmd.node,
                    port=cmd.port,
                    check_port_range=not cmd.owner.is_admin,
                )
            except NodeRaced:
                continue  # a new transaction sees what the other one placed
            server = Server.create(
                server_id=new_id(),
                name=cmd.name,
                description=cmd.description,
                owner_id=cmd.owner.user_id,
                node=placed.node,
                port=placed.port,
                config=config,
                eula_accepted=cmd.eula_accepted,
                now=clock.now(),
            )
            work.servers.add(server)
            await work.commit()
            return server.id
    raise Conflict("the nodes kept filling up while the server was placed; try again")
