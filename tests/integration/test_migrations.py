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
