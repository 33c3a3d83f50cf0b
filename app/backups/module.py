"""The backups context: consistent archives of servers, schedules, retention, verified restores."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter

from app.backups.application import handlers, node, schedules, tasks
from app.backups.application import messages as m
from app.backups.application.handlers import BackupPolicy
from app.backups.domain import events
from app.backups.domain.model import Compression
from app.backups.domain.ports import ArchiveStore
from app.backups.infrastructure.archive import inspect_archive
from app.backups.infrastructure.control import BusServerControl
from app.backups.infrastructure.cron import ApsCronCalendar
from app.backups.infrastructure.jobs import BusServerLookup, RedisBackupJobs
from app.backups.infrastructure.node import BackupNode
from app.backups.infrastructure.progress import ProgressPublisher, forward_backup_event
from app.backups.infrastructure.projection import BACKUP_SUMMARY
from app.backups.infrastructure.read_model import SqlBackupReadModel
from app.backups.infrastructure.remote import AgentArchives, S3Archives
from app.backups.infrastructure.repositories import SqlBackupsUnitOfWork
from app.backups.infrastructure.snapshot import NodeBackupSettings
from app.backups.infrastructure.spool import ArchiveSpool
from app.backups.infrastructure.storage import storage_from_settings
from app.backups.infrastructure.unpacking import UnpackLimits
from app.servers.domain.console import ConsolePolicy
from app.servers.domain.events import ServerDeleted
from app.servers.domain.ports import NodeServers
from app.settings import Settings
from app.shared.agent import NodeTokens
from app.shared.infrastructure import Infrastructure
from app.shared.nodes import NodeJobs
from app.shared.wiring import Handlers

EVENTS = events.BACKUP_EVENTS
HANDLERS = Handlers(
    messages={
        m.CreateBackup: handlers.handle_create_backup,
        m.ImportBackup: handlers.handle_import_backup,
        m.DeleteBackup: handlers.handle_delete_backup,
        m.RestoreBackup: handlers.handle_restore_backup,
        m.GetBackup: handlers.handle_get_backup,
        m.ListBackups: handlers.handle_list_backups,
        m.GetBackupSummary: handlers.handle_get_backup_summary,
        m.OpenBackupDownload: handlers.handle_open_backup_download,
        m.CreateSchedule: schedules.handle_create_schedule,
        m.UpdateSchedule: schedules.handle_update_schedule,
        m.DeleteSchedule: schedules.handle_delete_schedule,
        m.ListSchedules: schedules.handle_list_schedules,
        m.GetSchedule: schedules.handle_get_schedule,
        m.FireDueSchedules: schedules.handle_fire_due_schedules,
        m.SendScheduleWarnings: tasks.handle_send_schedule_warnings,
        m.BeginBackupRun: node.handle_begin_backup_run,
        m.CreateSafetyBackup: node.handle_create_safety_backup,
        m.RecordBackupCompleted: node.handle_record_backup_completed,
        m.RecordBackupFailed: node.handle_record_backup_failed,
        m.RecordRestoreOutcome: node.handle_record_restore_outcome,
        m.FailInterruptedBackups: node.handle_fail_interrupted_backups,
        m.SweepInterruptedBackups: node.handle_sweep_interrupted_backups,
    },
    events=[
        (ServerDeleted, handlers.forget_server_archives),
        *((event, forward_backup_event) for event in events.BACKUP_EVENTS),
    ],
    projections=[BACKUP_SUMMARY],
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Backups:
    """What the rest of the app gets from this context."""

    archives: ArchiveStore


def wire(
    infra: Infrastructure, *, nodes: NodeJobs, console: ConsolePolicy, **overrides: Any
) -> tuple[dict[str, Any], Backups]:
    """`nodes` runs the backups. Archives are reached through the nodes (or S3): nothing here
    touches this process's disk. Scheduled tasks check commands by the servers' `console`
    policy and act through the servers context's commands."""
    settings = infra.settings
    archives = overrides.pop("archives", None) or archive_store(infra)
    deps: dict[str, Any] = {
        "uow": infra.unit_of_work(SqlBackupsUnitOfWork),
        "read_model": SqlBackupReadModel(infra.read_engine),
        "servers": BusServerLookup(infra.bus),
        "jobs": RedisBackupJobs(nodes, job_timeout=settings.backup_job_timeout_seconds),
        "archives": archives,
        "policy": BackupPolicy(compression=Compression(settings.backup_compression)),
        "calendar": ApsCronCalendar(),
        "control": BusServerControl(infra.bus, console),
        "tasks": tasks.TaskPolicy(
            minute=timedelta(seconds=settings.schedule_warning_minute_seconds)
        ),
        "progress": ProgressPublisher(infra.redis),
        "clock": infra.clock,
        **overrides,
    }
    return deps, Backups(archives=archives)


def archive_store(infra: Infrastructure) -> ArchiveStore:
    """Local archives live on the node that took them; S3 ones in the bucket."""
    nodes = AgentArchives(infra.agents)
    if infra.settings.backup_storage == "s3":
        return S3Archives(storage_from_settings(infra.settings), nodes)
    return nodes


def node_runner(infra: Infrastructure, deps: dict[str, Any], *, servers: NodeServers) -> BackupNode:
    """The node side: takes this node's backups and restores on `servers`, in its own storage."""
    settings = infra.settings
    return BackupNode(
        bus=infra.bus,
        servers=servers,
        storage=deps.get("storage") or storage_from_settings(settings),
        progress=deps["progress"],
        settings=NodeBackupSettings(
            gzip_level=settings.backup_gzip_level,
            zstd_level=settings.backup_zstd_level,
            save_timeout_seconds=settings.backup_save_timeout_seconds,
            snapshot_copy=settings.backup_snapshot_copy,
            unpack_limits=unpack_limits(settings),
            stop_timeout_seconds=settings.server_stop_timeout_seconds
            + settings.server_term_timeout_seconds
            + 10,
        ),
    )


def node_routers(settings: Settings, tokens: NodeTokens, node: str) -> list[APIRouter]:
    """The routes this context adds to a node's agent; what a dead worker left spooled is
    removed first."""
    from app.backups.api.agent import agent_router

    storage = storage_from_settings(settings)
    spool = ArchiveSpool(
        settings.resolved_data_dir / "agent" / "backup-uploads",
        storage,
        functools.partial(inspect_archive, limits=unpack_limits(settings)),
        limit=settings.backup_max_upload_bytes,
    )
    spool.recover()
    return [agent_router(storage, spool, tokens, node)]


def unpack_limits(settings: Settings) -> UnpackLimits:
    return UnpackLimits(
        max_ratio=settings.backup_max_expansion_ratio,
        max_total_bytes=settings.backup_max_unpacked_bytes,
        max_members=settings.backup_max_members,
        min_free_bytes=settings.backup_min_free_bytes,
    )


def routers() -> list[APIRouter]:
    from app.backups.api import routes

    return [routes.router]
