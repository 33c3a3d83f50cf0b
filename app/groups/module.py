"""The groups context: op and whitelist groups of players, kept in sync on every server."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.files.domain.events import FileModified
from app.groups.application import access, handlers, queries
from app.groups.application import messages as m
from app.groups.domain import events
from app.groups.infrastructure.jobs import RedisSyncRequests
from app.groups.infrastructure.mojang import MojangProfiles
from app.groups.infrastructure.projection import GROUP_SUMMARY
from app.groups.infrastructure.read import SqlAccessStore, SqlGroupsReadModel
from app.groups.infrastructure.repositories import SqlGroupsUnitOfWork
from app.groups.infrastructure.sync import AccessSync
from app.shared.infrastructure import Infrastructure
from app.shared.nodes import NodeJobs
from app.shared.wiring import Handlers

EVENTS = events.GROUP_EVENTS
HANDLERS = Handlers(
    messages={
        m.CreateGroup: handlers.handle_create_group,
        m.UpdateGroup: handlers.handle_update_group,
        m.DeleteGroup: handlers.handle_delete_group,
        m.AddPlayerToGroup: handlers.handle_add_player_to_group,
        m.RemovePlayerFromGroup: handlers.handle_remove_player_from_group,
        m.AttachGroupToServer: handlers.handle_attach_group_to_server,
        m.DetachGroupFromServer: handlers.handle_detach_group_from_server,
        m.SetServerAccessMode: access.handle_set_server_access_mode,
        m.RecordAccessSync: access.handle_record_access_sync,
        m.ListGroups: queries.handle_list_groups,
        m.GetGroup: queries.handle_get_group,
        m.GetServerAccess: access.handle_get_server_access,
        m.GetAccessPlan: access.handle_get_access_plan,
    },
    events=[(FileModified, access.handle_server_file_changed)],
    projections=[GROUP_SUMMARY],
)


def wire(infra: Infrastructure, *, nodes: NodeJobs, **overrides: Any) -> dict[str, Any]:
    """`nodes` queues the sync jobs on a server's node."""
    settings = infra.settings
    read_model = SqlGroupsReadModel(infra.read_engine)
    return {
        "uow": infra.unit_of_work(SqlGroupsUnitOfWork),
        "read_model": read_model,
        "server_nodes": read_model,
        "access": SqlAccessStore(infra.engine),
        "profiles": MojangProfiles(
            infra.http, settings.mojang_profile_api_url, timeout=settings.mojang_timeout_seconds
        ),
        "access_sync": RedisSyncRequests(infra.redis, nodes, ttl_seconds=settings.job_ttl_seconds),
        "clock": infra.clock,
        "bus": infra.bus,
        **overrides,
    }


def node_sync(infra: Infrastructure) -> AccessSync:
    """The node side: rewrites a server's ops.json and whitelist.json and tells its JVM."""
    return AccessSync(
        infra.bus, infra.clock, reply_seconds=infra.settings.groups_reply_timeout_seconds
    )


def routers() -> list[APIRouter]:
    from app.groups.api.routes import access_router, router

    return [router, access_router]
