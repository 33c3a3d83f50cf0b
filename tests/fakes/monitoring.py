"""In-memory stand-ins for the monitoring context's stores: what other contexts' unit tests
drive through its event handlers (notifications stored and pushed, webhook deliveries queued)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from app.monitoring.application.webhooks_ports import NewDelivery, WebhookRecord
from app.monitoring.domain.notifications import (
    Audience,
    EventKey,
    Notice,
    NotificationView,
)


class FakeNotificationStore:
    """Keeps each notice once per event and addressee (the audience's named user here)."""

    def __init__(self) -> None:
        self.views: list[NotificationView] = []
        self._keys: set[tuple[uuid.UUID, EventKey | None]] = set()

    async def notify(
        self, notice: Notice, audience: Audience, *, key: EventKey | None, at: datetime
    ) -> Sequence[NotificationView]:
        if audience.user_id is None or (key is not None and (audience.user_id, key) in self._keys):
            return []
        self._keys.add((audience.user_id, key))
        view = NotificationView(
            id=uuid.uuid4(),
            user_id=audience.user_id,
            created_at=at,
            type=notice.type,
            severity=notice.severity,
            title=notice.title,
            body=notice.body,
            server_id=notice.server_id,
            data=dict(notice.data),
            read_at=None,
        )
        self.views.append(view)
        return [view]


@dataclass
class FakeNotificationPublisher:
    published: list[NotificationView] = field(default_factory=list)

    async def publish(self, views: Sequence[NotificationView]) -> None:
        self.published.extend(views)


@dataclass
class FakeWebhookStore:
    """The webhooks a test registers, and the deliveries the event handler queues for them."""

    webhooks: dict[uuid.UUID, WebhookRecord] = field(default_factory=dict)
    deliveries: list[NewDelivery] = field(default_factory=list)

    async def matching(self, event_type: str, server_id: uuid.UUID | None) -> list[WebhookRecord]:
        return [
            hook
            for hook in self.webhooks.values()
            if hook.active
            and ("*" in hook.event_types or event_type in hook.event_types)
            and (hook.server_id is None or hook.server_id == server_id)
        ]

    async def add_deliveries(self, deliveries: Sequence[NewDelivery]) -> list[uuid.UUID]:
        known = {(d.webhook_id, d.event_id) for d in self.deliveries}
        new = [d for d in deliveries if (d.webhook_id, d.event_id) not in known]
        self.deliveries.extend(new)
        return [d.id for d in new]

    async def add(self, webhook: WebhookRecord) -> None:
        self.webhooks[webhook.id] = webhook

    async def update(self, webhook: WebhookRecord) -> None:
        self.webhooks[webhook.id] = replace(webhook)


@dataclass
class FakeDeliveryQueue:
    queued: list[uuid.UUID] = field(default_factory=list)

    async def enqueue(self, delivery_ids: Sequence[uuid.UUID]) -> None:
        self.queued.extend(delivery_ids)


@dataclass(kw_only=True)
class MonitoringFakes:
    notification_store: FakeNotificationStore
    notification_publisher: FakeNotificationPublisher
    webhooks: FakeWebhookStore
    webhook_queue: FakeDeliveryQueue

    @classmethod
    def build(cls) -> MonitoringFakes:
        return cls(
            notification_store=FakeNotificationStore(),
            notification_publisher=FakeNotificationPublisher(),
            webhooks=FakeWebhookStore(),
            webhook_queue=FakeDeliveryQueue(),
        )
