"""Commands and queries of the backups context, and the views its queries return."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from app.backups.domain.model import Backup, Compression
from app.backups.domain.ports import BackupSummary
from app.backups.domain.schedule import BackupSchedule
from app.backups.domain.tasks import TaskAction
from app.shared.bus import Command, Query
from app.shared.domain import Page
from app.shared.security import Principal

# Commands of the API


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateBackup(Command[Backup]):
    actor: Principal
    server_id: uuid.UUID
    name: str | None = None
    compression: Compression | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportBackup(Command[Backup]):
    """An uploaded archive, streamed (`chunks`) to the server's node, becomes a completed
    backup."""

    actor: Principal
    server_id: uuid.UUID
    chunks: AsyncIterable[bytes]
    name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteBackup(Command[None]):
    actor: Principal
    backup_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreBackup(Command["RestoreAccepted"]):
    actor: Principal
    backup_id: uuid.UUID
    target_server_id: uuid.UUID | None = None
    from_other_server: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreAccepted:
    backup_id: uuid.UUID
    server_id: uuid.UUID
    node: str
    node_online: bool
    job_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateSchedule(Command[BackupSchedule]):
    actor: Principal
    server_id: uuid.UUID
    cron_expression: str
    timezone: str = "UTC"
    is_active: bool = True
    only_when_running: bool = False
    keep_last: int | None = None
    keep_days: int | None = None
    compression: Compression | None = None
    action: TaskAction = TaskAction.BACKUP
    command: str | None = None
    warnings: tuple[int, ...] = ()
    message: str | None = None
    skip_if_players_online: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateSchedule(Command[BackupSchedule]):
    actor: Principal
    schedule_id: uuid.UUID
    cron_expression: str | None = None
    timezone: str | None = None
    is_active: bool | None = None
    only_when_running: bool | None = None
    keep_last: int | None = None
    keep_days: int | None = None
    clear_keep_last: bool = False
    clear_keep_days: bool = False
    command: str | None = None
    warnings: tuple[int, ...] | None = None
    message: str | None = None
    clear_message: bool = False
    skip_if_players_online: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteSchedule(Command[None]):
    actor: Principal
    schedule_id: uuid.UUID


# Commands of the scheduler


@dataclass(frozen=True, slots=True, kw_only=True)
class FireDueSchedules(Command[list[uuid.UUID]]):
    """Run every active schedule whose next run has come; returns the backups requested."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SendScheduleWarnings(Command[list[uuid.UUID]]):
    """Warn the players of the restarts and stops coming; returns the schedules that warned."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepInterruptedBackups(Command[list[uuid.UUID]]):
    """Fail unfinished backups whose node's worker is gone or never picked them up."""

    requested_grace_seconds: float
    heartbeat_grace_seconds: float = 30.0


# Commands of the node


@dataclass(frozen=True, slots=True, kw_only=True)
class BeginBackupRun(Command[Backup]):
    backup_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateSafetyBackup(Command[Backup]):
    """A running backup of the current state, taken by a restore before it replaces anything."""

    server_id: uuid.UUID
    node: str
    compression: Compression


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordBackupCompleted(Command[None]):
    backup_id: uuid.UUID
    size_bytes: int
    sha256: str
    saving_off_ms: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordBackupFailed(Command[None]):
    backup_id: uuid.UUID
    reason: str
    saving_off_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordRestoreOutcome(Command[None]):
    backup_id: uuid.UUID
    target_server_id: uuid.UUID
    requested_by: uuid.UUID | None
    safety_backup_id: uuid.UUID | None
    error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class FailInterruptedBackups(Command[list[uuid.UUID]]):
    """A restarted worker ends what its predecessor left running (on a node, or of a server)."""

    node: str | None
    server_id: uuid.UUID | None
    reason: str


# Queries


@dataclass(frozen=True, slots=True, kw_only=True)
class GetBackup(Query[Backup]):
    actor: Principal | None
    backup_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupDownload:
    backup: Backup
    chunks: AsyncIterator[bytes]


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenBackupDownload(Query[BackupDownload]):
    """A completed backup's archive, streamed from its storage."""

    actor: Principal
    backup_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class ListBackups(Query[Page[Backup]]):
    actor: Principal
    server_id: uuid.UUID
    backup_type: str | None = None
    status: str | None = None
    page: int = 1
    limit: int = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class GetBackupSummary(Query[BackupSummary]):
    actor: Principal
    server_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class ListSchedules(Query[list[BackupSchedule]]):
    actor: Principal
    server_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class GetSchedule(Query[BackupSchedule]):
    actor: Principal
    schedule_id: uuid.UUID
