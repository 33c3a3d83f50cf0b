"""A server's effective lists: who sees them, the authoritative switch, and sync outcomes."""

from __future__ import annotations

import uuid
from typing import Protocol

from app.groups.application.handlers import request_sync
from app.groups.application.messages import (
    AccessPlan,
    GetAccessPlan,
    GetServerAccess,
    RecordAccessSync,
    ServerAccess,
    SetServerAccessMode,
    SyncOutcome,
)
from app.groups.domain.ports import ServerNodes, SyncRequests
from app.servers.application.messages import GetServer
from app.shared.bus import MessageBus
from app.shared.domain import Forbidden

WATCHED_FILES = frozenset({"ops.json", "whitelist.json"})


class AccessStore(Protocol):
    async def plan(self, server_id: uuid.UUID) -> AccessPlan: ...
    async def last_sync(self, server_id: uuid.UUID) -> SyncOutcome | None: ...
    async def set_authoritative(self, server_id: uuid.UUID, authoritative: bool) -> bool: ...
    async def record(self, server_id: uuid.UUID, outcome: SyncOutcome) -> None: ...


class ChangedFile(Protocol):
    """What the files context's FileModified event carries that matters here."""

    @property
    def server_id(self) -> uuid.UUID: ...
    @property
    def path(self) -> str: ...


async def handle_get_server_access(
    query: GetServerAccess, *, bus: MessageBus, access: AccessStore
) -> ServerAccess:
    await bus.handle(GetServer(actor=query.actor, server_id=query.server_id))
    return ServerAccess(
        plan=await access.plan(query.server_id), last_sync=await access.last_sync(query.server_id)
    )


async def handle_get_access_plan(query: GetAccessPlan, *, access: AccessStore) -> AccessPlan:
    return await access.plan(query.server_id)


async def handle_set_server_access_mode(
    cmd: SetServerAccessMode,
    *,
    bus: MessageBus,
    access: AccessStore,
    server_nodes: ServerNodes,
    access_sync: SyncRequests,
) -> None:
    server = await bus.handle(GetServer(actor=cmd.actor, server_id=cmd.server_id))
    if server.owner_id != cmd.actor.user_id and not cmd.actor.is_admin:
        raise Forbidden("only the server's owner or an admin may change who manages its lists")
    if await access.set_authoritative(cmd.server_id, cmd.authoritative):
        await request_sync([cmd.server_id], server_nodes=server_nodes, access_sync=access_sync)


async def handle_record_access_sync(cmd: RecordAccessSync, *, access: AccessStore) -> None:
    await access.record(cmd.server_id, cmd.outcome)


async def handle_server_file_changed(
    event: ChangedFile, *, server_nodes: ServerNodes, access_sync: SyncRequests
) -> None:
    """A hand edit of ops.json / whitelist.json: have the node measure the drift."""
    if event.path not in WATCHED_FILES:
        return
    nodes = await server_nodes.nodes_of([event.server_id], attached_only=True)
    for server_id, node in nodes.items():
        await access_sync.request(server_id, node, check_only=True)
