"""The servers context: Minecraft servers, their lifecycle on nodes, console, status, versions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import APIRouter

from app.servers.application import (
    creation,
    handlers,
    mod_handlers,
    mod_queries,
    moves,
    observations,
    queries,
    versions,
)
from app.servers.application import messages as m
from app.servers.application import mods as mods_messages
from app.servers.application import nodes as nodes_handlers
from app.servers.application.handlers import ServerPolicy
from app.servers.application.placement import PlacementRules
from app.servers.domain import events
from app.servers.domain.console import ConsolePolicy
from app.servers.domain.mods import MOD_EVENTS
from app.servers.domain.ports import NodeHooks
from app.servers.domain.versions import VERSION_EVENTS
from app.servers.infrastructure.catalog import (
    CatalogReleaseCheck,
    NodeRecordCapacity,
    VersionCatalog,
)
from app.servers.infrastructure.jars import JarCache
from app.servers.infrastructure.java import JavaRuntimes
from app.servers.infrastructure.mod_agent import AgentModFiles, BusSafetyBackups
from app.servers.infrastructure.modfiles import NodeModFiles
from app.servers.infrastructure.modrinth import ModrinthCatalog
from app.servers.infrastructure.projection import SERVER_LIST
from app.servers.infrastructure.remote import AgentJarStore, AgentServerTrees
from app.servers.infrastructure.repositories import SqlServerListReadModel, SqlServersUnitOfWork
from app.servers.infrastructure.runtime import (
    RedisNodeGateway,
    RedisRuntimeStore,
)
from app.servers.infrastructure.trees import NodeTrees
from app.servers.infrastructure.versions import EventStoreVersionHistory
from app.settings import Settings
from app.shared.agent import NodeTokens
from app.shared.infrastructure import Infrastructure
from app.shared.wiring import Handlers

EVENTS = events.SERVER_EVENTS + MOD_EVENTS + VERSION_EVENTS
HANDLERS = Handlers(
    messages={
        m.CreateServer: creation.handle_create_server,
        m.UpdateServer: handlers.handle_update_server,
        m.UploadServerJar: handlers.handle_upload_server_jar,
        m.DeleteServer: handlers.handle_delete_server,
        m.MoveServer: moves.handle_move_server,
        m.StartServer: handlers.handle_start_server,
        m.StopServer: handlers.handle_stop_server,
        m.RestartServer: handlers.handle_restart_server,
        m.SendConsoleCommand: handlers.handle_send_console_command,
        m.RecordProcessLaunched: observations.handle_record_process_launched,
        m.RecordServerReady: observations.handle_record_server_ready,
        m.RecordStartFailure: observations.handle_record_start_failure,
        m.RecordProcessExit: observations.handle_record_process_exit,
        m.RecordPlayers: observations.handle_record_players,
        m.MarkRestartRequired: observations.handle_mark_restart_required,
        m.RequestAutomaticStart: observations.handle_request_automatic_start,
        m.RequestMaintenanceStop: observations.handle_request_maintenance_stop,
        m.ExpireStaleStarts: observations.handle_expire_stale_starts,
        m.GetServer: queries.handle_get_server,
        m.ListServers: queries.handle_list_servers,
        m.ListActiveNodeServers: queries.handle_list_active_node_servers,
        m.GetServerStatus: queries.handle_get_server_status,
        m.GetConsoleLog: queries.handle_get_console_log,
        m.ListNodes: nodes_handlers.handle_list_nodes,
        m.GetNode: nodes_handlers.handle_get_node,
        m.CordonNode: nodes_handlers.handle_cordon_node,
        m.ListVersions: queries.handle_list_versions,
        mods_messages.SearchMods: mod_queries.handle_search_mods,
        mods_messages.ListMods: mod_queries.handle_list_mods,
        mods_messages.CheckModUpdates: mod_queries.handle_check_mod_updates,
        mods_messages.InstallMod: mod_handlers.handle_install_mod,
        mods_messages.UpdateMods: mod_handlers.handle_update_mods,
        mods_messages.ChangeMod: mod_handlers.handle_change_mod,
        versions.ChangeServerVersion: versions.handle_change_server_version,
        versions.RollBackServerVersion: versions.handle_roll_back_server_version,
    },
    projections=[SERVER_LIST],
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Servers:
    """What the rest of the app (and a node's worker) gets from this context."""

    catalog: VersionCatalog
    jars: JarCache
    java: JavaRuntimes
    nodes: RedisNodeGateway
    runtime: RedisRuntimeStore
    hooks: NodeHooks


def wire(infra: Infrastructure, **overrides: Any) -> tuple[dict[str, Any], Servers]:
    settings = infra.settings
    nodes = RedisNodeGateway(infra.redis, infra.sync_redis, job_ttl=settings.job_ttl_seconds)
    catalog = VersionCatalog(
        infra.http,
        infra.cache,
        mojang_manifest_url=settings.mojang_manifest_url,
        paper_api_url=settings.paper_api_url,
        cache_ttl=settings.catalog_cache_ttl_seconds,
        fabric_meta_url=settings.fabric_meta_url,
        forge_maven_url=settings.forge_maven_url,
        forge_promotions_url=settings.forge_promotions_url,
        neoforge_maven_url=settings.neoforge_maven_url,
    )
    exports = Servers(
        catalog=catalog,
        jars=jar_cache(settings, infra.http),
        java=JavaRuntimes(settings.java_paths),
        nodes=nodes,
        runtime=RedisRuntimeStore(infra.redis),
        hooks=NodeHooks(),
    )
    deps: dict[str, Any] = {
        "uow": infra.unit_of_work(SqlServersUnitOfWork),
        "read_model": SqlServerListReadModel(infra.read_engine, infra.read_pool),
        "clock": infra.clock,
        "policy": ServerPolicy(
            placement=PlacementRules(
                port_range=(settings.server_port_range_start, settings.server_port_range_end),
                memory_ratio=settings.placement_memory_ratio,
            ),
            max_memory_mb=settings.server_max_memory_mb,
            console=ConsolePolicy.of(
                settings.console_denied_verbs, allowed=settings.console_allowed_verbs
            ),
            job_ttl_seconds=settings.job_ttl_seconds,
        ),
        "nodes": nodes,
        "runtime": exports.runtime,
        "jars": AgentJarStore(infra.agents),
        "trees": AgentServerTrees(infra.agents),
        "catalog": catalog,
        "mod_catalog": ModrinthCatalog(
            infra.http,
            base_url=settings.modrinth_api_url,
            user_agent=settings.modrinth_user_agent,
        ),
        "mod_files": AgentModFiles(infra.agents),
        "safety_backups": BusSafetyBackups(
            infra.bus, timeout=settings.safety_backup_timeout_seconds
        ),
        "version_history": EventStoreVersionHistory(infra.engine),
        **overrides,
    }
    # Built on whatever node gateway and catalog the handlers get, overridden or not.
    deps.setdefault("releases", CatalogReleaseCheck(deps["catalog"], deps["nodes"]))
    deps.setdefault("capacity", NodeRecordCapacity(deps["nodes"]))
    return deps, exports


def routers() -> list[APIRouter]:
    from app.servers.api import mods, nodes, routes, versions, websockets

    return [
        routes.router,
        routes.versions_router,
        websockets.tickets_router,
        websockets.router,
        nodes.router,
        mods.router,
        versions.router,
    ]


def node_routers(
    settings: Settings, jars: JarCache, tokens: NodeTokens, node: str
) -> list[APIRouter]:
    """The routes this context adds to a node's agent: custom jars into the node's cache (what
    a dead worker's cut uploads left there is cleared first), trees of moving servers, and the
    mods and plugins of its servers (with their cache's cut downloads cleared too)."""
    from app.servers.api.agent import agent_router
    from app.servers.api.mods_agent import mods_agent_router

    jars.discard_partials()
    trees = NodeTrees(settings.resolved_data_dir / "servers")
    mod_files = NodeModFiles(
        settings.resolved_data_dir / "servers",
        settings.resolved_data_dir / "mods-cache",
        max_bytes=settings.max_mod_bytes,
        user_agent=settings.modrinth_user_agent,
    )
    mod_files.discard_partials()
    return [agent_router(jars, trees, tokens, node), mods_agent_router(mod_files, tokens, node)]


def jar_cache(settings: Settings, http: httpx.AsyncClient) -> JarCache:
    """A node's jar cache, `<data dir>/jars`: downloads and uploads kept by checksum."""
    return JarCache(
        settings.resolved_data_dir / "jars", http, max_upload_bytes=settings.max_jar_upload_bytes
    )
