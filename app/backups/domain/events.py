"""What happens to backups and schedules (aggregate types `backup` and `backup_schedule`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from app.shared.domain import DomainEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupEvent(DomainEvent):
    aggregate_type: ClassVar[str] = "backup"

    backup_id: uuid.UUID
    server_id: uuid.UUID

    @property
    def aggregate_id(self) -> uuid.UUID:
        return self.backup_id


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupCreated(BackupEvent):
    backup_type: str
    node: str
    requested_by: uuid.UUID | None
    schedule_id: uuid.UUID | None


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupCompleted(BackupEvent):
    size_bytes: int
    sha256: str
    saving_off_ms: int | None
    duration_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupFailed(BackupEvent):
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupRestored(BackupEvent):
    """`server_id` is the backup's server; `target_server_id` the server that was restored."""

    target_server_id: uuid.UUID
    safety_backup_id: uuid.UUID | None
    requested_by: uuid.UUID | None


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupRestoreFailed(BackupEvent):
    target_server_id: uuid.UUID
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupDeleted(BackupEvent):
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleEvent(DomainEvent):
    aggregate_type: ClassVar[str] = "backup_schedule"

    schedule_id: uuid.UUID
    server_id: uuid.UUID

    @property
    def aggregate_id(self) -> uuid.UUID:
        return self.schedule_id


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupScheduled(ScheduleEvent):
    """A schedule was created or changed."""

    cron_expression: str
    timezone: str
    is_active: bool
    only_when_running: bool
    keep_last: int | None
    keep_days: int | None
    next_run: datetime | None
    action: str = "backup"
    command: str | None = None
    warnings: tuple[int, ...] = ()
    message: str | None = None
    skip_if_players_online: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupScheduleRemoved(ScheduleEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduledTaskRan(ScheduleEvent):
    """A schedule fired: its action was requested, done, skipped (with why) or failed."""

    action: str
    outcome: str
    reason: str | None = None
    backup_id: uuid.UUID | None = None


BACKUP_EVENTS: tuple[type[DomainEvent], ...] = (
    BackupCreated,
    BackupCompleted,
    BackupFailed,
    BackupRestored,
    BackupRestoreFailed,
    BackupDeleted,
    BackupScheduled,
    BackupScheduleRemoved,
    ScheduledTaskRan,
)

REFRESHING_EVENTS: tuple[type[DomainEvent], ...] = (BackupCompleted, BackupFailed, BackupDeleted)
