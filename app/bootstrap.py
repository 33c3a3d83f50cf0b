"""The composition root: builds engines, clients, the bus and every handler's dependencies."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.backups.application import handlers as backups
from app.backups.application import messages as backup_messages
from app.backups.application import node as backup_node
from app.backups.application import schedules
from app.backups.application.handlers import BackupPolicy
from app.backups.domain import events as backup_events
from app.backups.domain.events import REFRESHING_EVENTS
from app.backups.domain.model import Compression
from app.backups.domain.ports import BackupStorage
from app.backups.infrastructure.archive import inspect_archive
from app.backups.infrastructure.cron import ApsCronCalendar
from app.backups.infrastructure.jobs import BusServerLookup, RedisBackupJobs
from app.backups.infrastructure.node import BackupNode
from app.backups.infrastructure.progress import ProgressPublisher, forward_backup_event
from app.backups.infrastructure.read_model import SqlBackupReadModel
from app.backups.infrastructure.repositories import SqlBackupsUnitOfWork
from app.backups.infrastructure.snapshot import NodeBackupSettings
from app.backups.infrastructure.storage import storage_from_settings
from app.backups.infrastructure.unpacking import UnpackLimits
from app.files.application import handlers as files
from app.files.application import messages as file_messages
from app.files.application import queries as file_queries
from app.files.application import transfers as file_transfers
from app.files.application.history import FileLimits
from app.files.domain import events as file_events
from app.files.infrastructure.repositories import SqlFilesUnitOfWork
from app.files.infrastructure.servers import BusServers
from app.files.infrastructure.store import LocalFileStore
from app.groups.application import access as group_access
from app.groups.application import handlers as groups
from app.groups.application import messages as group_messages
from app.groups.application import queries as group_queries
from app.groups.domain import events as group_events
from app.groups.infrastructure.jobs import RedisSyncRequests
from app.groups.infrastructure.mojang import MojangProfiles
from app.groups.infrastructure.read import SqlAccessStore, SqlGroupsReadModel
from app.groups.infrastructure.repositories import SqlGroupsUnitOfWork
from app.groups.infrastructure.sync import AccessSync
from app.servers.application import handlers as servers
from app.servers.application import messages as server_messages
from app.servers.application import observations
from app.servers.application import queries as server_queries
from app.servers.application.handlers import ServerPolicy
from app.servers.domain import events as server_events
from app.servers.domain.console import ConsolePolicy
from app.servers.infrastructure.catalog import (
    CatalogReleaseCheck,
    NodeRecordCapacity,
    VersionCatalog,
)
from app.servers.infrastructure.jars import JarCache
from app.servers.infrastructure.java import JavaRuntimes
from app.servers.infrastructure.managed import NodeHooks
from app.servers.infrastructure.repositories import SqlServerListReadModel, SqlServersUnitOfWork
from app.servers.infrastructure.runtime import (
    RedisNodeGateway,
    RedisRuntimeStore,
    SocketPortProbe,
)
from app.settings import Settings
from app.shared.bus import MessageBus
from app.shared.cache import CacheService
from app.shared.db import ReadPool, create_engine, create_read_engine
from app.shared.domain import Clock, SystemClock
from app.shared.events import EventCodec, EventRelay
from app.shared.projections import MaterializedView
from app.shared.ratelimit import RateLimiter
from app.users.application import handlers as users
from app.users.application import messages as user_messages
from app.users.domain import events as user_events
from app.users.infrastructure.repositories import SqlUserReadModel, SqlUsersUnitOfWork
from app.users.infrastructure.security import (
    JwtAuthenticator,
    JwtTokenService,
    PasslibHasher,
    RedisSessionRevocations,
    derive_key,
)


def inject(handler: Callable[..., Awaitable[Any]], **deps: Any) -> Callable[[Any], Awaitable[Any]]:
    """Bind the dependencies a handler names among its keyword parameters."""
    wanted = inspect.signature(handler).parameters
    return functools.partial(handler, **{name: dep for name, dep in deps.items() if name in wanted})


@dataclass(kw_only=True)
class ServersComponents:
    catalog: VersionCatalog
    jars: JarCache
    java: JavaRuntimes
    nodes: RedisNodeGateway
    runtime: RedisRuntimeStore
    server_list: MaterializedView
    policy: ServerPolicy


@dataclass(kw_only=True)
class Container:
    settings: Settings
    engine: AsyncEngine
    read_engine: AsyncEngine
    read_pool: ReadPool
    redis: Redis
    bus: MessageBus
    codec: EventCodec
    relay: EventRelay
    cache: CacheService
    authenticator: JwtAuthenticator
    limiter: RateLimiter | None
    clock: Clock
    servers: ServersComponents
    node_hooks: NodeHooks
    http: httpx.AsyncClient
    sync_redis: SyncRedis
    backups: BackupsComponents | None = None

    async def close(self) -> None:
        await self.http.aclose()
        await self.redis.aclose()
        self.sync_redis.close()
        await self.engine.dispose()
        await self.read_engine.dispose()
        await self.read_pool.close()


def bootstrap(settings: Settings, *, clock: Clock | None = None) -> Container:
    clock = clock or SystemClock()
    engine = create_engine(
        settings.require_database_url(),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
    read_engine = create_read_engine(
        settings.require_database_url(),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
    read_pool = ReadPool(settings.require_database_url(), size=settings.db_pool_size)
    redis_url = settings.require_redis_url()
    redis = Redis.from_url(redis_url, decode_responses=True)
    sync_redis = SyncRedis.from_url(redis_url)
    bus = MessageBus()
    codec = EventCodec(
        (
            *user_events.USER_EVENTS,
            *server_events.SERVER_EVENTS,
            *group_events.GROUP_EVENTS,
            *file_events.FILE_EVENTS,
            *backup_events.BACKUP_EVENTS,
        )
    )
    relay = EventRelay(
        engine,
        bus,
        codec,
        poll_seconds=settings.relay_poll_seconds,
        batch_size=settings.relay_batch_size,
        max_attempts=settings.relay_max_attempts,
        retry_seconds=settings.relay_retry_seconds,
    )
    jwt_key = settings.jwt_key()
    tokens = JwtTokenService(
        secret=jwt_key,
        algorithm=settings.jwt_algorithm,
        issuer=settings.jwt_issuer,
        access_ttl=settings.access_token_ttl_seconds,
        refresh_ttl=settings.refresh_token_ttl_seconds,
    )
    revocations = RedisSessionRevocations(redis, access_ttl=settings.access_token_ttl_seconds)
    deps: dict[str, Any] = {
        "uow": lambda: SqlUsersUnitOfWork(engine, codec, on_commit=relay.wake),
        "hasher": PasslibHasher(
            time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
        ),
        "tokens": tokens,
        "clock": clock,
        "revocations": revocations,
        "read_model": SqlUserReadModel(read_engine),
    }
    _register_users(bus, deps)
    http = httpx.AsyncClient(
        headers={"User-Agent": settings.download_user_agent},
        timeout=settings.download_timeout_seconds,
        follow_redirects=True,
    )
    cache = CacheService(redis)
    components = _servers_components(settings, engine, redis, sync_redis, http, cache)
    _register_servers(
        bus,
        {
            **deps,
            "servers_uow": lambda: SqlServersUnitOfWork(engine, codec, on_commit=relay.wake),
            "servers_read": SqlServerListReadModel(read_engine, read_pool),
            "ports": SocketPortProbe(),
            "policy": components.policy,
            "releases": CatalogReleaseCheck(components.catalog, components.nodes),
            "capacity": NodeRecordCapacity(components.nodes),
            "nodes": components.nodes,
            "node_directory": components.nodes,
            "runtime": components.runtime,
            "server_list": components.server_list,
        },
    )
    node_hooks = NodeHooks()
    _register_groups(
        bus,
        {
            **deps,
            "bus": bus,
            "groups_uow": lambda: SqlGroupsUnitOfWork(engine, codec, on_commit=relay.wake),
            "groups_read": SqlGroupsReadModel(read_engine),
            "server_nodes": SqlGroupsReadModel(read_engine),
            "access": SqlAccessStore(engine),
            "profiles": MojangProfiles(
                http, settings.mojang_profile_api_url, timeout=settings.mojang_timeout_seconds
            ),
            "access_sync": RedisSyncRequests(
                redis, components.nodes, ttl_seconds=settings.job_ttl_seconds
            ),
            "group_summary": MaterializedView(engine, "group_summary_view"),
        },
        node_hooks,
        AccessSync(bus, clock, reply_seconds=settings.groups_reply_timeout_seconds),
    )
    _register_files(bus, settings, engine, codec, relay, clock)
    limiter = RateLimiter.from_settings(redis, settings)
    container = Container(
        settings=settings,
        engine=engine,
        read_engine=read_engine,
        read_pool=read_pool,
        redis=redis,
        bus=bus,
        codec=codec,
        relay=relay,
        cache=cache,
        authenticator=JwtAuthenticator(
            tokens,
            redis,
            read_engine,
            cache_key=derive_key(jwt_key, "permissions-cache"),
            cache_ttl=settings.permissions_cache_ttl_seconds,
            users_install_code=settings.users_install_code,
        ),
        limiter=limiter,
        clock=clock,
        servers=components,
        node_hooks=node_hooks,
        http=http,
        sync_redis=sync_redis,
    )
    _register_backups(container, deps)
    return container


def _servers_components(
    settings: Settings,
    engine: AsyncEngine,
    redis: Redis,
    sync_redis: SyncRedis,
    http: httpx.AsyncClient,
    cache: CacheService,
) -> ServersComponents:
    nodes = RedisNodeGateway(redis, sync_redis, job_ttl=settings.job_ttl_seconds)
    return ServersComponents(
        catalog=VersionCatalog(
            http,
            cache,
            mojang_manifest_url=settings.mojang_manifest_url,
            paper_api_url=settings.paper_api_url,
            cache_ttl=settings.catalog_cache_ttl_seconds,
        ),
        jars=JarCache(
            settings.resolved_data_dir / "jars",
            http,
            max_upload_bytes=settings.max_jar_upload_bytes,
        ),
        java=JavaRuntimes(settings.java_paths),
        nodes=nodes,
        runtime=RedisRuntimeStore(redis),
        server_list=MaterializedView(engine, "server_list_view"),
        policy=ServerPolicy(
            default_node=settings.node_name,
            port_range=(settings.server_port_range_start, settings.server_port_range_end),
            max_memory_mb=settings.server_max_memory_mb,
            console=ConsolePolicy.of(
                settings.console_denied_verbs, allowed=settings.console_allowed_verbs
            ),
            job_ttl_seconds=settings.job_ttl_seconds,
        ),
    )


def _register_servers(bus: MessageBus, deps: dict[str, Any]) -> None:
    m = server_messages
    for message, handler in (
        (m.CreateServer, servers.handle_create_server),
        (m.UpdateServer, servers.handle_update_server),
        (m.SetServerJar, servers.handle_set_server_jar),
        (m.DeleteServer, servers.handle_delete_server),
        (m.StartServer, servers.handle_start_server),
        (m.StopServer, servers.handle_stop_server),
        (m.RestartServer, servers.handle_restart_server),
        (m.SendConsoleCommand, servers.handle_send_console_command),
        (m.RecordProcessLaunched, observations.handle_record_process_launched),
        (m.RecordServerReady, observations.handle_record_server_ready),
        (m.RecordStartFailure, observations.handle_record_start_failure),
        (m.RecordProcessExit, observations.handle_record_process_exit),
        (m.RecordPlayers, observations.handle_record_players),
        (m.MarkRestartRequired, observations.handle_mark_restart_required),
        (m.RequestAutomaticStart, observations.handle_request_automatic_start),
        (m.RequestMaintenanceStop, observations.handle_request_maintenance_stop),
        (m.ExpireStaleStarts, observations.handle_expire_stale_starts),
        (m.GetServer, server_queries.handle_get_server),
        (m.ListServers, server_queries.handle_list_servers),
        (m.ListActiveNodeServers, server_queries.handle_list_active_node_servers),
        (m.GetServerStatus, server_queries.handle_get_server_status),
        (m.GetConsoleLog, server_queries.handle_get_console_log),
        (m.ListNodes, server_queries.handle_list_nodes),
    ):
        bus.register(message, inject(handler, **deps))
    refresh_list = inject(server_queries.refresh_server_list, **deps)
    for event in server_events.SERVER_EVENTS:
        if event is not server_events.ConsoleCommandExecuted:
            bus.subscribe(event, refresh_list)


def _register_files(
    bus: MessageBus,
    settings: Settings,
    engine: AsyncEngine,
    codec: EventCodec,
    relay: EventRelay,
    clock: Clock,
) -> None:
    deps: dict[str, Any] = {
        "files_uow": lambda: SqlFilesUnitOfWork(engine, codec, on_commit=relay.wake),
        "store": LocalFileStore(
            settings.resolved_data_dir / "servers", text_max_bytes=settings.file_edit_max_bytes
        ),
        "servers": BusServers(bus),
        "clock": clock,
        "limits": FileLimits(
            edit_max_bytes=settings.file_edit_max_bytes,
            upload_max_bytes=settings.file_upload_max_bytes,
            rejected_keep_bytes=settings.file_rejected_keep_bytes,
        ),
    }
    m = file_messages
    for message, handler in (
        (m.WriteFile, files.handle_write_file),
        (m.DeleteFile, files.handle_delete_file),
        (m.RestoreVersion, files.handle_restore_version),
        (m.MoveFile, file_transfers.handle_move_file),
        (m.MakeDirectory, file_transfers.handle_make_directory),
        (m.UploadFile, file_transfers.handle_upload_file),
        (m.ListFiles, file_queries.handle_list_files),
        (m.ReadFile, file_queries.handle_read_file),
        (m.OpenDownload, file_queries.handle_open_download),
        (m.ListVersions, file_queries.handle_list_versions),
        (m.GetVersion, file_queries.handle_get_version),
        (m.DiffVersion, file_queries.handle_diff_version),
    ):
        bus.register(message, inject(handler, **deps))


@dataclass(kw_only=True)
class BackupsComponents:
    storage: BackupStorage
    progress: ProgressPublisher
    node: BackupNode
    summary: MaterializedView


def _register_backups(container: Container, deps: dict[str, Any]) -> None:
    """Backups: handlers, projections, the node's runner and its adoption hook."""
    settings, bus = container.settings, container.bus
    storage = storage_from_settings(settings)
    unpack_limits = UnpackLimits(
        max_ratio=settings.backup_max_expansion_ratio,
        max_total_bytes=settings.backup_max_unpacked_bytes,
        max_members=settings.backup_max_members,
        min_free_bytes=settings.backup_min_free_bytes,
    )
    progress = ProgressPublisher(container.redis)
    components = BackupsComponents(
        storage=storage,
        progress=progress,
        summary=MaterializedView(container.engine, "backup_summary_view"),
        node=BackupNode(
            bus=bus,
            storage=storage,
            progress=progress,
            settings=NodeBackupSettings(
                gzip_level=settings.backup_gzip_level,
                zstd_level=settings.backup_zstd_level,
                save_timeout_seconds=settings.backup_save_timeout_seconds,
                snapshot_copy=settings.backup_snapshot_copy,
                unpack_limits=unpack_limits,
                stop_timeout_seconds=settings.server_stop_timeout_seconds
                + settings.server_term_timeout_seconds
                + 10,
            ),
        ),
    )
    container.backups = components
    container.node_hooks.after_adopt.append(components.node.after_adopt)
    engine, codec, relay = container.engine, container.codec, container.relay
    backup_deps = {
        **deps,
        "backups_uow": lambda: SqlBackupsUnitOfWork(engine, codec, on_commit=relay.wake),
        "backups_read": SqlBackupReadModel(container.read_engine),
        "servers": BusServerLookup(bus),
        "backup_jobs": RedisBackupJobs(
            container.servers.nodes, job_timeout=settings.backup_job_timeout_seconds
        ),
        "backup_storage": storage,
        "backup_policy": BackupPolicy(compression=Compression(settings.backup_compression)),
        "archive_check": functools.partial(inspect_archive, limits=unpack_limits),
        "calendar": ApsCronCalendar(),
        "progress": progress,
        "heartbeats": progress,
        "backup_summary": components.summary,
        "server_list": container.servers.server_list,
    }
    m = backup_messages
    for message, handler in (
        (m.CreateBackup, backups.handle_create_backup),
        (m.ImportBackup, backups.handle_import_backup),
        (m.DeleteBackup, backups.handle_delete_backup),
        (m.RestoreBackup, backups.handle_restore_backup),
        (m.GetBackup, backups.handle_get_backup),
        (m.ListBackups, backups.handle_list_backups),
        (m.GetBackupSummary, backups.handle_get_backup_summary),
        (m.CreateSchedule, schedules.handle_create_schedule),
        (m.UpdateSchedule, schedules.handle_update_schedule),
        (m.DeleteSchedule, schedules.handle_delete_schedule),
        (m.ListSchedules, schedules.handle_list_schedules),
        (m.GetSchedule, schedules.handle_get_schedule),
        (m.FireDueSchedules, schedules.handle_fire_due_schedules),
        (m.BeginBackupRun, backup_node.handle_begin_backup_run),
        (m.CreateSafetyBackup, backup_node.handle_create_safety_backup),
        (m.RecordBackupCompleted, backup_node.handle_record_backup_completed),
        (m.RecordBackupFailed, backup_node.handle_record_backup_failed),
        (m.RecordRestoreOutcome, backup_node.handle_record_restore_outcome),
        (m.FailInterruptedBackups, backup_node.handle_fail_interrupted_backups),
        (m.SweepInterruptedBackups, backup_node.handle_sweep_interrupted_backups),
    ):
        bus.register(message, inject(handler, **backup_deps))
    refresh = inject(backups.refresh_backup_views, **backup_deps)
    forward = inject(forward_backup_event, **backup_deps)
    bus.subscribe(
        server_events.ServerDeleted, inject(backups.forget_server_archives, **backup_deps)
    )
    for event in backup_events.BACKUP_EVENTS:
        bus.subscribe(event, forward)
        if event in REFRESHING_EVENTS:
            bus.subscribe(event, refresh)


def _register_users(bus: MessageBus, deps: dict[str, Any]) -> None:
    m = user_messages
    for message, handler in (
        (m.RegisterUser, users.handle_register_user),
        (m.LogIn, users.handle_log_in),
        (m.RefreshSession, users.handle_refresh_session),
        (m.LogOut, users.handle_log_out),
        (m.UpdateProfile, users.handle_update_profile),
        (m.ApproveUser, users.handle_approve_user),
        (m.ChangeUserRole, users.handle_change_user_role),
        (m.DeactivateUser, users.handle_deactivate_user),
        (m.ReactivateUser, users.handle_reactivate_user),
        (m.GetUser, users.handle_get_user),
        (m.ListUsers, users.handle_list_users),
    ):
        bus.register(message, inject(handler, **deps))
    for event in (
        user_events.UserApproved,
        user_events.UserRoleChanged,
        user_events.UserDeactivated,
        user_events.UserReactivated,
    ):
        bus.subscribe(event, inject(users.forget_changed_user, **deps))


def _register_groups(
    bus: MessageBus, deps: dict[str, Any], hooks: NodeHooks, sync: AccessSync
) -> None:
    m = group_messages
    for message, handler in (
        (m.CreateGroup, groups.handle_create_group),
        (m.UpdateGroup, groups.handle_update_group),
        (m.DeleteGroup, groups.handle_delete_group),
        (m.AddPlayerToGroup, groups.handle_add_player_to_group),
        (m.RemovePlayerFromGroup, groups.handle_remove_player_from_group),
        (m.AttachGroupToServer, groups.handle_attach_group_to_server),
        (m.DetachGroupFromServer, groups.handle_detach_group_from_server),
        (m.SetServerAccessMode, group_access.handle_set_server_access_mode),
        (m.RecordAccessSync, group_access.handle_record_access_sync),
        (m.ListGroups, group_queries.handle_list_groups),
        (m.GetGroup, group_queries.handle_get_group),
        (m.GetServerAccess, group_access.handle_get_server_access),
        (m.GetAccessPlan, group_access.handle_get_access_plan),
    ):
        bus.register(message, inject(handler, **deps))
    refresh = inject(group_queries.refresh_group_summary, **deps)
    for event in (*group_events.GROUP_EVENTS, server_events.ServerDeleted):
        bus.subscribe(event, refresh)
    bus.subscribe(file_events.FileModified, inject(group_access.handle_server_file_changed, **deps))
    hooks.before_launch.append(sync.before_launch)
