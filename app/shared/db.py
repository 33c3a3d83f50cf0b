"""Database metadata shared by all contexts, the event store table, and the engine factory."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

domain_events = sa.Table(
    "domain_events",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("position", sa.BigInteger, sa.Identity(always=True), nullable=False, unique=True),
    sa.Column("aggregate_type", sa.String(50), nullable=False),
    sa.Column("aggregate_id", UUID(as_uuid=True), nullable=False),
    sa.Column("event_type", sa.String(100), nullable=False),
    sa.Column("event_data", JSONB, nullable=False),
    sa.Column("event_version", sa.Integer, nullable=False),
    sa.Column("metadata", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("processed_at", sa.DateTime(timezone=True)),
    # Failed dispatches: how many, the last error and when; a dead letter is skipped for good.
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("last_error", sa.Text),
    sa.Column("last_failed_at", sa.DateTime(timezone=True)),
    sa.Column("dead_lettered_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("aggregate_id", "event_version"),
    sa.Index("ix_domain_events_aggregate", "aggregate_type", "aggregate_id"),
    sa.Index(
        "ix_domain_events_unprocessed",
        "position",
        postgresql_where=sa.text("processed_at IS NULL AND dead_lettered_at IS NULL"),
    ),
)

EVENTS_CHANNEL = "mcdash_domain_events"

# Where each projection stands: every position up to `position` is applied, and so are the
# ones in `applied` above it (see app/shared/projections.py).
projection_checkpoints = sa.Table(
    "projection_checkpoints",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column(
        "applied",
        sa.ARRAY(sa.BigInteger),
        nullable=False,
        server_default=sa.text("'{}'::bigint[]"),
    ),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Nothing to undo: see ReadPool."""


async def _json_codecs(connection: asyncpg.Connection) -> None:
    """json and jsonb read as Python values, as through SQLAlchemy."""
    for kind in ("json", "jsonb"):
        await connection.set_type_codec(
            kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


class ReadPool:
    """A plain asyncpg pool for the hottest read queries, opened on first use.

    Only single SELECTs run on it (`fetch`, `fetchval`): they set nothing, take no advisory
    lock, leave no cursor or LISTEN. So a connection goes back to the pool without asyncpg's
    reset query (`SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`), one
    round trip to PostgreSQL a request less; asyncpg still rolls back a transaction left open
    and waits out a cancelled query before the connection is reused.
    """

    def __init__(self, url: str, *, size: int = 10) -> None:
        self._dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._size = size
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def _get(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self._dsn,
                        min_size=1,
                        max_size=self._size,
                        server_settings={"application_name": "mcdash-read"},
                        reset=_keep_session,
                        init=_json_codecs,
                    )
        return self._pool

    async def open(self) -> None:
        """Connect now rather than on the first read (the API opens it as it starts)."""
        await self._get()

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        pool = await self._get()
        rows: list[asyncpg.Record] = await pool.fetch(query, *args)
        return rows

    async def fetchrow(self, query: str, *args: object) -> asyncpg.Record | None:
        pool = await self._get()
        row: asyncpg.Record | None = await pool.fetchrow(query, *args)
        return row

    async def fetchval(self, query: str, *args: object) -> object:
        pool = await self._get()
        return await pool.fetchval(query, *args)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def contains_pattern(text: str) -> str:
    """An ILIKE pattern matching `text` anywhere, with the user's % and _ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _refuse_closed(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """At checkout, a pooled connection whose socket is gone (PostgreSQL restarted, or dropped
    it) is replaced, as a pre-ping would replace it: the pool retries with another. asyncpg
    marks a connection closed as soon as the event loop sees its socket end, so this asks
    nothing of the server; SQLAlchemy's pre-ping sends BEGIN, ";" and ROLLBACK, three round
    trips a command."""
    if dbapi_connection.driver_connection.is_closed():
        raise sa.exc.DisconnectionError("the pooled connection was closed")


def _engine(
    url: str, name: str, *, pool_size: int, max_overflow: int, **options: Any
) -> AsyncEngine:
    """An engine whose connections are named `name` in pg_stat_activity, recycled after five
    minutes and checked at checkout (`_refuse_closed`); `server_settings` add to the session's
    settings, the other options go to SQLAlchemy."""
    settings = {"application_name": name, **options.pop("server_settings", {})}
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=300,
        connect_args={"server_settings": settings},
        **options,
    )
    sa.event.listen(engine.sync_engine, "checkout", _refuse_closed)
    return engine


def create_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    """The engine for units of work: transactions, on connections checked at checkout."""
    return _engine(url, "mcdash", pool_size=pool_size, max_overflow=max_overflow)


def create_projection_engine(url: str, *, pool_size: int = 5) -> AsyncEngine:
    """The engine of the projections and of commands waiting for them.

    A round commits without waiting for its WAL to reach the disk (synchronous_commit off; it
    is visible at once all the same): a crash loses at most the last rounds, their checkpoints
    with them, so they are applied again. A round that meets a connection dropped since its
    checkout fails and runs again, and a wait that meets one gives up waiting.
    """
    return _engine(
        url,
        "mcdash-projections",
        pool_size=pool_size,
        max_overflow=2 * pool_size,  # commands' waits come in bursts
        server_settings={"synchronous_commit": "off"},
    )


def create_read_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    """The engine for read models: autocommit (no BEGIN/ROLLBACK round trips), connections
    checked at checkout."""
    return _engine(
        url,
        "mcdash-read",
        pool_size=pool_size,
        max_overflow=max_overflow,
        isolation_level="AUTOCOMMIT",
    )


async def driver(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under `conn`, inside its transaction: for the statements every
    command runs. SQLAlchemy Core costs 170 µs of CPU a primary-key select and 220 µs an
    update (building the statement, its cache key, binding, the result), asyncpg 20 and 28
    (measured here), and a command runs some twenty of them. jsonb goes in as JSON text."""
    raw = await conn.get_raw_connection()
    # SQLAlchemy's asyncpg adapter sends BEGIN with the first statement it runs itself: one run
    # here first would run outside the transaction (its locks let go at once, its writes
    # committed alone). So the transaction is begun here, as the adapter would begin it.
    adapter = cast(Any, raw.dbapi_connection)
    if conn.in_transaction() and adapter._transaction is None:
        await adapter._start_transaction()
    connection: asyncpg.Connection = raw.driver_connection
    return connection


async def lock_until_commit(conn: AsyncConnection, name: str) -> None:
    """A transaction-scoped advisory lock on `name` (hashed to its key): whoever takes the same
    name waits until this transaction commits or rolls back."""
    await (await driver(conn)).execute(_LOCK_NAMED, name)


_LOCK_NAMED = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
