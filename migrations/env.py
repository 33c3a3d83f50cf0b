"""Alembic environment: async engine, one linear history for every context."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.backups.infrastructure import tables as _backups_tables  # noqa: F401
from app.files.infrastructure import tables as _files_tables  # noqa: F401
from app.groups.infrastructure import tables as _groups_tables  # noqa: F401 - registers tables
from app.monitoring.infrastructure import tables as _monitoring_tables  # noqa: F401
from app.servers.infrastructure import tables as _servers_tables  # noqa: F401 - registers tables
from app.settings import Settings
from app.shared.db import metadata
from app.users.infrastructure import tables as _users_tables  # noqa: F401

config = context.config
target_metadata = metadata


def _database_url() -> str:
    url = config.attributes.get("database_url") or Settings().database_url
    if not url:
        raise RuntimeError("set MCDASH_DATABASE_URL to run migrations")
    return str(url)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_async_engine(_database_url(), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
