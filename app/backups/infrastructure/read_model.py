"""The backups read model: single-query pages of a server's backups, the summary view."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from app.backups.domain.model import Backup
from app.backups.domain.ports import BackupSummary
from app.backups.domain.schedule import BackupSchedule
from app.backups.infrastructure.repositories import backup_from_row, schedule_from_row
from app.backups.infrastructure.tables import backup_schedules, backups
from app.shared.domain import Page


class SqlBackupReadModel:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, backup_id: uuid.UUID) -> Backup | None:
        async with self._engine.connect() as conn:
            row = (
                (await conn.execute(sa.select(backups).where(backups.c.id == backup_id)))
                .mappings()
                .first()
            )
        return backup_from_row(row) if row else None

    async def page(
        self,
        server_id: uuid.UUID,
        *,
        backup_type: str | None,
        status: str | None,
        page: int,
        limit: int,
    ) -> Page[Backup]:
        total = sa.func.count().over().label("total")
        query = sa.select(backups, total).where(backups.c.server_id == server_id)
        if backup_type is not None:
            query = query.where(backups.c.backup_type == backup_type)
        if status is not None:
            query = query.where(backups.c.status == status)
        query = (
            query.order_by(backups.c.created_at.desc(), backups.c.id)
            .limit(limit)
            .offset((page - 1) * limit)
        )
        async with self._engine.connect() as conn:
            rows = list((await conn.execute(query)).mappings())
        count = int(rows[0]["total"]) if rows else 0
        if not rows and page > 1:
            async with self._engine.connect() as conn:
                count = int(
                    await conn.scalar(
                        sa.select(sa.func.count()).select_from(
                            query.order_by(None).limit(None).offset(None).subquery()
                        )
                    )
                    or 0
                )
        return Page(
            items=[backup_from_row(row) for row in rows], total=count, page=page, limit=limit
        )

    async def summary(self, server_id: uuid.UUID) -> BackupSummary | None:
        async with self._engine.connect() as conn:
            row = (
                (
                    await conn.execute(
                        sa.text(
                            "SELECT server_id, server_name, backup_count, latest_backup, "
                            "total_size, success_rate, failed_count FROM backup_summary "
                            "WHERE server_id = :server_id"
                        ),
                        {"server_id": server_id},
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        rate = row["success_rate"]
        return BackupSummary(
            server_id=row["server_id"],
            server_name=row["server_name"],
            backup_count=int(row["backup_count"]),
            latest_backup=row["latest_backup"],
            total_size=int(row["total_size"]),
            success_rate=float(rate) if rate is not None else None,
            failed_count=int(row["failed_count"]),
        )

    async def schedules(self, server_id: uuid.UUID) -> list[BackupSchedule]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                sa.select(backup_schedules)
                .where(backup_schedules.c.server_id == server_id)
                .order_by(backup_schedules.c.created_at)
            )
            return [schedule_from_row(row) for row in rows.mappings()]

    async def schedule(self, schedule_id: uuid.UUID) -> BackupSchedule | None:
        async with self._engine.connect() as conn:
            row = (
                (
                    await conn.execute(
                        sa.select(backup_schedules).where(backup_schedules.c.id == schedule_id)
                    )
                )
                .mappings()
                .first()
            )
        return schedule_from_row(row) if row else None
