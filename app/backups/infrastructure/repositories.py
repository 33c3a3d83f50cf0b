"""SQL repositories, activity locks and the unit of work of the backups context."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from app.backups.domain.errors import BackupBusy
from app.backups.domain.model import (
    UNFINISHED,
    Backup,
    BackupStatus,
    BackupType,
    Compression,
    RestoreStatus,
)
from app.backups.domain.schedule import BackupSchedule, Retention
from app.backups.domain.tasks import Task, TaskAction
from app.backups.infrastructure.tables import backup_locks, backup_schedules, backups
from app.shared.domain import DomainEvent
from app.shared.uow import SqlRepository, SqlUnitOfWork

_BACKUP_FIELDS = [
    "server_id",
    "name",
    "file_path",
    "node",
    "created_at",
    "requested_by",
    "schedule_id",
    "size_bytes",
    "sha256",
    "error",
    "started_at",
    "finished_at",
    "saving_off_ms",
    "restore_error",
    "restored_at",
]


def backup_from_row(row: RowMapping) -> Backup:
    return Backup(
        id=row["id"],
        version=row["version"],
        backup_type=BackupType(row["backup_type"]),
        status=BackupStatus(row["status"]),
        compression=Compression(row["compression"]),
        restore_status=RestoreStatus(row["restore_status"]) if row["restore_status"] else None,
        **{name: row[name] for name in _BACKUP_FIELDS},
    )


def schedule_from_row(row: RowMapping) -> BackupSchedule:
    return BackupSchedule(
        id=row["id"],
        version=row["version"],
        server_id=row["server_id"],
        cron_expression=row["cron_expression"],
        timezone=row["timezone"],
        is_active=row["is_active"],
        only_when_running=row["only_when_running"],
        retention=Retention(keep_last=row["keep_last"], keep_days=row["keep_days"]),
        compression=Compression(row["compression"]),
        created_at=row["created_at"],
        created_by=row["created_by"],
        next_run=row["next_run"],
        last_run=row["last_run"],
        task=Task(
            action=TaskAction(row["action"]),
            command=row["command"],
            warnings=tuple(row["warnings"] or ()),
            message=row["message"],
            skip_if_players_online=row["skip_if_players_online"],
        ),
        warned=row["warned"],
    )


class SqlBackupRepository(SqlRepository[Backup]):
    table = backups

    def __init__(self, conn: AsyncConnection) -> None:
        super().__init__(conn)
        self.pending: list[DomainEvent] = []

    def to_row(self, aggregate: Backup) -> dict[str, Any]:
        return {
            "id": aggregate.id,
            "backup_type": aggregate.backup_type.value,
            "status": aggregate.status.value,
            "compression": aggregate.compression.value,
            "restore_status": aggregate.restore_status.value if aggregate.restore_status else None,
            **{name: getattr(aggregate, name) for name in _BACKUP_FIELDS},
        }

    async def get(self, backup_id: uuid.UUID, *, lock: bool = False) -> Backup | None:
        if backup_id in self.seen:
            return self.seen[backup_id]
        query = sa.select(backups).where(backups.c.id == backup_id)
        row = (await self.conn.execute(query.with_for_update() if lock else query)).mappings()
        found = row.first()
        return self.track(backup_from_row(found)) if found else None

    async def remove(self, backup: Backup) -> None:
        """Delete the row now; its BackupDeleted event commits with the deletion."""
        self.seen.pop(backup.id, None)
        await self.conn.execute(backups.delete().where(backups.c.id == backup.id))
        self.pending.extend(backup.collect_events())

    async def unfinished(self, *, node: str | None = None) -> list[Backup]:
        query = (
            sa.select(backups)
            .where(backups.c.status.in_([status.value for status in UNFINISHED]))
            .order_by(backups.c.created_at)
            .with_for_update(skip_locked=True)
        )
        if node is not None:
            query = query.where(backups.c.node == node)
        rows = (await self.conn.execute(query)).mappings()
        return [self.track(backup_from_row(row)) for row in rows]

    async def scheduled_completed(self, schedule_id: uuid.UUID) -> list[tuple[uuid.UUID, datetime]]:
        rows = await self.conn.execute(
            sa.select(backups.c.id, backups.c.created_at).where(
                backups.c.schedule_id == schedule_id,
                backups.c.backup_type == BackupType.SCHEDULED.value,
                backups.c.status == BackupStatus.COMPLETED.value,
            )
        )
        return [(row.id, row.created_at) for row in rows]

    async def flush(self) -> list[DomainEvent]:
        events = await super().flush()
        events.extend(self.pending)
        self.pending = []
        return events


class SqlScheduleRepository(SqlRepository[BackupSchedule]):
    table = backup_schedules

    def __init__(self, conn: AsyncConnection) -> None:
        super().__init__(conn)
        self.pending: list[DomainEvent] = []

    def to_row(self, aggregate: BackupSchedule) -> dict[str, Any]:
        return {
            "id": aggregate.id,
            "server_id": aggregate.server_id,
            "cron_expression": aggregate.cron_expression,
            "timezone": aggregate.timezone,
            "is_active": aggregate.is_active,
            "only_when_running": aggregate.only_when_running,
            "keep_last": aggregate.retention.keep_last,
            "keep_days": aggregate.retention.keep_days,
            "compression": aggregate.compression.value,
            "created_at": aggregate.created_at,
            "created_by": aggregate.created_by,
            "next_run": aggregate.next_run,
            "last_run": aggregate.last_run,
            "action": aggregate.task.action.value,
            "command": aggregate.task.command,
            "warnings": list(aggregate.task.warnings),
            "message": aggregate.task.message,
            "skip_if_players_online": aggregate.task.skip_if_players_online,
            "warned": aggregate.warned,
        }

    async def get(self, schedule_id: uuid.UUID, *, lock: bool = False) -> BackupSchedule | None:
        if schedule_id in self.seen:
            return self.seen[schedule_id]
        query = sa.select(backup_schedules).where(backup_schedules.c.id == schedule_id)
        rows = (await self.conn.execute(query.with_for_update() if lock else query)).mappings()
        found = rows.first()
        return self.track(schedule_from_row(found)) if found else None

    async def remove(self, schedule: BackupSchedule) -> None:
        self.seen.pop(schedule.id, None)
        await self.conn.execute(
            backup_schedules.delete().where(backup_schedules.c.id == schedule.id)
        )
        self.pending.extend(schedule.collect_events())

    async def due(self, now: datetime) -> list[BackupSchedule]:
        rows = await self.conn.execute(
            sa.select(backup_schedules)
            .where(backup_schedules.c.is_active.is_(True), backup_schedules.c.next_run <= now)
            .order_by(backup_schedules.c.next_run)
        )
        return [schedule_from_row(row) for row in rows.mappings()]

    async def warning_soon(self, until: datetime) -> list[BackupSchedule]:
        rows = await self.conn.execute(
            sa.select(backup_schedules)
            .where(
                backup_schedules.c.is_active.is_(True),
                backup_schedules.c.next_run <= until,
                backup_schedules.c.action.in_(["restart", "stop"]),
                sa.func.cardinality(backup_schedules.c.warnings) > 0,
            )
            .order_by(backup_schedules.c.next_run)
        )
        return [schedule_from_row(row) for row in rows.mappings()]

    async def flush(self) -> list[DomainEvent]:
        events = await super().flush()
        events.extend(self.pending)
        self.pending = []
        return events


class SqlActivityLocks:
    """A row per busy server: its primary key stops a second backup/restore in any process."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def acquire(
        self, server_id: uuid.UUID, *, operation: str, backup_id: uuid.UUID, node: str
    ) -> None:
        taken = await self.conn.scalar(
            insert(backup_locks)
            .values(server_id=server_id, operation=operation, backup_id=backup_id, node=node)
            .on_conflict_do_nothing(index_elements=["server_id"])
            .returning(backup_locks.c.server_id)
        )
        if taken is None:
            holder = await self.holder(server_id)
            doing = f"a {holder[0]} ({holder[1]})" if holder else "a backup or restore"
            raise BackupBusy(
                f"{doing} of this server is in progress; try again when it has finished",
                operation=holder[0] if holder else None,
            )

    async def release(self, server_id: uuid.UUID, *, backup_id: uuid.UUID | None = None) -> None:
        query = backup_locks.delete().where(backup_locks.c.server_id == server_id)
        if backup_id is not None:
            query = query.where(backup_locks.c.backup_id == backup_id)
        await self.conn.execute(query)

    async def restores_before(self, cutoff: datetime) -> list[tuple[uuid.UUID, uuid.UUID]]:
        rows = await self.conn.execute(
            sa.select(backup_locks.c.server_id, backup_locks.c.backup_id).where(
                backup_locks.c.operation == "restore", backup_locks.c.acquired_at < cutoff
            )
        )
        return [(row.server_id, row.backup_id) for row in rows]

    async def holder(self, server_id: uuid.UUID) -> tuple[str, uuid.UUID] | None:
        row = (
            await self.conn.execute(
                sa.select(backup_locks.c.operation, backup_locks.c.backup_id).where(
                    backup_locks.c.server_id == server_id
                )
            )
        ).first()
        return (row.operation, row.backup_id) if row else None


class SqlBackupsUnitOfWork(SqlUnitOfWork):
    backups: SqlBackupRepository
    schedules: SqlScheduleRepository
    locks: SqlActivityLocks

    def start(self, conn: AsyncConnection) -> None:
        self.backups = self.repository(SqlBackupRepository(conn))
        self.schedules = self.repository(SqlScheduleRepository(conn))
        self.locks = SqlActivityLocks(conn)
