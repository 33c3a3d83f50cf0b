"""Read-your-writes: a command returns once the projections that follow its events applied them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence

import sqlalchemy as sa
import structlog
from prometheus_client import Histogram
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine

from app.shared.db import projection_checkpoints
from app.shared.domain import DomainEvent
from app.shared.projections import Checkpoint, Projections

log = structlog.get_logger(__name__)

WAIT_SECONDS = Histogram(
    "mcdash_projection_wait_seconds",
    "Time a command waited for its projections to apply its events (read-your-writes)",
)
_POLL = 0.05


class ProjectionBarrier:
    """Waits until the awaited projections following the events a command wrote applied them.

    Whichever replica projects, an event is applied once its position is at or below the
    projection's checkpoint or among its `applied` positions. This process's projections say
    when a round has committed and where it left each checkpoint, so a command that one of
    them served asks the database nothing; a projection another replica holds is read from
    the database, and so is any every `_POLL` seconds. After `within` seconds the command
    returns anyway, and the read may lag.
    """

    def __init__(self, engine: AsyncEngine, projections: Projections, *, within: float = 5.0):
        self._engine = engine
        self._projections = projections
        self._within = within

    async def wait(self, written: Sequence[tuple[int, type[DomainEvent]]]) -> None:
        wanted: dict[str, list[int]] = {}
        for name, projection in self._projections.projections.items():
            if projection.awaited:
                positions = [p for p, kind in written if projection.follows(kind.event_type())]
                if positions:
                    wanted[name] = positions
        if wanted:
            with WAIT_SECONDS.time():
                await self._until_applied(wanted)

    async def _until_applied(self, wanted: dict[str, list[int]]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._within
        asked = loop.time()  # when the database was last asked
        while True:
            # Taken before the check: a round that commits during it is not waited for again.
            next_round = self._projections.next_round()
            wanted = self._known(wanted)
            if not wanted:
                return
            now = loop.time()
            # What this process's rounds do not tell: a projection another replica holds, or
            # one silent for a while (another replica may have applied it).
            if now - asked >= _POLL or any(self._projections.committed(n) is None for n in wanted):
                asked = now
                try:
                    wanted = await self._pending(wanted)
                except Exception:  # the command is committed: a read that may lag, not a 500
                    log.warning("projection_wait_failed", exc_info=True)
                    return
                if not wanted:
                    return
            remaining = deadline - now
            if remaining <= 0:
                log.warning("projection_wait_timed_out", projections=sorted(wanted))
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, _POLL)):
                    await next_round.wait()

    def _known(self, wanted: dict[str, list[int]]) -> dict[str, list[int]]:
        """What is left once this process's own committed rounds are counted."""
        ours = {name: self._projections.committed(name) for name in wanted}
        return _left(wanted, {name: mark for name, mark in ours.items() if mark is not None})

    async def _pending(self, wanted: dict[str, list[int]]) -> dict[str, list[int]]:
        """What is left by the checkpoints as the database has them."""
        checkpoints = projection_checkpoints.c
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                sa.select(checkpoints.name, checkpoints.position, checkpoints.applied).where(
                    checkpoints.name == sa.any_(sa.cast(sorted(wanted), ARRAY(sa.String)))
                )
            )
            stored = {
                row.name: Checkpoint(row.position, frozenset(row.applied or ())) for row in rows
            }
        return _left(wanted, stored)


def _left(wanted: dict[str, list[int]], marks: Mapping[str, Checkpoint]) -> dict[str, list[int]]:
    """The positions of `wanted` each projection's checkpoint does not hold (all, without one)."""
    pending: dict[str, list[int]] = {}
    for name, positions in wanted.items():
        mark = marks.get(name)
        left = positions if mark is None else [p for p in positions if not mark.has(p)]
        if left:
            pending[name] = left
    return pending
