"""Statements run straight through asyncpg (app/shared/db.py `driver`) run inside the unit of
work's transaction, even when one of them is the transaction's first."""

from __future__ import annotations

import asyncpg
import pytest

from app.shared.db import create_engine, driver
from tests.services import asyncpg_kwargs

LOCK = 4242


@pytest.fixture
async def engine(settings, clean):
    engine = create_engine(settings.require_database_url())
    yield engine
    await engine.dispose()


async def lock_free(database_url: str) -> bool:
    other = await asyncpg.connect(**asyncpg_kwargs(database_url))  # type: ignore[arg-type]
    try:
        taken = bool(await other.fetchval("SELECT pg_try_advisory_xact_lock($1)", LOCK))
    finally:
        await other.close()
    return taken


async def test_a_raw_statement_first_in_a_transaction_runs_inside_it(engine, database_url):
    async with engine.connect() as conn:
        await conn.begin()
        db = await driver(conn)
        assert db.is_in_transaction()
        await db.execute("SELECT pg_advisory_xact_lock($1)", LOCK)
        await db.execute("CREATE TABLE raw_probe (n int)")
        await db.execute("INSERT INTO raw_probe VALUES (1)")

        assert not await lock_free(database_url), "the lock is held until the transaction ends"
        await conn.rollback()

    assert await lock_free(database_url)
    async with engine.connect() as conn:
        exists = await conn.exec_driver_sql("SELECT to_regclass('raw_probe') IS NOT NULL")
        assert exists.scalar() is False, "rolled back with the transaction"


async def test_outside_a_transaction_nothing_is_begun(engine):
    async with engine.connect() as conn:
        db = await driver(conn)
        assert not db.is_in_transaction()
