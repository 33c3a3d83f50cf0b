"""The webhooks and their delivery log in PostgreSQL (tables `webhooks`, `webhook_deliveries`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from app.monitoring.application.webhooks_ports import (
    Claimed,
    DeliveryView,
    NewDelivery,
    Sent,
    WebhookRecord,
)
from app.monitoring.domain.webhooks import ALL_EVENTS, DeliveryStatus, WebhookFormat
from app.monitoring.infrastructure.tables import webhook_deliveries, webhooks
from app.shared.db import ReadPool
from app.shared.domain import Page

_MATCHING = (
    "SELECT * FROM webhooks WHERE active AND (event_types @> $1 OR event_types @> $2)"
    " AND (server_id IS NULL OR server_id = $3)"
)
_OPEN = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING, DeliveryStatus.SENDING)
_DELIVERY_COLUMNS = [c for c in webhook_deliveries.c if c.name != "payload"]


def _webhook(row: Any) -> WebhookRecord:
    """A webhook from its row: a SQLAlchemy row's mapping or an asyncpg record."""
    return WebhookRecord(
        id=row["id"],
        owner_id=row["owner_id"],
        url=row["url"],
        event_types=tuple(row["event_types"]),
        server_id=row["server_id"],
        secret=row["secret"],
        format=WebhookFormat(row["format"]),
        active=row["active"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _delivery(row: Any) -> DeliveryView:
    return DeliveryView(
        id=row.id,
        webhook_id=row.webhook_id,
        event_id=row.event_id,
        event_type=row.event_type,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        response_status=row.response_status,
        last_error=row.last_error,
        created_at=row.created_at,
        last_attempt_at=row.last_attempt_at,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
    )


def _values(webhook: WebhookRecord) -> dict[str, Any]:
    return {
        "owner_id": webhook.owner_id,
        "url": webhook.url,
        "event_types": list(webhook.event_types),
        "server_id": webhook.server_id,
        "secret": webhook.secret,
        "format": webhook.format.value,
        "active": webhook.active,
        "created_at": webhook.created_at,
        "updated_at": webhook.updated_at,
    }


class PgWebhookStore:
    def __init__(self, engine: AsyncEngine, pool: ReadPool) -> None:
        self._engine = engine
        self._pool = pool

    async def count_owned(self, owner_id: uuid.UUID) -> int:
        async with self._engine.connect() as conn:
            query = sa.select(sa.func.count()).where(webhooks.c.owner_id == owner_id)
            return int(await conn.scalar(query) or 0)

    async def add(self, webhook: WebhookRecord) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(webhooks.insert().values(id=webhook.id, **_values(webhook)))

    async def get(self, webhook_id: uuid.UUID) -> WebhookRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(webhooks.select().where(webhooks.c.id == webhook_id))).first()
        return _webhook(row._mapping) if row else None

    async def page(
        self, owner_id: uuid.UUID | None, *, page: int, limit: int
    ) -> Page[WebhookRecord]:
        where = [] if owner_id is None else [webhooks.c.owner_id == owner_id]
        async with self._engine.connect() as conn:
            total = await conn.scalar(
                sa.select(sa.func.count()).select_from(webhooks).where(*where)
            )
            rows = await conn.execute(
                webhooks.select()
                .where(*where)
                .order_by(webhooks.c.created_at.desc(), webhooks.c.id)
                .offset((page - 1) * limit)
                .limit(limit)
            )
            items = [_webhook(row._mapping) for row in rows]
        return Page(items=items, total=int(total or 0), page=page, limit=limit)

    async def update(self, webhook: WebhookRecord) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                webhooks.update().where(webhooks.c.id == webhook.id).values(**_values(webhook))
            )

    async def delete(self, webhook_id: uuid.UUID) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(webhooks.delete().where(webhooks.c.id == webhook_id))
        return bool(result.rowcount)

    async def matching(self, event_type: str, server_id: uuid.UUID | None) -> list[WebhookRecord]:
        """Asked for every event the relay dispatches, so one round trip through asyncpg."""
        rows = await self._pool.fetch(_MATCHING, [event_type], [ALL_EVENTS], server_id)
        return [_webhook(row) for row in rows]

    async def add_deliveries(self, deliveries: Sequence[NewDelivery]) -> list[uuid.UUID]:
        rows = [
            {
                "id": d.id,
                "webhook_id": d.webhook_id,
                "event_id": d.event_id,
                "event_type": d.event_type,
                "payload": d.payload,
                "status": DeliveryStatus.PENDING.value,
                "attempts": 0,
                "created_at": d.created_at,
                "next_attempt_at": d.next_attempt_at,
            }
            for d in deliveries
        ]
        statement = (
            insert(webhook_deliveries)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["webhook_id", "event_id"])
            .returning(webhook_deliveries.c.id)
        )
        async with self._engine.begin() as conn:
            return list((await conn.scalars(statement)).all())

    async def deliveries(
        self, webhook_id: uuid.UUID, *, page: int, limit: int
    ) -> Page[DeliveryView]:
        where = webhook_deliveries.c.webhook_id == webhook_id
        async with self._engine.connect() as conn:
            total = await conn.scalar(
                sa.select(sa.func.count()).select_from(webhook_deliveries).where(where)
            )
            rows = await conn.execute(
                sa.select(*_DELIVERY_COLUMNS)
                .where(where)
                .order_by(webhook_deliveries.c.created_at.desc(), webhook_deliveries.c.id)
                .offset((page - 1) * limit)
                .limit(limit)
            )
            items = [_delivery(row) for row in rows]
        return Page(items=items, total=int(total or 0), page=page, limit=limit)

    async def claim(
        self, delivery_id: uuid.UUID, *, now: datetime, lease_until: datetime
    ) -> Claimed | None:
        d = webhook_deliveries.c
        takeable = sa.or_(
            d.status.in_([DeliveryStatus.PENDING.value, DeliveryStatus.RETRYING.value]),
            sa.and_(d.status == DeliveryStatus.SENDING.value, d.next_attempt_at <= now),
        )
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    webhook_deliveries.update()
                    .where(d.id == delivery_id, takeable)
                    .values(
                        status=DeliveryStatus.SENDING.value,
                        attempts=d.attempts + 1,
                        last_attempt_at=now,
                        next_attempt_at=lease_until,
                    )
                    .returning(d.id, d.attempts, d.event_type, d.payload, d.webhook_id)
                )
            ).first()
            if row is None:
                return None
            hook = (
                await conn.execute(
                    sa.select(webhooks.c.url, webhooks.c.secret, webhooks.c.format).where(
                        webhooks.c.id == row.webhook_id
                    )
                )
            ).first()
        if hook is None:
            return None
        return Claimed(
            delivery_id=row.id,
            attempts=row.attempts,
            event_type=row.event_type,
            payload=row.payload,
            url=hook.url,
            secret=hook.secret,
            format=WebhookFormat(hook.format),
        )

    async def record(
        self,
        delivery_id: uuid.UUID,
        *,
        status: DeliveryStatus,
        now: datetime,
        sent: Sent,
        next_attempt_at: datetime | None,
    ) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                webhook_deliveries.update()
                .where(webhook_deliveries.c.id == delivery_id)
                .values(
                    status=status.value,
                    response_status=sent.status,
                    last_error=sent.error,
                    next_attempt_at=next_attempt_at,
                    delivered_at=now if status is DeliveryStatus.DELIVERED else None,
                )
            )

    async def take_due(
        self, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[uuid.UUID]:
        d = webhook_deliveries.c
        due = (
            sa.select(d.id)
            .where(d.status.in_([s.value for s in _OPEN]), d.next_attempt_at <= now)
            .order_by(d.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        async with self._engine.begin() as conn:
            taken = await conn.scalars(
                webhook_deliveries.update()
                .where(d.id.in_(due))
                .values(next_attempt_at=lease_until)
                .returning(d.id)
            )
            return list(taken.all())

    async def prune(self, *, before: datetime, batch: int) -> int:
        d = webhook_deliveries.c
        old = sa.select(d.id).where(d.created_at < before).limit(batch).scalar_subquery()
        async with self._engine.begin() as conn:
            result = await conn.execute(webhook_deliveries.delete().where(d.id.in_(old)))
        return int(result.rowcount or 0)
