"""Request and response bodies of the webhooks routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.monitoring.application.webhooks_ports import DeliveryView, WebhookRecord
from app.monitoring.domain.webhooks import (
    EVENT_TYPES_MAX,
    SECRET_MAX,
    SECRET_MIN,
    URL_MAX,
    DeliveryStatus,
    WebhookFormat,
)
from app.shared.http import example

EventType = Annotated[str, Field(min_length=1, max_length=100)]
EVENT_TYPES = Field(
    min_length=1,
    max_length=EVENT_TYPES_MAX,
    description="event types to deliver (GET /api/v2/webhook-event-types/), or ['*'] for all",
)
SECRET = Field(
    default=None,
    min_length=SECRET_MIN,
    max_length=SECRET_MAX,
    description="the HMAC key; generated (and shown once) when left out",
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CreateWebhookRequest(Strict):
    model_config = example(
        {
            "url": "https://93.184.215.14/mcdash",
            "event_types": ["ServerStarted", "ServerCrashed"],
            "format": "json",
        }
    )

    url: str = Field(min_length=1, max_length=URL_MAX)
    event_types: list[EventType] = EVENT_TYPES
    server_id: uuid.UUID | None = Field(default=None, strict=False)
    secret: str | None = SECRET
    format: WebhookFormat = Field(default=WebhookFormat.JSON, strict=False)
    active: bool = True


class UpdateWebhookRequest(Strict):
    """Only the fields given change; `server_id: null` removes the server filter."""

    model_config = example({"event_types": ["*"], "format": "discord", "active": True})

    url: str | None = Field(default=None, min_length=1, max_length=URL_MAX)
    event_types: list[EventType] | None = Field(
        default=None, min_length=1, max_length=EVENT_TYPES_MAX
    )
    server_id: uuid.UUID | None = Field(default=None, strict=False)
    secret: str | None = SECRET
    format: WebhookFormat | None = Field(default=None, strict=False)
    active: bool | None = None


class WebhookResponse(BaseModel):
    """A webhook; its secret is never shown again after creation."""

    id: uuid.UUID
    owner_id: uuid.UUID
    url: str
    event_types: list[str]
    server_id: uuid.UUID | None
    format: WebhookFormat
    active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, webhook: WebhookRecord) -> WebhookResponse:
        return cls(
            id=webhook.id,
            owner_id=webhook.owner_id,
            url=webhook.url,
            event_types=list(webhook.event_types),
            server_id=webhook.server_id,
            format=webhook.format,
            active=webhook.active,
            created_at=webhook.created_at,
            updated_at=webhook.updated_at,
        )


class CreatedWebhookResponse(WebhookResponse):
    secret: str = Field(description="shown this once: keep it to verify X-Mcdash-Signature-256")


class WebhookPage(BaseModel):
    items: list[WebhookResponse]
    total: int
    page: int
    limit: int


class DeliveryResponse(BaseModel):
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

    @classmethod
    def of(cls, delivery: DeliveryView) -> DeliveryResponse:
        return cls(
            id=delivery.id,
            webhook_id=delivery.webhook_id,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            status=delivery.status,
            attempts=delivery.attempts,
            response_status=delivery.response_status,
            last_error=delivery.last_error,
            created_at=delivery.created_at,
            last_attempt_at=delivery.last_attempt_at,
            next_attempt_at=delivery.next_attempt_at,
            delivered_at=delivery.delivered_at,
        )


class DeliveryPage(BaseModel):
    items: list[DeliveryResponse]
    total: int
    page: int
    limit: int


class TestDeliveryResponse(BaseModel):
    delivery_id: uuid.UUID = Field(description="look for it in GET .../deliveries")
