"""Query handlers of the servers context."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from app.servers.application.handlers import ServerReadModel, visible
from app.servers.application.messages import (
    GetConsoleLog,
    GetServer,
    GetServerStatus,
    ListActiveNodeServers,
    ListServers,
    ListVersions,
    ServerListItem,
    ServerStatusView,
)
from app.servers.domain.model import Server
from app.servers.domain.ports import (
    ConsoleEntry,
    RuntimeStore,
    VersionCatalog,
    VersionInfo,
)
from app.shared.domain import Page

FIRST_LINE_ID = "0-0"
"""No console line is older than this stream id (and Redis refuses it as an exclusive end)."""


async def handle_get_server(query: GetServer, *, read_model: ServerReadModel) -> Server:
    return visible(await read_model.get(query.server_id), query.actor, query.server_id)


async def handle_list_active_node_servers(
    query: ListActiveNodeServers, *, read_model: ServerReadModel
) -> list[Server]:
    return await read_model.active_on_node(query.node)


async def handle_list_servers(
    query: ListServers, *, read_model: ServerReadModel
) -> Page[ServerListItem]:
    filter = query.filter
    if not query.actor.sees_everything():
        filter = replace(filter, owner_id=query.actor.user_id)
    return await read_model.page(filter)


async def handle_get_server_status(
    query: GetServerStatus, *, read_model: ServerReadModel, runtime: RuntimeStore
) -> ServerStatusView:
    server = visible(await read_model.get(query.server_id), query.actor, query.server_id)
    live = await runtime.status(server.id) if server.is_active else None
    return ServerStatusView(
        server_id=server.id,
        state=server.state.value,
        status_message=server.status_message,
        restart_required=server.restart_required,
        runtime=live,
        started_at=server.started_at,
    )


async def handle_get_console_log(
    query: GetConsoleLog, *, read_model: ServerReadModel, runtime: RuntimeStore
) -> Sequence[ConsoleEntry]:
    server = visible(await read_model.get(query.server_id), query.actor, query.server_id)
    if query.before == FIRST_LINE_ID:
        return []
    return await runtime.console_page(server.id, before=query.before, limit=query.limit)


async def handle_list_versions(
    query: ListVersions, *, catalog: VersionCatalog
) -> Sequence[VersionInfo]:
    return (await catalog.versions(query.server_type.value))[: query.limit]
