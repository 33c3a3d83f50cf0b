"""Notifications (monitoring): its adapters, and what runs in the background.

Idempotency: each row carries the position of the event it comes from: the relay says it
(app/shared/context.py stored_event) while it dispatches; otherwise the store looks it up in
`domain_events` by what identifies the event (aggregate, type, occurred_at: the microsecond
timestamp the writer stamped), inside the same INSERT ... SELECT. A redelivered event has the
same position and `ON CONFLICT (user_id, event_position) DO NOTHING` inserts
nothing. An event that is not in the store (a test publishing directly) falls back to a
negative key hashed from the same fields, so it is deduplicated the same way and never collides
with a real position.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from redis.asyncio import Redis
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from app.monitoring.domain.notifications import (
    Audience,
    EventKey,
    Notice,
    NotificationPage,
    NotificationView,
)
from app.monitoring.infrastructure.sockets_metrics import PgSystemCounts
from app.monitoring.infrastructure.streams import RedisConsoleFeed
from app.monitoring.infrastructure.tables import notifications
from app.shared.context import stored_event
from app.shared.db import domain_events
from app.shared.domain import Clock
from app.shared.infrastructure import Infrastructure

log = structlog.get_logger(__name__)

USER_CHANNEL = "notifications:user:{user_id}"
# Backup and restore progress from nodes (app/backups/infrastructure/progress.py; a test checks).
BACKUPS_CHANNEL = "notifications:backups"
_users = sa.table(
    "users",
    sa.column("id", sa.Uuid),
    sa.column("role", sa.String),
    sa.column("is_active", sa.Boolean),
    sa.column("is_approved", sa.Boolean),
)
_n = notifications.c
_COLUMNS = (
    _n.id,
    _n.user_id,
    _n.created_at,
    _n.type,
    _n.severity,
    _n.title,
    _n.body,
    _n.server_id,
    _n.data,
    _n.read_at,
)


def _view(row: Any) -> NotificationView:
    return NotificationView(
        id=row.id,
        user_id=row.user_id,
        created_at=row.created_at,
        type=row.type,
        severity=row.severity,
        title=row.title,
        body=row.body,
        server_id=row.server_id,
        data=dict(row.data or {}),
        read_at=row.read_at,
    )


def fallback_key(key: EventKey) -> int:
    """A negative bigint from the event's identity, for an event the store does not hold."""
    text = f"{key.aggregate_type}|{key.aggregate_id}|{key.event_type}|{key.occurred_at.isoformat()}"
    digest = hashlib.sha256(text.encode()).digest()
    return -(int.from_bytes(digest[:8], "big") >> 2) - 1


def _position(key: EventKey | None) -> sa.ColumnElement[Any]:
    if key is None:
        return sa.null()
    # Dispatched by the relay, which knows the position; else it is looked up.
    if (stored := stored_event(key.event_type, key.aggregate_id)) is not None:
        return sa.literal(stored.position, sa.BigInteger)
    e = domain_events.c
    found = (
        sa.select(e.position)
        .where(
            e.aggregate_type == key.aggregate_type,
            e.aggregate_id == key.aggregate_id,
            e.event_type == key.event_type,
            e.occurred_at == key.occurred_at,
        )
        .order_by(e.position)
        .limit(1)
        .scalar_subquery()
    )
    return sa.func.coalesce(found, sa.literal(fallback_key(key), sa.BigInteger))


class PgNotificationStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def notify(
        self, notice: Notice, audience: Audience, *, key: EventKey | None, at: datetime
    ) -> Sequence[NotificationView]:
        who: sa.ColumnElement[bool] = _users.c.role.in_([role.value for role in audience.roles])
        if audience.user_id is not None:
            who = sa.or_(who, _users.c.id == audience.user_id)
        rows = sa.select(
            sa.func.gen_random_uuid(),
            _users.c.id,
            sa.literal(at, sa.DateTime(timezone=True)),
            sa.literal(notice.type),
            sa.literal(notice.severity),
            sa.literal(notice.title[:200]),
            sa.literal(notice.body[:1000]),
            sa.literal(notice.server_id, sa.Uuid),
            _position(key),
            sa.cast(sa.literal(json.dumps(notice.data, default=str)), notifications.c.data.type),
        ).where(who, _users.c.is_active, _users.c.is_approved)
        statement = (
            insert(notifications)
            .from_select(
                [
                    "id",
                    "user_id",
                    "created_at",
                    "type",
                    "severity",
                    "title",
                    "body",
                    "server_id",
                    "event_position",
                    "data",
                ],
                rows,
            )
            .on_conflict_do_nothing(index_elements=["user_id", "event_position"])
            .returning(*_COLUMNS)
        )
        async with self._engine.begin() as conn:
            return [_view(row) for row in await conn.execute(statement)]

    async def page(
        self, user_id: uuid.UUID, *, unread_only: bool, before: uuid.UUID | None, limit: int
    ) -> NotificationPage:
        query = sa.select(*_COLUMNS).where(_n.user_id == user_id)
        if unread_only:
            query = query.where(_n.read_at.is_(None))
        if before is not None:
            seen_at = (
                sa.select(_n.created_at)
                .where(_n.user_id == user_id, _n.id == before)
                .scalar_subquery()
            )
            query = query.where(sa.tuple_(_n.created_at, _n.id) < sa.tuple_(seen_at, before))
        query = query.order_by(_n.created_at.desc(), _n.id.desc()).limit(limit + 1)
        unread = sa.select(sa.func.count()).where(_n.user_id == user_id, _n.read_at.is_(None))
        async with self._engine.connect() as conn:
            rows = [_view(row) for row in await conn.execute(query)]
            count = await conn.scalar(unread)
        more = len(rows) > limit
        items = rows[:limit]
        return NotificationPage(
            items=items, unread=int(count or 0), next_before=items[-1].id if more else None
        )

    async def after(
        self, user_id: uuid.UUID, notification_id: uuid.UUID, *, limit: int
    ) -> Sequence[NotificationView] | None:
        async with self._engine.connect() as conn:
            seen = (
                await conn.execute(
                    sa.select(_n.created_at).where(_n.user_id == user_id, _n.id == notification_id)
                )
            ).first()
            if seen is None:
                return None
            rows = await conn.execute(
                sa.select(*_COLUMNS)
                .where(
                    _n.user_id == user_id,
                    sa.tuple_(_n.created_at, _n.id) > sa.tuple_(seen.created_at, notification_id),
                )
                .order_by(_n.created_at, _n.id)
                .limit(limit)
            )
            return [_view(row) for row in rows]

    async def mark_read(
        self, user_id: uuid.UUID, notification_id: uuid.UUID, *, at: datetime
    ) -> NotificationView | None:
        statement = (
            notifications.update()
            .where(_n.user_id == user_id, _n.id == notification_id)
            .values(read_at=sa.func.coalesce(_n.read_at, at))
            .returning(*_COLUMNS)
        )
        async with self._engine.begin() as conn:
            row = (await conn.execute(statement)).first()
        return _view(row) if row is not None else None

    async def mark_all_read(self, user_id: uuid.UUID, *, at: datetime) -> int:
        statement = (
            notifications.update()
            .where(_n.user_id == user_id, _n.read_at.is_(None))
            .values(read_at=at)
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(statement)).rowcount

    async def purge(self, *, older_than: datetime) -> int:
        async with self._engine.begin() as conn:
            result = await conn.execute(notifications.delete().where(_n.created_at < older_than))
            return result.rowcount


class RedisNotificationPublisher:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def publish(self, views: Sequence[NotificationView]) -> None:
        """Best effort: the rows are stored, so a viewer who misses the push still sees them."""
        pipe = self._redis.pipeline(transaction=False)
        for view in views:
            payload = {"type": "notification", "notification": view.as_json()}
            pipe.publish(USER_CHANNEL.format(user_id=view.user_id), json.dumps(payload))
        try:
            await pipe.execute()
        except Exception:
            log.warning("notifications_not_published", exc_info=True)


async def purge_old_notifications(store: PgNotificationStore, clock: Clock, days: int) -> None:
    removed = await store.purge(older_than=clock.now() - timedelta(days=days))
    if removed:
        log.info("notifications_purged", removed=removed, older_than_days=days)


def deps(infra: Infrastructure) -> dict[str, Any]:
    return {
        "bus": infra.bus,
        "notification_store": PgNotificationStore(infra.engine),
        "notification_publisher": RedisNotificationPublisher(infra.redis),
        "console_feed": RedisConsoleFeed(infra.redis),
        "system_counts": PgSystemCounts(infra.read_engine),
    }


def background(
    infra: Infrastructure, deps: dict[str, Any]
) -> list[Callable[[], Coroutine[Any, Any, None]]]:
    return []


def schedule(scheduler: AsyncIOScheduler, infra: Infrastructure, deps: dict[str, Any]) -> None:
    scheduler.add_job(
        purge_old_notifications,
        "interval",
        hours=1,
        args=[deps["notification_store"], infra.clock, infra.settings.notifications_retention_days],
        id="notifications-retention",
        max_instances=1,
        coalesce=True,
    )


def node_tasks(
    infra: Infrastructure, node: str, servers: Any
) -> list[Callable[[], Coroutine[Any, Any, None]]]:
    return []
