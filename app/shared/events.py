"""The event store: JSON codec for events, and appending them in the writer's transaction."""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Union, get_args, get_origin, get_type_hints

from sqlalchemy.ext.asyncio import AsyncConnection

from app.shared.bus import note_written
from app.shared.context import event_metadata
from app.shared.db import EVENTS_CHANNEL, driver, lock_until_commit
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


_VERSIONS = (
    "SELECT aggregate_id, max(event_version) FROM domain_events"
    " WHERE aggregate_id = ANY($1::uuid[]) GROUP BY aggregate_id"
)
# One statement stores the events and announces them (NOTIFY is delivered at commit).
_APPEND = """
WITH stored AS (
    INSERT INTO domain_events (id, aggregate_type, aggregate_id, event_type, event_data,
                               event_version, metadata, occurred_at)
    SELECT e.id, e.aggregate_type, e.aggregate_id, e.event_type, e.event_data::jsonb,
           e.event_version, $7::jsonb, e.occurred_at
    FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::int[],
                $8::timestamptz[])
         AS e(id, aggregate_type, aggregate_id, event_type, event_data, event_version,
              occurred_at)
    RETURNING id, position
)
SELECT stored.id, stored.position FROM stored CROSS JOIN (SELECT pg_notify($9, '')) AS told
"""


async def append_events(
    conn: AsyncConnection, codec: EventCodec, events: Sequence[DomainEvent]
) -> None:
    """Insert events with per-aggregate versions; relays are woken when the transaction commits.
    Writers of one aggregate take turns on its advisory lock, so versions never collide."""
    if not events:
        return
    db = await driver(conn)
    aggregate_ids = sorted({event.aggregate_id for event in events})
    for aggregate_id in aggregate_ids:
        await lock_until_commit(conn, str(aggregate_id))
    versions: dict[uuid.UUID, int] = dict(await db.fetch(_VERSIONS, aggregate_ids))
    numbers = []
    for event in events:
        versions[event.aggregate_id] = versions.get(event.aggregate_id, 0) + 1
        numbers.append(versions[event.aggregate_id])
    ids = [uuid.uuid4() for _ in events]
    stored = dict(
        await db.fetch(
            _APPEND,
            ids,
            [event.aggregate_type for event in events],
            [event.aggregate_id for event in events],
            [event.event_type() for event in events],
            [json.dumps(codec.encode(event)) for event in events],
            numbers,
            json.dumps(event_metadata()),
            [event.occurred_at for event in events],
            EVENTS_CHANNEL,
        )
    )
    note_written([(stored[id_], type(event)) for id_, event in zip(ids, events, strict=True)])
