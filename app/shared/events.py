"""The event store: JSON codec for events, and appending them in the writer's transaction."""

from __future__ import annotations

import dataclasses
import enum
import types
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Union, get_args, get_origin, get_type_hints

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from app.shared.bus import note_written
from app.shared.context import event_metadata
from app.shared.db import EVENTS_CHANNEL, domain_events
from app.shared.domain import DomainEvent


def _encode(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _encode(item) for key, item in value.items()}
    return value


def _decode(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        inner = [arg for arg in get_args(hint) if arg is not type(None)]
        return _decode(inner[0], value) if len(inner) == 1 else value
    if origin in (list, tuple):
        (item_hint, *_) = get_args(hint) or (Any,)
        items = [_decode(item_hint, item) for item in value]
        return tuple(items) if origin is tuple else items
    if hint is uuid.UUID:
        return uuid.UUID(value)
    if hint is datetime:
        return datetime.fromisoformat(value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    return value


class EventCodec:
    """Turns events into `event_data` JSON and back, by the event classes it knows."""

    def __init__(self, event_classes: Iterable[type[DomainEvent]]) -> None:
        self._classes = {cls.event_type(): cls for cls in event_classes}

    def knows(self, event_type: str) -> bool:
        return event_type in self._classes

    def encode(self, event: DomainEvent) -> dict[str, Any]:
        return {
            field.name: _encode(getattr(event, field.name))
            for field in dataclasses.fields(event)
            if field.name != "occurred_at"
        }

    def decode(self, event_type: str, data: dict[str, Any], occurred_at: datetime) -> DomainEvent:
        cls = self._classes[event_type]
        hints = get_type_hints(cls)
        kwargs = {
            field.name: _decode(hints[field.name], data.get(field.name))
            for field in dataclasses.fields(cls)
            if field.name != "occurred_at" and field.name in data
        }
        return cls(occurred_at=occurred_at, **kwargs)


async def append_events(
    conn: AsyncConnection, codec: EventCodec, events: Sequence[DomainEvent]
) -> None:
    """Insert events with per-aggregate versions; relays are woken when the transaction commits."""
    if not events:
        return
    aggregate_ids = {event.aggregate_id for event in events}
    for aggregate_id in sorted(aggregate_ids):
        await conn.execute(
            sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(str(aggregate_id), 0)))
        )
    rows = await conn.execute(
        sa.select(domain_events.c.aggregate_id, sa.func.max(domain_events.c.event_version))
        .where(domain_events.c.aggregate_id.in_(aggregate_ids))
        .group_by(domain_events.c.aggregate_id)
    )
    versions: dict[uuid.UUID, int] = {row[0]: row[1] for row in rows}
    meta = event_metadata()
    values = []
    for event in events:
        version = versions.get(event.aggregate_id, 0) + 1
        versions[event.aggregate_id] = version
        values.append(
            {
                "id": uuid.uuid4(),
                "aggregate_type": event.aggregate_type,
                "aggregate_id": event.aggregate_id,
                "event_type": event.event_type(),
                "event_data": codec.encode(event),
                "event_version": version,
                "metadata": meta,
                "occurred_at": event.occurred_at,
            }
        )
    positions = await conn.execute(
        domain_events.insert().returning(domain_events.c.position, sort_by_parameter_order=True),
        values,
    )
    note_written([(row[0], type(event)) for row, event in zip(positions, events, strict=True)])
    await conn.execute(sa.select(sa.func.pg_notify(EVENTS_CHANNEL, "")))
