"""Every migration applies and reverts cleanly, and head matches the table definitions."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine

from app.shared.db import metadata
from app.shared.migrations import alembic_config, downgrade, upgrade
from tests.services import create_database, drop_database


@pytest.fixture
def scratch_database(services):
    name = f"mcdash_migrations_{uuid.uuid4().hex[:8]}"
    url = create_database(services.server_url, name)
    yield url
    drop_database(services.server_url, name)


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.exec_driver_sql(
                "SELECT tablename FROM pg_tables WHERE schemaname='public'"
            )
            return {row[0] for row in rows}
    finally:
        await engine.dispose()


async def _diff(url: str) -> list[object]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
    finally:
        await engine.dispose()


def test_walk_every_revision_up_and_down(scratch_database):
    script = ScriptDirectory.from_config(alembic_config())
    revisions = list(reversed(list(script.walk_revisions())))
    assert len(script.get_heads()) == 1, "the history must stay linear"
    for revision in revisions:
        upgrade(scratch_database, revision.revision)
        downgrade(scratch_database, revision.down_revision or "base")
        upgrade(scratch_database, revision.revision)
    assert asyncio.run(_tables(scratch_database)) >= {t.name for t in metadata.sorted_tables}
    assert asyncio.run(_diff(scratch_database)) == []
    downgrade(scratch_database, "base")
    assert asyncio.run(_tables(scratch_database)) == {"alembic_version"}


async def _schedule_limits(url: str, keep_last: int, keep_days: int) -> tuple[int | None, ...]:
    """Store a schedule with the given limits as 0006 allowed, then read them back."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(
                "INSERT INTO users (id, username, email, password_hash) "
                "VALUES ('00000000-0000-0000-0000-000000000001', 'u', 'u@example.com', 'x')"
            )
            await conn.exec_driver_sql(
                "INSERT INTO servers (id, name, owner_id, node, port, configuration) VALUES "
                "('00000000-0000-0000-0000-000000000002', 's', "
                "'00000000-0000-0000-0000-000000000001', 'local', 25565, '{}')"
            )
            await conn.exec_driver_sql(
                "INSERT INTO backup_schedules (id, server_id, cron_expression, keep_last, "
                "keep_days) VALUES ('00000000-0000-0000-0000-000000000003', "
                f"'00000000-0000-0000-0000-000000000002', '0 3 * * *', {keep_last}, {keep_days})"
            )
        return await _limits(url)
    finally:
        await engine.dispose()


async def _limits(url: str) -> tuple[int | None, ...]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.exec_driver_sql("SELECT keep_last, keep_days FROM backup_schedules")
            ).one()
            return tuple(row)
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("stored", "migrated"),
    [
        pytest.param((2**31 - 1, 1_000_000), (None, None), id="keep-days-1000000-becomes-no-limit"),
        pytest.param((1000, 3650), (1000, 3650), id="limits-within-bounds-stay"),
        pytest.param((1001, 3651), (None, None), id="keep-last-1001-keep-days-3651"),
    ],
)
def test_0007_turns_out_of_bound_retention_into_no_limit(scratch_database, stored, migrated):
    upgrade(scratch_database, "0006")
    assert asyncio.run(_schedule_limits(scratch_database, *stored)) == stored
    upgrade(scratch_database, "0007")
    assert asyncio.run(_limits(scratch_database)) == migrated
