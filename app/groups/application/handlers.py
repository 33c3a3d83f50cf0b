"""Command handlers of the groups context: groups, their players, their servers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable

from app.groups.application.messages import (
    AddPlayerToGroup,
    AttachGroupToServer,
    CreateGroup,
    DeleteGroup,
    DetachGroupFromServer,
    RemovePlayerFromGroup,
    UpdateGroup,
)
from app.groups.domain.model import (
    Group,
    GroupNotFound,
    Member,
    UnknownPlayer,
    VersionMismatch,
    offline_uuid,
    validate_group_name,
    validate_player_name,
)
from app.groups.domain.ports import (
    GroupsUnitOfWork,
    ProfileLookup,
    ServerNodes,
    SyncRequests,
)
from app.servers.application.messages import GetServer
from app.shared.bus import MessageBus
from app.shared.domain import Clock, Conflict, Forbidden, new_id
from app.shared.security import Principal

UowFactory = Callable[[], GroupsUnitOfWork]


def readable(group: Group | None, actor: Principal, group_id: uuid.UUID) -> Group:
    """Owners see their own groups; operators and admins see all. Others get 404, not 403."""
    if group is None or (not actor.sees_everything() and group.owner_id != actor.user_id):
        raise GroupNotFound(f"group {group_id} not found")
    return group


def writable(group: Group | None, actor: Principal, group_id: uuid.UUID) -> Group:
    """Changing a group takes its owner or an admin; operators may only look."""
    group = readable(group, actor, group_id)
    if group.owner_id != actor.user_id and not actor.is_admin:
        raise Forbidden("only the group's owner or an admin may change it")
    return group


async def request_sync(
    server_ids: Iterable[uuid.UUID], *, server_nodes: ServerNodes, access_sync: SyncRequests
) -> None:
    """Ask each affected server's node to rewrite its lists (coalesced per server)."""
    ids = list(server_ids)
    if not ids:
        return
    for server_id, node in (await server_nodes.nodes_of(ids)).items():
        await access_sync.request(server_id, node)


async def handle_create_group(cmd: CreateGroup, *, uow: UowFactory, clock: Clock) -> uuid.UUID:
    name = validate_group_name(cmd.name)
    async with uow() as work:
        if await work.groups.name_taken(cmd.actor.user_id, name):
            raise Conflict(f"you already have a group named {name}", field="name")
        group = Group.create(
            group_id=new_id(),
            name=name,
            description=cmd.description,
            group_type=cmd.group_type,
            op_level=cmd.op_level,
            owner_id=cmd.actor.user_id,
            now=clock.now(),
        )
        work.groups.add(group)
        await work.commit()
    return group.id


async def handle_update_group(
    cmd: UpdateGroup,
    *,
    uow: UowFactory,
    clock: Clock,
    server_nodes: ServerNodes,
    access_sync: SyncRequests,
) -> list[str]:
    async with uow() as work:
        group = writable(await work.groups.get(cmd.group_id), cmd.actor, cmd.group_id)
        if cmd.expected_version is not None and cmd.expected_version != group.version:
            raise VersionMismatch(
                f"group {group.name} is at version {group.version}, not {cmd.expected_version}; "
                "reload it and try again",
                current_version=group.version,
            )
        if (
            cmd.name is not None
            and validate_group_name(cmd.name).lower() != group.name.lower()
            and await work.groups.name_taken(group.owner_id, validate_group_name(cmd.name))
        ):
            raise Conflict(f"a group named {cmd.name} already exists", field="name")
        changed = group.update(
            now=clock.now(), name=cmd.name, description=cmd.description, op_level=cmd.op_level
        )
        await work.commit()
    if "op_level" in changed:
        await request_sync(group.servers, server_nodes=server_nodes, access_sync=access_sync)
    return changed


async def handle_delete_group(
    cmd: DeleteGroup,
    *,
    uow: UowFactory,
    clock: Clock,
    server_nodes: ServerNodes,
    access_sync: SyncRequests,
) -> None:
    async with uow() as work:
        group = writable(await work.groups.get(cmd.group_id), cmd.actor, cmd.group_id)
        servers = group.delete(now=clock.now())
        await work.groups.remove(group)
        await work.commit()
    await request_sync(servers, server_nodes=server_nodes, access_sync=access_sync)


async def handle_add_player_to_group(
    cmd: AddPlayerToGroup,
    *,
    uow: UowFactory,
    clock: Clock,
    profiles: ProfileLookup,
    server_nodes: ServerNodes,
    access_sync: SyncRequests,
) -> Member:
    name = validate_player_name(cmd.name)
    async with uow() as work:
        writable(await work.groups.get(cmd.group_id), cmd.actor, cmd.group_id)
    if cmd.mode == "offline":
        minecraft_uuid = offline_uuid(name)
    else:
        found = await profiles.lookup(name)
        if found is None:
            raise UnknownPlayer(f"no Minecraft account named {name}", field="name")
        minecraft_uuid, name = found
    async with uow() as work:
        group = writable(await work.groups.get(cmd.group_id), cmd.actor, cmd.group_id)
        member = await work.players.save_profile(minecraft_uuid, name)
        group.add_player(member, now=clock.now())
        await work.commit()
    await request_sync(group.servers, server_nodes=server_nodes, access_sync=access_sync)
    return member


async def handle_remove_player_from_group(
    cmd: RemovePlayerFromGroup,
    *,
    uow: UowFactory,
    clock: Clock,
    server_nodes: ServerNodes,
    access_sync: SyncRequests,
) -> None:
    async with uow() as work:
        group = writable(await work.groups.get(cmd.group_id), cmd.actor, cmd.group_id)
        group.remove_player(cmd.player_id, now=clock.now())
        await work.commit()
    await request_sync(group.servers, server_nodes=server_nodes, access_sync=access_sync)


async def handle_attach_group_to_server(
    cmd: AttachGroupToServer,
    *,
    uow: UowFactory,
    clock: Clock,
    bus: MessageBus,
    server_nodes: ServerNodes,
    access_sync: SyncRequests,
) -> None:
    await bus.handle(GetServer(actor=cmd.actor, server_id=cmd.server_id))
    async with uow() as work:
        group = writable(await work.groups.get(cmd.group_id), cmd.actor, cmd.group_id)
        group.attach(cmd.server_id, priority=cmd.priority, now=clock.now())
        await work.commit()
    await request_sync([cmd.server_id], server_nodes=server_nodes, access_sync=access_sync)


async def handle_detach_group_from_server(
    cmd: DetachGroupFromServer,
    *,
    uow: UowFactory,
    clock: Clock,
    bus: MessageBus,
    server_nodes: ServerNodes,
    access_sync: SyncRequests,
) -> None:
    await bus.handle(GetServer(actor=cmd.actor, server_id=cmd.server_id))
    async with uow() as work:
        group = writable(await work.groups.get(cmd.group_id), cmd.actor, cmd.group_id)
        group.detach(cmd.server_id, now=clock.now())
        await work.commit()
    await request_sync([cmd.server_id], server_nodes=server_nodes, access_sync=access_sync)
