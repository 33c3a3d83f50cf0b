"""The relay: committed events to their handlers, in order, at least once; and the NOTIFY-driven
drain loop it shares with the projections."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import structlog
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.shared.bus import MessageBus, without_waiting
from app.shared.context import StoredEvent, stored_event_var
from app.shared.db import EVENTS_CHANNEL, domain_events
from app.shared.events import EventCodec

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
        await drain_on_notify(
            self._engine,
            self.drain,
            self._wakeup,
            batch_size=self._batch_size,
            poll_seconds=self._poll_seconds,
            failure="event_relay_drain_failed",
        )

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
                        events.position,
                        events.metadata,
                        events.aggregate_id,
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
                stored = StoredEvent(
                    id=row.id,
                    position=row.position,
                    event_type=row.event_type,
                    aggregate_id=row.aggregate_id,
                    metadata=row.metadata,
                )
                token = stored_event_var.set(stored)
                try:
                    error = await self._dispatch(row.event_type, row.event_data, row.occurred_at)
                finally:
                    stored_event_var.reset(token)
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
            with without_waiting():
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


async def drain_on_notify(
    engine: AsyncEngine,
    drain: Callable[[], Awaitable[int]],
    wakeup: asyncio.Event,
    *,
    batch_size: int,
    poll_seconds: float,
    failure: str,
) -> None:
    """Call `drain` until it takes less than a full batch, then wait for a commit's NOTIFY on
    the events channel (it sets `wakeup`) or `poll_seconds`; forever. A failed drain is logged
    as `failure` and tried again on the next wake."""
    async with engine.connect() as listen_conn:
        raw = await listen_conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.add_listener(EVENTS_CHANNEL, lambda *_: wakeup.set())
        while True:
            wakeup.clear()
            try:
                while await drain() >= batch_size:
                    pass
            except Exception:
                log.exception(failure)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), timeout=poll_seconds)
