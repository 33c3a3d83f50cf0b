"""The file history in PostgreSQL, serialized per (server, path) with an advisory lock."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from app.files.domain.model import FileVersion, Outcome, VersionAction
from app.files.infrastructure.tables import file_versions
from app.shared.db import lock_until_commit
from app.shared.domain import Page
from app.shared.uow import SqlUnitOfWork

# Summaries carry an empty content where one is kept, so pages say so without the bytes.
_SUMMARY = [
    *(column for column in file_versions.c if column.name != "content"),
    sa.func.substring(file_versions.c.content, 1, 0).label("content"),
]


def _version(row: RowMapping) -> FileVersion:
    return FileVersion(
        id=row["id"],
        server_id=row["server_id"],
        path=row["path"],
        version=row["version"],
        action=VersionAction(row["action"]),
        outcome=Outcome(row["outcome"]),
        author_id=row["author_id"],
        created_at=row["created_at"],
        size=row["size"],
        sha256=row["sha256"],
        content=row.get("content"),
        note=row["note"],
    )


def _of(server_id: uuid.UUID, path: str) -> Any:
    return sa.and_(file_versions.c.server_id == server_id, file_versions.c.path == path)


class SqlFileHistory:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def lock(self, server_id: uuid.UUID, path: str) -> None:
        """Held until the transaction ends: compare, write and record happen as one step."""
        await lock_until_commit(self.conn, f"file:{server_id}/{path}")

    async def latest(self, server_id: uuid.UUID, path: str) -> FileVersion | None:
        """The newest applied version: what the dashboard last knew the file to be."""
        row = (
            (
                await self.conn.execute(
                    sa.select(file_versions)
                    .where(_of(server_id, path), file_versions.c.outcome == Outcome.APPLIED.value)
                    .order_by(file_versions.c.version.desc())
                    .limit(1)
                )
            )
            .mappings()
            .first()
        )
        return _version(row) if row else None

    async def next_number(self, server_id: uuid.UUID, path: str) -> int:
        current = await self.conn.scalar(
            sa.select(sa.func.max(file_versions.c.version)).where(_of(server_id, path))
        )
        return int(current or 0) + 1

    async def add(self, version: FileVersion) -> None:
        await self.conn.execute(
            file_versions.insert().values(
                id=version.id,
                server_id=version.server_id,
                path=version.path,
                version=version.version,
                action=version.action.value,
                outcome=version.outcome.value,
                author_id=version.author_id,
                created_at=version.created_at,
                size=version.size,
                sha256=version.sha256,
                content=version.content,
                note=version.note,
            )
        )

    async def get(self, server_id: uuid.UUID, path: str, number: int) -> FileVersion | None:
        row = (
            (
                await self.conn.execute(
                    sa.select(file_versions).where(
                        _of(server_id, path), file_versions.c.version == number
                    )
                )
            )
            .mappings()
            .first()
        )
        return _version(row) if row else None

    async def paths_under(self, server_id: uuid.UUID, prefix: str) -> list[str]:
        """Paths with a history inside a directory, for recording a recursive delete."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = await self.conn.scalars(
            sa.select(file_versions.c.path)
            .where(
                file_versions.c.server_id == server_id,
                file_versions.c.path.like(f"{escaped}/%", escape="\\"),
            )
            .distinct()
            .order_by(file_versions.c.path)
        )
        return list(rows)

    async def page(
        self, server_id: uuid.UUID, path: str, *, page: int, limit: int
    ) -> Page[FileVersion]:
        """Newest first, without contents; the total rides along as a window count."""
        rows = (
            await self.conn.execute(
                sa.select(*_SUMMARY, sa.func.count().over().label("total"))
                .where(_of(server_id, path))
                .order_by(file_versions.c.version.desc())
                .limit(limit)
                .offset((page - 1) * limit)
            )
        ).mappings()
        fetched = list(rows)
        total = int(fetched[0]["total"]) if fetched else await self._count(server_id, path)
        return Page(items=[_version(row) for row in fetched], total=total, page=page, limit=limit)

    async def _count(self, server_id: uuid.UUID, path: str) -> int:
        return int(
            await self.conn.scalar(
                sa.select(sa.func.count()).select_from(file_versions).where(_of(server_id, path))
            )
            or 0
        )


class SqlFilesUnitOfWork(SqlUnitOfWork):
    history: SqlFileHistory

    def start(self, conn: AsyncConnection) -> None:
        self.history = SqlFileHistory(conn)
