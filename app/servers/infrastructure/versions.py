"""A server's version changes, read from its events in the event store."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from app.servers.domain.versions import ServerVersionChanged, ServerVersionRolledBack
from app.shared.db import domain_events
from app.shared.events import EventCodec

_CODEC = EventCodec([ServerVersionChanged, ServerVersionRolledBack])


class EventStoreVersionHistory:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def last_change(self, server_id: uuid.UUID) -> ServerVersionChanged | None:
        query = (
            sa.select(
                domain_events.c.event_type, domain_events.c.event_data, domain_events.c.occurred_at
            )
            .where(
                domain_events.c.aggregate_id == server_id,
                domain_events.c.event_type.in_(
                    [ServerVersionChanged.event_type(), ServerVersionRolledBack.event_type()]
                ),
            )
            .order_by(domain_events.c.event_version.desc())
            .limit(1)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        event = _CODEC.decode(row.event_type, row.event_data, row.occurred_at)
        return event if isinstance(event, ServerVersionChanged) else None
