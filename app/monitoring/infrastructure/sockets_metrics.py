"""What the system snapshot reads from PostgreSQL: two aggregate queries, whatever the size."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from app.monitoring.application.sockets_metrics import SystemCounts
from app.shared.db import domain_events

# The servers context's read model (migration 0002); only its status is read.
_server_list = sa.table("server_list", sa.column("status", sa.String))


class PgSystemCounts:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def counts(self) -> SystemCounts:
        e = domain_events.c
        by_state = sa.select(_server_list.c.status, sa.func.count()).group_by(_server_list.c.status)
        relay = sa.select(
            sa.func.count(),
            sa.func.extract("epoch", sa.func.now() - sa.func.min(e.occurred_at)),
        ).where(e.processed_at.is_(None), e.dead_lettered_at.is_(None))
        async with self._engine.connect() as conn:
            states = {str(status): int(count) for status, count in await conn.execute(by_state)}
            pending, oldest = (await conn.execute(relay)).one()
        return SystemCounts(
            servers_by_state=states,
            unprocessed_events=int(pending),
            oldest_unprocessed_seconds=float(oldest) if oldest is not None else None,
        )
