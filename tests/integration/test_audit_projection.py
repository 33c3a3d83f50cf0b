"""A projector (here the audit log's) on a real database: events stored before it ran, a position
committed after a higher one, rolled-back gaps, two replicas at once, a stop and a rebuild."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import pytest

from app.monitoring.infrastructure.audit_projection import AUDIT
from app.shared.db import create_engine
from app.shared.projections import Projections
from tests.services import asyncpg_kwargs

INSERT = (
    "INSERT INTO domain_events (id, aggregate_type, aggregate_id, event_type, event_data,"
    " event_version, metadata, occurred_at) VALUES ($1, 'server', $2, $3, $4, $5, $6, now())"
    " RETURNING position"
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def append(conn: asyncpg.Connection, event_type: str = "ServerStarted", **data) -> int:
    meta = {"actor_id": None, "client_addr": "198.51.100.9", "request_id": "r-1"}
    return int(
        await conn.fetchval(
            INSERT,
            uuid.uuid4(),
            uuid.uuid4(),
            event_type,
            json.dumps(data),
            1,
            json.dumps(meta),
        )
    )


def AuditProjector(engine, **options) -> Projections:  # noqa: N802 - reads as a class
    return Projections(engine, [AUDIT], **options)


@pytest.fixture
async def engine(settings, clean):
    engine = create_engine(settings.require_database_url())
    yield engine
    await engine.dispose()


async def positions(db) -> list[int]:
    return [row[0] for row in await db.fetch("SELECT position FROM audit_log ORDER BY position")]


async def checkpoint(db) -> int:
    return int(await db.fetchval("SELECT position FROM projection_checkpoints WHERE name='audit'"))


async def applied(db) -> list[int]:
    return list(await db.fetchval("SELECT applied FROM projection_checkpoints WHERE name='audit'"))


async def test_events_stored_before_are_projected_from_position_zero(db, engine):
    stored = [await append(db, pid=n) for n in range(7)]
    projector = AuditProjector(engine, batch_size=3)
    while await projector.drain():
        pass
    assert await positions(db) == stored
    assert await checkpoint(db) == stored[-1]
    row = await db.fetchrow("SELECT * FROM audit_log WHERE position = $1", stored[0])
    assert row["client_addr"] == "198.51.100.9"
    assert row["summary"].endswith("is running")


async def test_a_late_commit_is_not_skipped_and_the_checkpoint_waits_for_it(
    db, engine, database_url
):
    clock = Clock()
    projector = AuditProjector(engine, gap_seconds=10, clock=clock)
    first = await append(db)
    late = await asyncpg.connect(**asyncpg_kwargs(database_url))
    try:
        transaction = late.transaction()
        await transaction.start()
        held = await append(late, "ServerStopped")
        after = await append(db)
        await projector.drain()
        assert await positions(db) == [first, after]
        assert await checkpoint(db) == first
        assert await applied(db) == [after], "what was applied above the gap is kept"
        await projector.drain()
        assert await positions(db) == [first, after], "and not applied twice"
        await transaction.commit()
    finally:
        await late.close()
    await projector.drain()
    assert await positions(db) == [first, held, after]
    assert await checkpoint(db) == after
    assert await applied(db) == []


async def test_a_rolled_back_gap_holds_the_checkpoint_only_for_a_while(db, engine):
    clock = Clock()
    projector = AuditProjector(engine, gap_seconds=10, clock=clock)
    last = await append(db)
    rolled_back = db.transaction()
    await rolled_back.start()
    await append(db)
    await rolled_back.rollback()
    tail = await append(db)
    await projector.drain()
    assert await positions(db) == [last, tail]
    assert await checkpoint(db) == last
    clock.now = 11
    await projector.drain()
    assert await checkpoint(db) == tail


async def test_two_replicas_and_a_restart_neither_miss_nor_double(db, engine, settings):
    stored = [await append(db, pid=n) for n in range(60)]
    other = create_engine(settings.require_database_url())
    try:
        one, two = AuditProjector(engine, batch_size=7), AuditProjector(other, batch_size=5)
        reading = asyncio.Lock()  # the two share the test's one asyncpg connection

        async def until_caught_up(projector: AuditProjector) -> None:
            for _ in range(100):
                await projector.drain()
                async with reading:
                    mark = await checkpoint(db)
                if mark == stored[-1]:
                    return
                await asyncio.sleep(0.01)

        await asyncio.gather(until_caught_up(one), until_caught_up(two))
        assert await positions(db) == stored
        # Stopped, then more events, then a fresh process: it catches up from its checkpoint.
        more = [await append(db) for _ in range(5)]
        restarted = AuditProjector(other)
        await restarted.drain()
        assert await positions(db) == [*stored, *more]
    finally:
        await other.dispose()


async def test_rebuild_replays_the_same_rows(db, engine):
    stored = [await append(db, pid=n) for n in range(5)]
    projector = AuditProjector(engine)
    await projector.drain()
    before = [dict(row) for row in await db.fetch("SELECT * FROM audit_log ORDER BY position")]
    await Projections(engine, [AUDIT]).rebuild("audit")
    assert await positions(db) == []
    assert await checkpoint(db) == 0
    await projector.drain()
    after = [dict(row) for row in await db.fetch("SELECT * FROM audit_log ORDER BY position")]
    assert after == before
    assert [row["position"] for row in after] == stored
