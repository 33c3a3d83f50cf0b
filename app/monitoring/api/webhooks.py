"""The webhooks part of the monitoring context: /api/v2/webhooks and their delivery logs."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status

from app.monitoring.api.webhook_schemas import (
    CreatedWebhookResponse,
    CreateWebhookRequest,
    DeliveryPage,
    DeliveryResponse,
    TestDeliveryResponse,
    UpdateWebhookRequest,
    WebhookPage,
    WebhookResponse,
)
from app.monitoring.application.webhooks import (
    KNOWN_EVENT_TYPES,
    CreateWebhook,
    DeleteWebhook,
    GetWebhook,
    ListDeliveries,
    ListWebhooks,
    TestWebhook,
    UpdateWebhook,
)
from app.monitoring.domain.webhooks import ALL_EVENTS
from app.settings import Settings
from app.shared.agent import NodeTokens
from app.shared.dependencies import BusDep, require
from app.shared.openapi import problems
from app.shared.security import Permission, Principal

router = APIRouter(prefix="/api/v2/webhooks", tags=["webhooks"])
types_router = APIRouter(prefix="/api/v2/webhook-event-types", tags=["webhooks"])
Owner = Annotated[Principal, Depends(require(Permission.SERVER_READ))]
PageNumber = Annotated[int, Query(ge=1, le=100_000)]
Limit = Annotated[int, Query(ge=1, le=100)]
_NOT_FOUND = {404: "no such webhook, or another user's"}


@types_router.get("/", summary="The event types a webhook may ask for; '*' means all")
async def event_types(actor: Owner) -> list[str]:
    return [ALL_EVENTS, *KNOWN_EVENT_TYPES]


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    summary="Register a webhook; the response shows its secret this once",
    responses=problems(
        {
            404: "the server filter names no server you may see",
            409: "you have as many webhooks as a user may have",
            422: "the URL is not http(s), or reaches a loopback, link-local or private address",
        }
    ),
)
async def create_webhook(
    body: CreateWebhookRequest, actor: Owner, bus: BusDep
) -> CreatedWebhookResponse:
    created = await bus.handle(
        CreateWebhook(
            actor=actor,
            url=body.url,
            event_types=tuple(body.event_types),
            server_id=body.server_id,
            secret=body.secret,
            format=body.format,
            active=body.active,
        )
    )
    shown = WebhookResponse.of(created.webhook).model_dump()
    return CreatedWebhookResponse(**shown, secret=created.secret)


@router.get("/", summary="Your webhooks, newest first (admins see everyone's)")
async def list_webhooks(
    actor: Owner, bus: BusDep, page: PageNumber = 1, limit: Limit = 20
) -> WebhookPage:
    found = await bus.handle(ListWebhooks(actor=actor, page=page, limit=limit))
    items = [WebhookResponse.of(webhook) for webhook in found.items]
    return WebhookPage(items=items, total=found.total, page=found.page, limit=found.limit)


@router.get("/{webhook_id}", responses=problems(_NOT_FOUND))
async def get_webhook(webhook_id: uuid.UUID, actor: Owner, bus: BusDep) -> WebhookResponse:
    return WebhookResponse.of(await bus.handle(GetWebhook(actor=actor, webhook_id=webhook_id)))


@router.patch(
    "/{webhook_id}",
    summary="Change the fields given; server_id null removes the server filter",
    responses=problems({**_NOT_FOUND, 422: "as for registration"}),
)
async def update_webhook(
    webhook_id: uuid.UUID, body: UpdateWebhookRequest, actor: Owner, bus: BusDep
) -> WebhookResponse:
    updated = await bus.handle(
        UpdateWebhook(
            actor=actor,
            webhook_id=webhook_id,
            url=body.url,
            event_types=tuple(body.event_types) if body.event_types is not None else None,
            change_server="server_id" in body.model_fields_set,
            server_id=body.server_id,
            secret=body.secret,
            format=body.format,
            active=body.active,
        )
    )
    return WebhookResponse.of(updated)


@router.delete(
    "/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problems(_NOT_FOUND)
)
async def delete_webhook(webhook_id: uuid.UUID, actor: Owner, bus: BusDep) -> None:
    await bus.handle(DeleteWebhook(actor=actor, webhook_id=webhook_id))


@router.get(
    "/{webhook_id}/deliveries",
    summary="The webhook's delivery log, newest first: status, attempts, last error",
    responses=problems(_NOT_FOUND),
)
async def list_deliveries(
    webhook_id: uuid.UUID, actor: Owner, bus: BusDep, page: PageNumber = 1, limit: Limit = 20
) -> DeliveryPage:
    found = await bus.handle(
        ListDeliveries(actor=actor, webhook_id=webhook_id, page=page, limit=limit)
    )
    items = [DeliveryResponse.of(delivery) for delivery in found.items]
    return DeliveryPage(items=items, total=found.total, page=found.page, limit=found.limit)


@router.post(
    "/{webhook_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Queue a test delivery (event WebhookTest); follow it in the delivery log",
    responses=problems(_NOT_FOUND),
)
async def test_webhook(webhook_id: uuid.UUID, actor: Owner, bus: BusDep) -> TestDeliveryResponse:
    delivery_id = await bus.handle(TestWebhook(actor=actor, webhook_id=webhook_id))
    return TestDeliveryResponse(delivery_id=delivery_id)


def routers() -> list[APIRouter]:
    return [router, types_router]


def node_routers(
    settings: Settings, tokens: NodeTokens, node: str, servers: Any
) -> list[APIRouter]:
    return []
