"""Read-your-writes on a real database: a command this process's own round served asks the
database nothing, and one whose projection another replica holds is answered by the database."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from app.servers.domain.events import ServerStarted
from app.shared.barrier import ProjectionBarrier
from app.shared.db import EVENTS_CHANNEL, create_engine
from app.shared.projections import Projections
from app.shared.readmodels import ProjectedEvent, Projection
from tests.integration.test_audit_projection import append

APPLIED: list[int] = []


async def _apply(conn: object, batch: Sequence[ProjectedEvent]) -> None:
    APPLIED.extend(event.position for event in batch)


async def _reset(conn: object) -> None:
    APPLIED.clear()


NOTED = Projection(name="noted", events=frozenset({"ServerStarted"}), apply=_apply, reset=_reset)


async def committed_event(db) -> int:
    """An event stored and announced, as a command's commit does."""
    position = await append(db)
    await db.execute("SELECT pg_notify($1, '')", EVENTS_CHANNEL)
    return position


class CountingBarrier(ProjectionBarrier):
    asked = 0

    async def _pending(self, wanted: dict[str, list[int]]) -> dict[str, list[int]]:
        self.asked += 1
        return await super()._pending(wanted)


@pytest.fixture
async def engine(settings, clean):
    engine = create_engine(settings.require_database_url())
    yield engine
    await engine.dispose()


@pytest.fixture
async def running(engine):
    projections = Projections(engine, [NOTED], poll_seconds=1.0)
    runner = asyncio.create_task(projections.run())
    while projections.committed("noted") is None:  # its first round, as in a running API
        await projections.next_round().wait()
    yield projections, CountingBarrier(engine, projections)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner


async def test_a_command_served_by_this_process_asks_the_database_nothing(db, running):
    projections, barrier = running
    position = await committed_event(db)

    await asyncio.wait_for(barrier.wait([(position, ServerStarted)]), timeout=3)

    assert position in APPLIED
    mark = projections.committed("noted")
    assert mark is not None
    assert mark.has(position)
    assert barrier.asked == 0


async def test_a_projection_another_replica_holds_is_read_from_the_database(db, running, settings):
    projections, barrier = running
    first = await committed_event(db)
    await asyncio.wait_for(barrier.wait([(first, ServerStarted)]), timeout=3)
    other = create_engine(settings.require_database_url())
    try:
        async with other.connect() as replica:
            # The other replica takes the checkpoint and holds it while it applies.
            await replica.exec_driver_sql(
                "SELECT 1 FROM projection_checkpoints WHERE name = 'noted' FOR UPDATE"
            )
            position = await committed_event(db)
            waiting = asyncio.create_task(barrier.wait([(position, ServerStarted)]))
            await asyncio.sleep(0.3)
            assert not waiting.done(), "not applied yet: the command still waits"
            assert projections.committed("noted") is None, "our round skipped the held row"
            await replica.exec_driver_sql(
                f"UPDATE projection_checkpoints SET position = {position} WHERE name = 'noted'"
            )
            await replica.commit()
            await asyncio.wait_for(waiting, timeout=1)
    finally:
        await other.dispose()

    assert barrier.asked >= 1
