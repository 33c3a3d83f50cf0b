"""What a projection is: the events it follows and how it applies them to its read model,
and `keyed`, the read model of one row per source row (app/shared/projections.py runs them)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from app.shared.db import driver
from app.shared.domain import DomainEvent

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectedEvent:
    """An event as a projection reads it from the store."""

    position: int
    id: uuid.UUID
    aggregate_type: str
    aggregate_id: uuid.UUID
    event_type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    occurred_at: datetime

    def uuid_of(self, field: str) -> uuid.UUID | None:
        """A UUID field of the payload; None if it is missing or malformed (a projection skips
        what it cannot read rather than stopping on it)."""
        try:
            return uuid.UUID(str(self.data[field]))
        except (KeyError, ValueError):
            log.warning("projected_event_field_unreadable", position=self.position, field=field)
            return None


Apply = Callable[[AsyncConnection, Sequence[ProjectedEvent]], Awaitable[None]]
Reset = Callable[[AsyncConnection], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Projection:
    """`apply` gets the batch's events of the `events` types (names as stored), in order of
    position, and must be idempotent: a crash or a second replica may apply an event twice.
    `reset` empties the read model for a rebuild; `events` empty means every type. A command
    waits for the projections that follow its events unless `awaited` is off (a log that may
    lag a moment behind the command)."""

    name: str
    events: frozenset[str]
    apply: Apply
    reset: Reset
    awaited: bool = True

    def follows(self, event_type: str) -> bool:
        return not self.events or event_type in self.events


def event_names(*types: Iterable[type[DomainEvent]]) -> frozenset[str]:
    return frozenset(kind.event_type() for group in types for kind in group)


KeyOf = Callable[[ProjectedEvent], "uuid.UUID | None"]


def keyed(
    name: str,
    *,
    events: frozenset[str],
    table: str,
    key: str,
    source: str,
    upsert: str,
    key_of: KeyOf,
    also: Apply | None = None,
) -> Projection:
    """A read model of one row per row of `source` (by its `id`, `table`'s `key`): a batch
    rewrites the rows of the keys its events name (`key_of`; None names none) with `upsert`, SQL
    taking them as `$1` (an array), and deletes those whose source row is gone, in one statement. So
    applying an event twice or out of order changes nothing, and a command costs the same
    whatever the size of the table. `also` runs after, on the whole batch."""
    delete = (
        f"DELETE FROM {table} t WHERE t.{key} = ANY($1)"  # noqa: S608 - names are constants
        f" AND NOT EXISTS (SELECT 1 FROM {source} s WHERE s.id = t.{key})"
    )
    statement = f"WITH gone AS ({delete}) {upsert}"

    async def apply(conn: AsyncConnection, batch: Sequence[ProjectedEvent]) -> None:
        ids = sorted({k for k in map(key_of, batch) if k is not None})
        if ids:
            await (await driver(conn)).execute(statement, ids)
        if also is not None:
            await also(conn, batch)

    async def reset(conn: AsyncConnection) -> None:
        await conn.execute(sa.text(f"TRUNCATE {table}"))

    return Projection(name=name, events=events, apply=apply, reset=reset)
