"""The event store: JSON codec for events, appending them in a transaction, and the relay."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import types
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Union, get_args, get_origin, get_type_hints

import sqlalchemy as sa
import structlog
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.shared.bus import MessageBus
from app.shared.context import event_metadata
from app.shared.db import EVENTS_CHANNEL, domain_events
from app.shared.domain import DomainEvent

log = structlog.get_logger(__name__)

EVENTS_DISPATCHED = Counter(
    "mcdash_domain_events_dispatched_total", "Domain events dispatched by the relay", ["event_type"]
)
EVENT_HANDLER_FAILURES = Counter(
    "mcdash_domain_event_failures_total", "Domain events whose handlers failed", ["event_type"]
)
DEAD_LETTERS = Counter(
    "mcdash_domain_event_dead_letters_total",
    "Domain events the relay gave up on (undecodable, or handlers failing every attempt)",
    ["event_type", "reason"],
)
_ERROR_MAX = 2000
RELAY_LAG = Gauge(
    "mcdash_event_relay_lag_seconds", "Age of the newest event dispatched by the relay"
)


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
    await conn.execute(domain_events.insert(), values)
    await conn.execute(sa.select(sa.func.pg_notify(EVENTS_CHANNEL, "")))


class EventRelay:
    """Dispatches committed, unprocessed events in order of position, then marks them processed.

    An event whose handlers fail is retried on later drains, `retry_seconds` times its attempts
    apart, while the events behind it go on; after `max_attempts`, or at once when it cannot be
    decoded, it becomes a dead letter: marked, counted, and skipped from then on.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        bus: MessageBus,
        codec: EventCodec,
        *,
        poll_seconds: float = 1.0,
        batch_size: int = 200,
        max_attempts: int = 5,
        retry_seconds: float = 5.0,
    ) -> None:
        self._engine = engine
        self._bus = bus
        self._codec = codec
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._max_attempts = max_attempts
        self._retry_seconds = retry_seconds
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self) -> None:
        """Drain forever, woken by NOTIFY from any process or by the poll interval."""
        async with self._engine.connect() as listen_conn:
            raw = await listen_conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            await driver.add_listener(EVENTS_CHANNEL, lambda *_: self.wake())
            while True:
                self._wakeup.clear()
                try:
                    while await self.drain() == self._batch_size:
                        pass
                except Exception:
                    log.exception("event_relay_drain_failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout=self._poll_seconds)

    async def drain(self) -> int:
        """Dispatch one batch; returns how many events were taken."""
        events = domain_events.c
        due_again = events.last_failed_at <= sa.func.now() - sa.func.make_interval(
            0, 0, 0, 0, 0, 0, events.attempts * self._retry_seconds
        )
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(
                    sa.select(
                        events.id,
                        events.event_type,
                        events.event_data,
                        events.occurred_at,
                        events.attempts,
                    )
                    .where(
                        events.processed_at.is_(None),
                        events.dead_lettered_at.is_(None),
                        sa.or_(events.last_failed_at.is_(None), due_again),
                    )
                    .order_by(events.position)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            done: list[uuid.UUID] = []
            for row in rows:
                error = await self._dispatch(row.event_type, row.event_data, row.occurred_at)
                if error is None:
                    done.append(row.id)
                else:
                    await self._record_failure(conn, row, *error)
            if done:
                await conn.execute(
                    domain_events.update()
                    .where(events.id.in_(done))
                    .values(processed_at=sa.func.now())
                )
            return len(rows)

    async def _dispatch(
        self, event_type: str, data: dict[str, Any], occurred_at: datetime
    ) -> tuple[str, bool] | None:
        """None once dispatched; else the error, and whether retrying can never help."""
        if not self._codec.knows(event_type):
            log.warning("event_type_unknown", event_type=event_type)
            return None
        try:
            event = self._codec.decode(event_type, data, occurred_at)
        except Exception as exc:  # noqa: BLE001 - any malformed payload is a dead letter
            return f"cannot decode: {exc!r}", True
        try:
            await self._bus.publish(event)
        except Exception as exc:  # noqa: BLE001 - retried on a later drain
            EVENT_HANDLER_FAILURES.labels(event_type).inc()
            return repr(exc), False
        EVENTS_DISPATCHED.labels(event_type).inc()
        RELAY_LAG.set(max(0.0, (datetime.now(UTC) - occurred_at).total_seconds()))
        return None

    async def _record_failure(
        self, conn: AsyncConnection, row: Any, error: str, permanent: bool
    ) -> None:
        attempts = row.attempts + 1
        dead = permanent or attempts >= self._max_attempts
        await conn.execute(
            domain_events.update()
            .where(domain_events.c.id == row.id)
            .values(
                attempts=attempts,
                last_error=error[:_ERROR_MAX],
                last_failed_at=sa.func.now(),
                dead_lettered_at=sa.func.now() if dead else None,
            )
        )
        if dead:
            reason = "undecodable" if permanent else "handler-failed"
            DEAD_LETTERS.labels(row.event_type, reason).inc()
            log.error(
                "event_dead_lettered",
                event_id=str(row.id),
                event_type=row.event_type,
                attempts=attempts,
                reason=reason,
                error=error[:_ERROR_MAX],
            )
        else:
            log.warning(
                "event_dispatch_failed",
                event_id=str(row.id),
                event_type=row.event_type,
                attempts=attempts,
                error=error[:_ERROR_MAX],
            )
