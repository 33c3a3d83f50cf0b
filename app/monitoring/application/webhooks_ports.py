"""What webhook handlers work with: the records they read and write, and the ports (store,
DNS, queue, HTTP, counter) the infrastructure implements."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from app.monitoring.domain.webhooks import DeliveryStatus, WebhookFormat
from app.shared.domain import Page


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookRecord:
    id: uuid.UUID
    owner_id: uuid.UUID
    url: str
    event_types: tuple[str, ...]
    server_id: uuid.UUID | None
    secret: str
    format: WebhookFormat
    active: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class NewDelivery:
    id: uuid.UUID
    webhook_id: uuid.UUID
    event_id: uuid.UUID | None
    event_type: str
    payload: dict[str, Any]
    created_at: datetime
    next_attempt_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryView:
    id: uuid.UUID
    webhook_id: uuid.UUID
    event_id: uuid.UUID | None
    event_type: str
    status: DeliveryStatus
    attempts: int
    response_status: int | None
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Claimed:
    """A delivery taken for one attempt, with what sending it needs."""

    delivery_id: uuid.UUID
    attempts: int
    event_type: str
    payload: dict[str, Any]
    url: str
    secret: str
    format: WebhookFormat


@dataclass(frozen=True, slots=True, kw_only=True)
class Sent:
    """How one attempt ended: an HTTP status, or the transport error (timeout, refused...)."""

    status: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class WebhookStore(Protocol):
    async def count_owned(self, owner_id: uuid.UUID) -> int: ...
    async def add(self, webhook: WebhookRecord) -> None: ...
    async def get(self, webhook_id: uuid.UUID) -> WebhookRecord | None: ...
    async def page(
        self, owner_id: uuid.UUID | None, *, page: int, limit: int
    ) -> Page[WebhookRecord]: ...
    async def update(self, webhook: WebhookRecord) -> None: ...
    async def delete(self, webhook_id: uuid.UUID) -> bool: ...
    async def matching(self, event_type: str, server_id: uuid.UUID | None) -> list[WebhookRecord]:
        """Active webhooks for this event type (or '*') whose server filter is none or this."""
        ...

    async def add_deliveries(self, deliveries: Sequence[NewDelivery]) -> list[uuid.UUID]:
        """Insert, skipping an event already delivered to a webhook; the ids inserted."""
        ...

    async def deliveries(
        self, webhook_id: uuid.UUID, *, page: int, limit: int
    ) -> Page[DeliveryView]: ...
    async def claim(
        self, delivery_id: uuid.UUID, *, now: datetime, lease_until: datetime
    ) -> Claimed | None:
        """Take a pending or retrying delivery (or one whose sender died) for one attempt."""
        ...

    async def record(
        self,
        delivery_id: uuid.UUID,
        *,
        status: DeliveryStatus,
        now: datetime,
        sent: Sent,
        next_attempt_at: datetime | None,
    ) -> None: ...
    async def take_due(
        self, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[uuid.UUID]:
        """Deliveries due again (or lost), leased so that the next pass skips them."""
        ...

    async def prune(self, *, before: datetime, batch: int) -> int: ...


class AddressResolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[str]: ...


class DeliveryQueue(Protocol):
    async def enqueue(self, delivery_ids: Sequence[uuid.UUID]) -> None: ...


class WebhookSender(Protocol):
    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> Sent: ...


class DeliveryOutcomes(Protocol):
    """Counts deliveries by outcome (mcdash_webhook_deliveries_total)."""

    def count(self, outcome: str) -> None: ...
