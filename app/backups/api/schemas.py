"""Request and response bodies of the backups API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field

from app.backups.domain.model import Backup, Compression
from app.backups.domain.schedule import KEEP_DAYS_MAX, KEEP_LAST_MAX, BackupSchedule
from app.backups.domain.tasks import (
    MESSAGE_MAX,
    WARNING_MINUTES_MAX,
    WARNINGS_MAX,
    TaskAction,
)
from app.servers.domain.console import COMMAND_MAX
from app.shared.http import SafeLine, example

KEEP_LAST = Field(
    default=None, ge=1, le=KEEP_LAST_MAX, description="keep the newest N scheduled backups"
)
KEEP_DAYS = Field(default=None, ge=1, le=KEEP_DAYS_MAX, description="keep scheduled backups D days")
WarningMinutes = Annotated[int, Field(ge=1, le=WARNING_MINUTES_MAX)]
COMMAND = Field(
    default=None,
    min_length=1,
    max_length=COMMAND_MAX,
    description="the console command of a `command` task, checked by the console policy",
)
WARNINGS = Field(
    default=None,
    max_length=WARNINGS_MAX,
    description="restart/stop: minutes before the run to warn the players with `say`; each "
    "distinct and shorter than the time between runs",
)
MESSAGE = Field(
    default=None,
    min_length=1,
    max_length=MESSAGE_MAX,
    description="the warning, with {minutes}; 'Server restarts in {minutes} minute(s)' by default",
)
SKIP_IF_PLAYERS = Field(
    default=None, description="skip the run (recorded as skipped) while players are online"
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateBackupRequest(Strict):
    model_config = example({"name": "before-the-update", "compression": "zstd"})

    name: SafeLine | None = Field(default=None, min_length=1, max_length=200)
    compression: Compression | None = None


class RestoreRequest(Strict):
    model_config = example({"from_other_server": False})

    server_id: uuid.UUID | None = Field(
        default=None, description="the server to restore onto; the backup's own by default"
    )
    from_other_server: bool = Field(
        default=False, description="admins only: confirm restoring another server's backup"
    )


class RestoreResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    backup_id: uuid.UUID
    server_id: uuid.UUID
    node: str
    node_online: bool
    job_id: str
    status: str = "requested"


class BackupResponse(BaseModel):
    id: uuid.UUID
    server_id: uuid.UUID
    name: str
    backup_type: str
    status: str
    compression: str
    size_bytes: int | None
    sha256: str | None
    error: str | None
    node: str
    schedule_id: uuid.UUID | None
    requested_by: uuid.UUID | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    saving_off_ms: int | None
    restore_status: str | None
    restore_error: str | None
    restored_at: datetime | None

    @classmethod
    def of(cls, backup: Backup) -> Self:
        return cls(
            id=backup.id,
            server_id=backup.server_id,
            name=backup.name,
            backup_type=backup.backup_type.value,
            status=backup.status.value,
            compression=backup.compression.value,
            size_bytes=backup.size_bytes,
            sha256=backup.sha256,
            error=backup.error,
            node=backup.node,
            schedule_id=backup.schedule_id,
            requested_by=backup.requested_by,
            created_at=backup.created_at,
            started_at=backup.started_at,
            finished_at=backup.finished_at,
            saving_off_ms=backup.saving_off_ms,
            restore_status=backup.restore_status.value if backup.restore_status else None,
            restore_error=backup.restore_error,
            restored_at=backup.restored_at,
        )


class BackupPage(BaseModel):
    items: list[BackupResponse]
    total: int
    page: int
    limit: int


class BackupSummaryResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    server_id: uuid.UUID
    server_name: str
    backup_count: int
    latest_backup: datetime | None
    total_size: int
    success_rate: float | None
    failed_count: int


class CreateScheduleRequest(Strict):
    model_config = example(
        {
            "cron_expression": "0 3 * * *",
            "timezone": "Europe/Berlin",
            "only_when_running": False,
            "keep_last": 7,
            "compression": "zstd",
        }
    )

    cron_expression: SafeLine = Field(min_length=1, max_length=100, examples=["0 3 * * *"])
    timezone: SafeLine = Field(default="UTC", min_length=1, max_length=64)
    is_active: bool = True
    only_when_running: bool = False
    keep_last: int | None = KEEP_LAST
    keep_days: int | None = KEEP_DAYS
    compression: Compression | None = None
    action: TaskAction = Field(
        default=TaskAction.BACKUP, description="what the schedule does when it fires"
    )
    command: SafeLine | None = COMMAND
    warnings: list[WarningMinutes] | None = WARNINGS
    message: SafeLine | None = MESSAGE
    skip_if_players_online: bool = Field(
        default=False, description="skip the run (recorded as skipped) while players are online"
    )


class UpdateScheduleRequest(Strict):
    model_config = example({"cron_expression": "30 4 * * 1-5", "keep_days": 14})

    cron_expression: SafeLine | None = Field(default=None, min_length=1, max_length=100)
    timezone: SafeLine | None = Field(default=None, min_length=1, max_length=64)
    is_active: bool | None = None
    only_when_running: bool | None = None
    keep_last: int | None = KEEP_LAST
    keep_days: int | None = KEEP_DAYS
    command: SafeLine | None = COMMAND
    warnings: list[WarningMinutes] | None = WARNINGS
    message: SafeLine | None = MESSAGE
    skip_if_players_online: bool | None = SKIP_IF_PLAYERS


class ScheduleResponse(BaseModel):
    id: uuid.UUID
    server_id: uuid.UUID
    cron_expression: str
    timezone: str
    is_active: bool
    only_when_running: bool
    keep_last: int | None
    keep_days: int | None
    compression: str
    next_run: datetime | None
    last_run: datetime | None
    created_at: datetime
    action: str
    command: str | None
    warnings: list[int]
    message: str | None
    skip_if_players_online: bool

    @classmethod
    def of(cls, schedule: BackupSchedule) -> Self:
        return cls(
            id=schedule.id,
            server_id=schedule.server_id,
            cron_expression=schedule.cron_expression,
            timezone=schedule.timezone,
            is_active=schedule.is_active,
            only_when_running=schedule.only_when_running,
            keep_last=schedule.retention.keep_last,
            keep_days=schedule.retention.keep_days,
            compression=schedule.compression.value,
            next_run=schedule.next_run,
            last_run=schedule.last_run,
            created_at=schedule.created_at,
            action=schedule.task.action.value,
            command=schedule.task.command,
            warnings=list(schedule.task.warnings),
            message=schedule.task.message,
            skip_if_players_online=schedule.task.skip_if_players_online,
        )
