"""Projections: read models kept current from the event store, each with a checkpoint of its own.

A `Projection` (app/shared/readmodels.py) names the event types it follows and applies a batch
of them inside the transaction that moves its checkpoint; `Projections` runs them all in rounds
on one NOTIFY listener (app/shared/barrier.py lets a command wait until they have applied what
it wrote).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import sqlalchemy as sa
import structlog
from prometheus_client import Counter, Histogram
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.shared.db import driver, projection_checkpoints
from app.shared.readmodels import ProjectedEvent, Projection
from app.shared.relay import drain_on_notify

log = structlog.get_logger(__name__)

PROJECTED = Counter(
    "mcdash_projection_events_total", "Events applied by a projection", ["projection"]
)
DRAIN_SECONDS = Histogram(
    "mcdash_projection_drain_seconds", "Time of one projection batch", ["projection"]
)


# The statements of every round, straight through asyncpg (app/shared/db.py `driver`).
_COLUMNS = (
    "SELECT position, id, aggregate_type, aggregate_id, event_type, event_data, metadata,"
    " occurred_at FROM domain_events WHERE position > $1"
)
_EVENTS = f"{_COLUMNS} ORDER BY position LIMIT $2"
_EVENTS_BUT = f"{_COLUMNS} AND position <> ALL($3::bigint[]) ORDER BY position LIMIT $2"
_LOCKED = (
    "SELECT name, position, applied FROM projection_checkpoints WHERE name = ANY($1::text[])"
    " ORDER BY name FOR UPDATE SKIP LOCKED"
)
_ADVANCE = (
    "UPDATE projection_checkpoints SET position = $2, applied = $3::bigint[], updated_at = now()"
    " WHERE name = $1"
)


class ProjectionFailed(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where a projection stands: every event at or below `position` applied, and those of
    `applied` above it."""

    position: int
    applied: frozenset[int]

    def has(self, position: int) -> bool:
        return position <= self.position or position in self.applied


@dataclass(slots=True)
class _State:
    """A projection's checkpoint row as a round locked it, and what the round learns."""

    position: int
    applied: set[int]
    stored: list[int] = field(default_factory=list)
    seen_to: int | None = None


class Projections:
    """Every projection of a process, drained in rounds, and rebuilt by name; safe with any
    number of API replicas.

    A round is one transaction: it locks the projections' checkpoint rows (FOR UPDATE SKIP
    LOCKED: a replica that finds one taken leaves it to the replica holding it), reads the
    events after them once for all the projections that stand together (one that lags, after
    a rebuild say, reads on its own), applies each projection's share and moves the
    checkpoints, so a crash redoes a batch at most. A projection whose apply fails is left out
    of the round, which runs again without it; it is retried on the next round.

    Positions come from an identity, handed out when a row is inserted, not when its
    transaction commits: position 41 may become visible after 42. So a checkpoint row also
    keeps `applied`, the positions above it already applied; a round applies the events above
    the checkpoint not in it, and the checkpoint moves over a contiguous run of applied
    positions. A gap blocks it until it is filled or until this process has seen it open for
    `gap_seconds` (a rolled-back transaction leaves a gap for good; no appending transaction
    stays open that long). A read model never waits for its checkpoint, only the checkpoint
    waits; and a command waiting for its events looks at both (ProjectionBarrier).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        projections: Sequence[Projection],
        *,
        batch_size: int = 500,
        poll_seconds: float = 1.0,
        gap_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        names = [p.name for p in projections]
        if len(set(names)) != len(names):
            raise ValueError(f"projection names repeat: {names}")
        self._engine = engine
        self.projections: Mapping[str, Projection] = {p.name: p for p in projections}
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._gap_seconds = gap_seconds
        self._clock = clock
        self._gaps: dict[str, dict[int, float]] = {name: {} for name in names}
        self._wakeup = asyncio.Event()
        self._drained = asyncio.Event()
        # Each checkpoint as this process's last round committed it; a name another replica
        # held in that round is dropped, for its checkpoint moved out of sight.
        self._committed: dict[str, Checkpoint] = {}

    @property
    def names(self) -> list[str]:
        return sorted(self.projections)

    def only(self, name: str) -> Replayable:
        """One projection's own drain (system sync replays a stuck one with it)."""
        return _Only(self, name)

    def wake(self) -> None:
        self._wakeup.set()

    def next_round(self) -> asyncio.Event:
        """Set once this process's next round has committed."""
        return self._drained

    def committed(self, name: str) -> Checkpoint | None:
        """The checkpoint of `name` as this process last committed it; None if it has not, or if
        another replica held it since (then only the database knows)."""
        return self._committed.get(name)

    async def run(self) -> None:
        await drain_on_notify(
            self._engine,
            self.drain,
            self._wakeup,
            batch_size=self._batch_size,
            poll_seconds=self._poll_seconds,
            failure="projections_drain_failed",
        )

    async def drain(self, names: Iterable[str] | None = None, *, strict: bool = False) -> int:
        """One round (of every projection, or of those named); returns the most events one
        projection read (0 when there was nothing, or another replica holds them all). A
        projection that fails is left out of the round, or with `strict` its error raised."""
        wanted = set(self.projections if names is None else names)
        # Those commands wait for go in rounds of their own, never held up by a log's.
        lanes = [
            {name for name in wanted if self.projections[name].awaited},
            {name for name in wanted if not self.projections[name].awaited},
        ]
        try:
            taken = await asyncio.gather(*(self._lane(lane, strict) for lane in lanes if lane))
            return max(taken, default=0)
        finally:
            self._drained.set()
            self._drained = asyncio.Event()

    async def _lane(self, wanted: set[str], strict: bool) -> int:
        while wanted:
            try:
                return await self._round(wanted)
            except ProjectionFailed as failed:
                if strict and failed.__cause__ is not None:
                    raise failed.__cause__ from None
                wanted.discard(failed.name)
        return 0

    async def _round(self, names: set[str]) -> int:
        async with self._engine.begin() as conn:
            states = await _lock(conn, sorted(names))
            taken = 0
            for group in _together(states, self._batch_size):
                events = await self._events(conn, group, states)
                taken = max(taken, len(events))
                for name in group:
                    await self._apply(conn, name, states[name], events)
            checkpoints = {
                name: await self._advance(conn, name, state) for name, state in states.items()
            }
        for name in names - checkpoints.keys():
            self._committed.pop(name, None)
        self._committed.update(checkpoints)
        return taken

    async def _events(
        self, conn: AsyncConnection, group: list[str], states: Mapping[str, _State]
    ) -> list[ProjectedEvent]:
        """The events after the group's lowest checkpoint, but those all of it applied."""
        low = min(states[name].position for name in group)
        everywhere = set.intersection(*(states[name].applied for name in group))
        db = await driver(conn)
        if everywhere:  # one statement text whatever the count, so it stays prepared
            rows = await db.fetch(_EVENTS_BUT, low, self._batch_size, sorted(everywhere))
        else:
            rows = await db.fetch(_EVENTS, low, self._batch_size)
        return [
            ProjectedEvent(
                position=row[0],
                id=row[1],
                aggregate_type=row[2],
                aggregate_id=row[3],
                event_type=row[4],
                data=row[5],
                metadata=row[6],
                occurred_at=row[7],
            )
            for row in rows
        ]

    async def _apply(
        self, conn: AsyncConnection, name: str, state: _State, events: list[ProjectedEvent]
    ) -> None:
        projection = self.projections[name]
        new = [e for e in events if e.position > state.position and e.position not in state.applied]
        followed = [e for e in new if projection.follows(e.event_type)]
        if followed:
            try:
                with DRAIN_SECONDS.labels(name).time():
                    await projection.apply(conn, followed)
            except Exception as exc:
                log.exception("projection_failed", projection=name)
                raise ProjectionFailed(name) from exc
            PROJECTED.labels(name).inc(len(followed))
        state.applied |= {e.position for e in new}
        # Below the last position read, every committed event was read: a position missing
        # there is a gap. Above it (a full batch), nothing is known yet.
        state.seen_to = events[-1].position if len(events) >= self._batch_size else None

    async def _advance(self, conn: AsyncConnection, name: str, state: _State) -> Checkpoint:
        """Move the checkpoint up to the first gap still young enough to fill, and store it."""
        start, kept = state.position, sorted(state.applied)
        read_to = state.seen_to if state.seen_to is not None else max(state.applied, default=start)
        highest = max(start, read_to)
        gaps = self._gaps[name]
        now, moved = self._clock(), highest
        for position in range(start + 1, highest + 1):
            if position in state.applied:
                continue
            if now - gaps.setdefault(position, now) < self._gap_seconds:
                moved = position - 1
                break
        self._gaps[name] = {p: seen for p, seen in gaps.items() if p > moved}
        kept = [p for p in kept if p > moved]
        if moved != start or kept != state.stored:
            await (await driver(conn)).execute(_ADVANCE, name, moved, kept)
        return Checkpoint(moved, frozenset(kept))

    async def rebuild(self, name: str) -> None:
        """Empty the read model and set its checkpoint to 0: the projection replays every
        event. Waits for a round that holds the checkpoint, so the two never interleave."""
        projection = self.projections[name]
        self._committed.pop(name, None)
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(projection_checkpoints).values(name=name).on_conflict_do_nothing()
            )
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


class Replayable(Protocol):
    async def drain(self) -> int:
        """Project one batch; the number of events read (0: nothing, or another replica)."""
        ...


@dataclass(frozen=True, slots=True)
class _Only:
    projections: Projections
    name: str

    async def drain(self) -> int:
        return await self.projections.drain([self.name], strict=True)


async def _lock(conn: AsyncConnection, names: list[str]) -> dict[str, _State]:
    """The checkpoint rows of `names` this round may take; missing ones are added first (a row
    another replica holds is skipped, so it looks missing too: adding it changes nothing)."""
    states = await _locked(conn, names)
    if len(states) < len(names):
        missing = [name for name in names if name not in states]
        await conn.execute(
            insert(projection_checkpoints).on_conflict_do_nothing(),
            [{"name": name} for name in missing],
        )
        states.update(await _locked(conn, missing))
    return states


async def _locked(conn: AsyncConnection, names: list[str]) -> dict[str, _State]:
    rows = await (await driver(conn)).fetch(_LOCKED, names)
    return {
        name: _State(int(position), set(applied or ()), sorted(applied or ()))
        for name, position, applied in rows
    }


def _together(states: Mapping[str, _State], batch_size: int) -> list[list[str]]:
    """Projections whose checkpoints lie within a batch of the furthest read their events
    together; each one further behind reads alone."""
    if not states:
        return []
    front = max(state.position for state in states.values())
    close = [name for name, state in states.items() if front - state.position <= batch_size]
    return [close, *([name] for name in states if name not in close)]
