"""Statements run straight through asyncpg (app/shared/db.py `driver`) run inside the unit of
work's transaction, even when one of them is the transaction's first."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from app.shared.db import create_engine, create_projection_engine, create_read_engine, driver
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


async def dropped_by_the_server(database_url: str, application_name: str) -> int:
    """Terminate every backend of `application_name`, as a PostgreSQL restart would."""
    other = await asyncpg.connect(**asyncpg_kwargs(database_url))  # type: ignore[arg-type]
    try:
        return len(
            await other.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = $1 AND pid <> pg_backend_pid()",
                application_name,
            )
        )
    finally:
        await other.close()


@pytest.mark.parametrize("engine_kind", ["units-of-work", "read", "projections"])
async def test_pooled_connections_the_server_dropped_are_replaced_at_checkout(
    settings, clean, database_url, engine_kind
):
    make, name = {
        "units-of-work": (create_engine, "mcdash"),
        "read": (create_read_engine, "mcdash-read"),
        "projections": (create_projection_engine, "mcdash-projections"),
    }[engine_kind]
    engine = make(settings.require_database_url())
    try:
        conns = [await engine.connect() for _ in range(3)]  # three pooled connections
        for conn in conns:
            await conn.exec_driver_sql("SELECT 1")
        for conn in conns:
            await conn.close()
        assert await dropped_by_the_server(database_url, name) >= 3
        await asyncio.sleep(0.2)  # the event loop sees the sockets end
        for _ in range(3):  # every pooled one is dead; each checkout gets a live one
            async with engine.connect() as conn:
                assert (await conn.exec_driver_sql("SELECT 41 + 1")).scalar() == 42
    finally:
        await engine.dispose()
