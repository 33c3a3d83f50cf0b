"""Projections: read models kept current from the event store, each with a checkpoint of its own.

A `Projection` names the event types it follows and applies a batch of them inside the
transaction that moves its checkpoint; `Projector` tails the event store for one projection,
`Projections` runs them all on one NOTIFY listener, and `ProjectionBarrier` lets a command wait
until the projections of what it wrote have applied it (read-your-writes).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import structlog
from prometheus_client import Counter, Histogram
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.shared.db import domain_events, projection_checkpoints
from app.shared.domain import DomainEvent
from app.shared.relay import drain_on_notify

log = structlog.get_logger(__name__)

PROJECTED = Counter(
    "mcdash_projection_events_total", "Events applied by a projection", ["projection"]
)
DRAIN_SECONDS = Histogram(
    "mcdash_projection_drain_seconds", "Time of one projection batch", ["projection"]
)
_GAP_SCAN_LIMIT = 1000


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


class Projector:
    """Tails the event store for one projection; safe with any number of API replicas.

    Each drain is one transaction that holds the projection's checkpoint row (FOR UPDATE SKIP
    LOCKED: a replica that finds it taken leaves the work to the one holding it), applies the
    next events and moves the checkpoint, so a crash redoes a batch at most.

    Positions come from an identity, handed out when a row is inserted, not when its
    transaction commits: position 41 may become visible after 42. So the checkpoint row also
    keeps `applied`, the positions above the checkpoint already applied; a drain takes the
    events above the checkpoint that are not in it, and the checkpoint moves over a contiguous
    run of applied positions. A gap blocks it until filled or until this process has seen it
    open for `gap_seconds` (a rolled-back transaction leaves a gap for good; no appending
    transaction stays open that long). The read model never waits for the checkpoint, only
    the checkpoint waits; and a command waiting for its events looks at both.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        projection: Projection,
        *,
        batch_size: int = 500,
        gap_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self.projection = projection
        self._batch_size = batch_size
        self._gap_seconds = gap_seconds
        self._clock = clock
        self._gaps: dict[int, float] = {}

    @property
    def name(self) -> str:
        return self.projection.name

    async def drain(self) -> int:
        """Apply one batch; returns how many events were read (0 when another replica works)."""
        name = self.projection.name
        with DRAIN_SECONDS.labels(name).time():
            async with self._engine.begin() as conn:
                state = await lock_checkpoint(conn, name)
                if state is None:
                    return 0
                checkpoint, applied = state
                rows = await self._next(conn, checkpoint, applied)
                followed = [row for row in rows if self.projection.follows(row.event_type)]
                if followed:
                    await self.projection.apply(conn, followed)
                    PROJECTED.labels(name).inc(len(followed))
                done = applied | {row.position for row in rows}
                moved = await self._advance(conn, checkpoint, done)
                kept = sorted(p for p in done if p > moved)
                if moved != checkpoint or kept != sorted(applied):
                    await conn.execute(
                        projection_checkpoints.update()
                        .where(projection_checkpoints.c.name == name)
                        .values(position=moved, applied=kept, updated_at=sa.func.now())
                    )
        return len(rows)

    async def _next(
        self, conn: AsyncConnection, checkpoint: int, applied: set[int]
    ) -> list[ProjectedEvent]:
        events = domain_events.c
        followed = list(self.projection.events)
        # Events it does not follow only count as seen: their payload is not read.
        wanted = sa.true() if not followed else events.event_type.in_(followed)
        query = (
            sa.select(
                events.position,
                events.id,
                events.aggregate_type,
                events.aggregate_id,
                events.event_type,
                sa.case((wanted, events.event_data), else_=sa.null()).label("data"),
                sa.case((wanted, events.metadata), else_=sa.null()).label("meta"),
                events.occurred_at,
            )
            .where(events.position > checkpoint)
            .order_by(events.position)
            .limit(self._batch_size)
        )
        if applied:
            query = query.where(events.position.not_in(sorted(applied)))
        return [
            ProjectedEvent(
                position=row.position,
                id=row.id,
                aggregate_type=row.aggregate_type,
                aggregate_id=row.aggregate_id,
                event_type=row.event_type,
                data=row.data or {},
                metadata=row.meta or {},
                occurred_at=row.occurred_at,
            )
            for row in await conn.execute(query)
        ]

    async def _advance(self, conn: AsyncConnection, checkpoint: int, done: set[int]) -> int:
        """The checkpoint after this batch: up to the first gap still young enough to fill."""
        if not done:
            return checkpoint
        highest = max(done)
        missing = (
            await conn.execute(
                sa.text(
                    "SELECT s FROM generate_series(CAST(:low AS bigint), :high) AS s"
                    " WHERE s <> ALL(CAST(:done AS bigint[])) ORDER BY s LIMIT :limit"
                ),
                {"low": checkpoint + 1, "high": highest, "done": sorted(done), "limit": 1000},
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


async def lock_checkpoint(conn: AsyncConnection, name: str) -> tuple[int, set[int]] | None:
    """The checkpoint and applied positions of `name`, locked; None if another holds them."""
    await conn.execute(
        insert(projection_checkpoints).values(name=name, position=0).on_conflict_do_nothing()
    )
    row = (
        await conn.execute(
            sa.select(projection_checkpoints.c.position, projection_checkpoints.c.applied)
            .where(projection_checkpoints.c.name == name)
            .with_for_update(skip_locked=True)
        )
    ).first()
    return None if row is None else (int(row.position), set(row.applied or ()))


class Projections:
    """Every projection of a process, drained on one NOTIFY listener, and rebuilt by name."""

    def __init__(
        self,
        engine: AsyncEngine,
        projections: Sequence[Projection],
        *,
        batch_size: int = 500,
        poll_seconds: float = 1.0,
    ) -> None:
        names = [p.name for p in projections]
        if len(set(names)) != len(names):
            raise ValueError(f"projection names repeat: {names}")
        self._engine = engine
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self.projectors: Mapping[str, Projector] = {
            p.name: Projector(engine, p, batch_size=batch_size) for p in projections
        }
        self._wakeup = asyncio.Event()
        self._drained = asyncio.Event()

    @property
    def names(self) -> list[str]:
        return sorted(self.projectors)

    def wake(self) -> None:
        self._wakeup.set()

    async def drain(self) -> int:
        """One batch of each projection; returns the most events one of them read."""
        taken = 0
        for projector in self.projectors.values():
            try:
                taken = max(taken, await projector.drain())
            except Exception:
                log.exception("projection_failed", projection=projector.name)
        self._drained.set()
        self._drained = asyncio.Event()
        return taken

    def next_round(self) -> asyncio.Event:
        """Set once this process's next round of drains (one per projection) has committed."""
        return self._drained

    async def run(self) -> None:
        await drain_on_notify(
            self._engine,
            self.drain,
            self._wakeup,
            batch_size=self._batch_size,
            poll_seconds=self._poll_seconds,
            failure="projections_drain_failed",
        )

    async def rebuild(self, name: str) -> None:
        """Empty the read model and set its checkpoint to 0: the projector replays every event.
        Waits for a drain that holds the checkpoint, so the two never interleave."""
        projection = self.projectors[name].projection
        async with self._engine.begin() as conn:
            await lock_checkpoint(conn, name)
            await conn.execute(
                sa.select(projection_checkpoints.c.position)
                .where(projection_checkpoints.c.name == name)
                .with_for_update()
            )
            await projection.reset(conn)
            await conn.execute(
                projection_checkpoints.update()
                .where(projection_checkpoints.c.name == name)
                .values(position=0, applied=[], updated_at=sa.func.now())
            )


class ProjectionBarrier:
    """Read-your-writes for the bus: waits until the projections that follow the events a
    command wrote have applied them.

    Whichever replica projects, an event is applied once its position is at or below the
    projection's checkpoint or among its `applied` positions. This process's projectors say
    when they have drained, so the check usually runs once; work done by another replica is
    checked every `_POLL` seconds. After `within` seconds the command returns anyway, and the
    read may lag.
    """

    def __init__(self, engine: AsyncEngine, projections: Projections, *, within: float = 5.0):
        self._engine = engine
        self._projections = projections
        self._within = within

    async def wait(self, written: Sequence[tuple[int, type[DomainEvent]]]) -> None:
        wanted: dict[str, list[int]] = {}
        for name, projector in self._projections.projectors.items():
            if not projector.projection.awaited:
                continue
            follows = projector.projection.follows
            positions = [p for p, kind in written if follows(kind.event_type())]
            if positions:
                wanted[name] = positions
        if not wanted:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._within
        while True:
            # Taken before the check: a round that commits during it is not waited for again.
            next_round = self._projections.next_round()
            wanted = await self._pending(wanted)
            if not wanted:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.warning("projection_wait_timed_out", projections=sorted(wanted))
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, _POLL)):
                    await next_round.wait()

    async def _pending(self, wanted: dict[str, list[int]]) -> dict[str, list[int]]:
        checkpoints = projection_checkpoints.c
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                sa.select(checkpoints.name, checkpoints.position, checkpoints.applied).where(
                    checkpoints.name.in_(list(wanted))
                )
            )
            state = {row.name: (row.position, set(row.applied or ())) for row in rows}
        pending: dict[str, list[int]] = {}
        for name, positions in wanted.items():
            position, applied = state.get(name, (0, set()))
            left = [p for p in positions if p > position and p not in applied]
            if left:
                pending[name] = left
        return pending


_POLL = 0.05
