"""The audit projection: domain_events to audit_log, by position, with a checkpoint of its own."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
import structlog
from prometheus_client import Counter
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.monitoring.domain.audit import SummaryContext, server_of, summarize
from app.monitoring.infrastructure.tables import audit_log, projection_checkpoints
from app.shared.db import domain_events
from app.shared.relay import drain_on_notify

log = structlog.get_logger(__name__)

AUDIT_CHECKPOINT = "audit"
AUDIT_ROWS = Counter("mcdash_audit_rows_projected_total", "Events written to the audit log")
_GAP_SCAN_LIMIT = 1000


class AuditProjector:
    """Tails the event store into the audit log; safe with any number of API replicas.

    Each drain runs in one transaction that holds the checkpoint row (FOR UPDATE SKIP LOCKED:
    a replica that finds it taken leaves the work to the one holding it), inserts the new
    rows ON CONFLICT DO NOTHING and moves the checkpoint, so a crash redoes a batch at most.

    Positions come from an identity, handed out when a row is inserted, not when its
    transaction commits: position 41 may become visible after 42. So the projection reads
    past the checkpoint from the highest position already in audit_log, and also re-reads
    the gaps between the checkpoint and that position (events that committed late fill them).
    The checkpoint only moves over a contiguous run of projected positions; a gap blocks it
    until it is filled or until this process has seen it open for `gap_seconds` (a rolled-back
    transaction leaves a gap for good; no appending transaction stays open that long). The
    log itself never waits for the checkpoint, only the checkpoint waits.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        batch_size: int = 500,
        poll_seconds: float = 2.0,
        gap_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._gap_seconds = gap_seconds
        self._clock = clock
        self._gaps: dict[int, float] = {}
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self) -> None:
        """Drain forever, woken by the events NOTIFY of any process or by the poll interval."""
        await drain_on_notify(
            self._engine,
            self.drain,
            self._wakeup,
            batch_size=self._batch_size,
            poll_seconds=self._poll_seconds,
            failure="audit_projection_failed",
        )

    async def drain(self) -> int:
        """Project one batch; returns how many events were read (0 when another replica works)."""
        async with self._engine.begin() as conn:
            checkpoint = await _lock_checkpoint(conn)
            if checkpoint is None:
                return 0
            newest = await conn.scalar(
                sa.select(sa.func.max(audit_log.c.position)).where(
                    audit_log.c.position > checkpoint
                )
            )
            highest = checkpoint if newest is None else int(newest)
            rows = [*await _late(conn, checkpoint, highest), *await self._next(conn, highest)]
            if rows:
                await conn.execute(
                    insert(audit_log).on_conflict_do_nothing(), await _audit_rows(conn, rows)
                )
                AUDIT_ROWS.inc(len(rows))
            moved = await self._advance(conn, checkpoint)
            if moved != checkpoint:
                await conn.execute(
                    projection_checkpoints.update()
                    .where(projection_checkpoints.c.name == AUDIT_CHECKPOINT)
                    .values(position=moved, updated_at=sa.func.now())
                )
        return len(rows)

    async def _next(self, conn: AsyncConnection, after: int) -> Sequence[Any]:
        result = await conn.execute(
            _EVENT_COLUMNS.where(domain_events.c.position > after)
            .order_by(domain_events.c.position)
            .limit(self._batch_size)
        )
        return result.all()

    async def _advance(self, conn: AsyncConnection, checkpoint: int) -> int:
        """The checkpoint after this batch: up to the first gap still young enough to fill."""
        highest = await conn.scalar(sa.select(sa.func.max(audit_log.c.position)))
        if highest is None or highest <= checkpoint:
            return checkpoint
        missing = (
            await conn.execute(
                sa.text(
                    "SELECT s FROM generate_series(CAST(:low AS bigint), :high) AS s"
                    " WHERE NOT EXISTS (SELECT 1 FROM audit_log WHERE position = s)"
                    " ORDER BY s LIMIT :limit"
                ),
                {"low": checkpoint + 1, "high": highest, "limit": _GAP_SCAN_LIMIT},
            )
        ).scalars()
        now = self._clock()
        moved = highest
        for gap in missing:
            first_seen = self._gaps.setdefault(gap, now)
            if now - first_seen < self._gap_seconds:
                moved = gap - 1
                break
        self._gaps = {gap: seen for gap, seen in self._gaps.items() if gap > moved}
        return int(moved)


async def _lock_checkpoint(conn: AsyncConnection) -> int | None:
    await conn.execute(
        insert(projection_checkpoints)
        .values(name=AUDIT_CHECKPOINT, position=0)
        .on_conflict_do_nothing()
    )
    position = await conn.scalar(
        sa.select(projection_checkpoints.c.position)
        .where(projection_checkpoints.c.name == AUDIT_CHECKPOINT)
        .with_for_update(skip_locked=True)
    )
    return None if position is None else int(position)


_EVENT_COLUMNS = sa.select(
    domain_events.c.position,
    domain_events.c.id,
    domain_events.c.aggregate_type,
    domain_events.c.aggregate_id,
    domain_events.c.event_type,
    domain_events.c.event_data,
    domain_events.c.metadata,
    domain_events.c.occurred_at,
)


async def _late(conn: AsyncConnection, checkpoint: int, highest: int) -> Sequence[Any]:
    """Events between the checkpoint and the newest projected one that committed late."""
    if highest <= checkpoint:
        return []
    result = await conn.execute(
        _EVENT_COLUMNS.where(
            domain_events.c.position > checkpoint,
            domain_events.c.position < highest,
            ~sa.exists().where(audit_log.c.position == domain_events.c.position),
        ).order_by(domain_events.c.position)
    )
    return result.all()


def _uuid(value: object) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _actor_of(data: dict[str, Any], meta: dict[str, Any]) -> uuid.UUID | None:
    """Who acted: the request's user, else the user an event names as its author."""
    for value in (
        meta.get("actor_id"),
        data.get("user_id") if "command" in data else None,
        data.get("author_id"),
        data.get("requested_by"),
    ):
        if (actor := _uuid(value)) is not None:
            return actor
    return None


def _short(value: object) -> str | None:
    return str(value)[:64] if value else None


async def _names(conn: AsyncConnection, table: str, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Usernames or server names of one batch, in one query."""
    if not ids:
        return {}
    column = "username" if table == "users" else "name"
    result = await conn.execute(
        sa.text(f"SELECT id, {column} FROM {table} WHERE id = ANY(:ids)"),  # noqa: S608
        {"ids": list(ids)},
    )
    return {row[0]: row[1] for row in result}


async def _audit_rows(conn: AsyncConnection, events: Sequence[Any]) -> list[dict[str, Any]]:
    actors = {row.position: _actor_of(row.event_data, row.metadata) for row in events}
    servers = {
        row.position: server_of(row.aggregate_type, row.aggregate_id, row.event_data)
        for row in events
    }
    usernames = await _names(conn, "users", {a for a in actors.values() if a})
    server_names = await _names(conn, "servers", {s for s in servers.values() if s})
    for row in events:
        if row.event_type == "ServerCreated" and isinstance(row.event_data.get("name"), str):
            server_names.setdefault(row.aggregate_id, row.event_data["name"])
    values = []
    for row in events:
        actor, server = actors[row.position], servers[row.position]
        username = usernames.get(actor) if actor else None
        if row.event_type == "UserRegistered" and actor is None:
            username = str(row.event_data.get("username") or "")[:50] or None
        context = SummaryContext(
            actor=username, server=server_names.get(server) if server else None
        )
        values.append(
            {
                "position": row.position,
                "event_id": row.id,
                "occurred_at": row.occurred_at,
                "actor_id": actor,
                "actor_username": username,
                "action": row.event_type,
                "resource_type": row.aggregate_type,
                "resource_id": row.aggregate_id,
                "server_id": server,
                "client_addr": _short(row.metadata.get("client_addr")),
                "request_id": _short(row.metadata.get("request_id")),
                "summary": summarize(row.event_type, row.event_data, context),
                "details": row.event_data,
            }
        )
    return values


async def rebuild(engine: AsyncEngine) -> None:
    """Empty the audit log and set its checkpoint to 0: the projector replays every event."""
    async with engine.begin() as conn:
        await _lock_checkpoint(conn)
        await conn.execute(
            sa.select(projection_checkpoints.c.position)
            .where(projection_checkpoints.c.name == AUDIT_CHECKPOINT)
            .with_for_update()
        )
        await conn.execute(sa.text("TRUNCATE audit_log"))
        await conn.execute(
            projection_checkpoints.update()
            .where(projection_checkpoints.c.name == AUDIT_CHECKPOINT)
            .values(position=0, updated_at=sa.func.now())
        )
