"""Reading the audit log (pages by keyset, streamed exports) and keeping it (retention)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from app.monitoring.application.audit import ExportFormat
from app.monitoring.domain.audit import AuditEntry, AuditFilter, AuditPage
from app.monitoring.infrastructure.tables import audit_log

EXPORT_BATCH = 2000
CSV_COLUMNS = (
    "position",
    "occurred_at",
    "actor_id",
    "actor_username",
    "action",
    "resource_type",
    "resource_id",
    "server_id",
    "client_addr",
    "request_id",
    "summary",
    "details",
)


def _conditions(filter: AuditFilter, actions: frozenset[str] | None) -> list[Any]:
    c = audit_log.c
    where: list[Any] = []
    if filter.actor_id is not None:
        where.append(c.actor_id == filter.actor_id)
    if filter.server_id is not None:
        where.append(c.server_id == filter.server_id)
    if filter.action is not None:
        where.append(c.action == filter.action)
    if actions is not None:
        where.append(c.action.in_(sorted(actions)))
    if filter.resource_type is not None:
        where.append(c.resource_type == filter.resource_type)
    if filter.resource_id is not None:
        where.append(c.resource_id == filter.resource_id)
    if filter.since is not None:
        where.append(c.occurred_at >= filter.since)
    if filter.until is not None:
        where.append(c.occurred_at <= filter.until)
    return where


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        position=row.position,
        occurred_at=row.occurred_at,
        actor_id=row.actor_id,
        actor_username=row.actor_username,
        action=row.action,
        resource_type=row.resource_type,
        resource_id=row.resource_id,
        server_id=row.server_id,
        client_addr=row.client_addr,
        request_id=row.request_id,
        summary=row.summary,
        details=row.details,
    )


class SqlAuditLog:
    """The audit log's reads on the read engine; its writes (retention) on the main one."""

    def __init__(self, engine: AsyncEngine, read_engine: AsyncEngine) -> None:
        self._engine = engine
        self._read = read_engine

    async def page(
        self, filter: AuditFilter, *, limit: int, actions: frozenset[str] | None = None
    ) -> AuditPage:
        rows = await self._batch(_conditions(filter, actions), filter.before, limit + 1)
        more = len(rows) > limit
        items = tuple(_entry(row) for row in rows[:limit])
        return AuditPage(items=items, next_before=items[-1].position if more else None)

    async def _batch(self, where: list[Any], before: int | None, limit: int) -> list[Any]:
        query = sa.select(audit_log).where(*where)
        if before is not None:
            query = query.where(audit_log.c.position < before)
        query = query.order_by(audit_log.c.position.desc()).limit(limit)
        async with self._read.connect() as conn:
            return list((await conn.execute(query)).all())

    async def export(
        self, filter: AuditFilter, *, fmt: ExportFormat, max_rows: int
    ) -> AsyncIterator[bytes]:
        """Newest first, in keyset batches: memory holds one batch, whatever the total."""
        where = _conditions(filter, None)
        if fmt == "csv":
            yield _csv_lines([CSV_COLUMNS])
        before, sent = filter.before, 0
        while sent < max_rows:
            rows = await self._batch(where, before, min(EXPORT_BATCH, max_rows - sent))
            if not rows:
                return
            yield _csv_batch(rows) if fmt == "csv" else _ndjson_batch(rows)
            sent += len(rows)
            before = rows[-1].position

    async def purge(self, *, older_than_days: int, batch: int) -> int:
        """Delete in bounded batches, each its own short transaction."""
        total = 0
        while True:
            async with self._engine.begin() as conn:
                cutoff = sa.func.now() - timedelta(days=older_than_days)
                doomed = (
                    sa.select(audit_log.c.position)
                    .where(audit_log.c.occurred_at < cutoff)
                    .limit(batch)
                    .scalar_subquery()
                )
                result = await conn.execute(
                    audit_log.delete().where(audit_log.c.position.in_(doomed))
                )
            total += result.rowcount
            if result.rowcount < batch:
                return total


def _csv_lines(rows: Any) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str | None) -> str:
    """A text cell a spreadsheet would read as a formula (=, +, -, @, tab, CR first) gets a
    leading apostrophe: usernames, commands and paths in summaries come from users."""
    if not value:
        return ""
    return f"'{value}" if value.startswith(_FORMULA_STARTS) else value


def _csv_batch(rows: list[Any]) -> bytes:
    return _csv_lines(
        (
            row.position,
            row.occurred_at.isoformat(),
            row.actor_id or "",
            safe_cell(row.actor_username),
            safe_cell(row.action),
            safe_cell(row.resource_type),
            row.resource_id,
            row.server_id or "",
            safe_cell(row.client_addr),
            safe_cell(row.request_id),
            safe_cell(row.summary),
            json.dumps(row.details, separators=(",", ":")),
        )
        for row in rows
    )


def _ndjson_batch(rows: list[Any]) -> bytes:
    return "".join(
        json.dumps(
            {
                "position": row.position,
                "occurred_at": row.occurred_at.isoformat(),
                "actor_id": str(row.actor_id) if row.actor_id else None,
                "actor_username": row.actor_username,
                "action": row.action,
                "resource_type": row.resource_type,
                "resource_id": str(row.resource_id),
                "server_id": str(row.server_id) if row.server_id else None,
                "client_addr": row.client_addr,
                "request_id": row.request_id,
                "summary": row.summary,
                "details": row.details,
            },
            separators=(",", ":"),
        )
        + "\n"
        for row in rows
    ).encode()
