"""The webhooks part of the monitoring context: its messages and handlers.

Owners and admins register webhooks; every event the relay dispatches is offered to them
(webhooks_delivery.handle_domain_event), and a node worker sends what matches.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, replace
from typing import Any

from app.backups.domain.events import BACKUP_EVENTS
from app.files.domain.events import FILE_EVENTS
from app.groups.domain.events import GROUP_EVENTS
from app.monitoring.application import webhooks_delivery as delivery
from app.monitoring.application.webhooks_delivery import check_url
from app.monitoring.application.webhooks_ports import (
    AddressResolver,
    DeliveryQueue,
    DeliveryView,
    WebhookRecord,
    WebhookStore,
)
from app.monitoring.domain.webhooks import (
    WebhookFormat,
    WebhookLimitReached,
    check_event_types,
    check_secret,
)
from app.servers.application.messages import GetServer
from app.servers.domain.events import SERVER_EVENTS
from app.settings import Settings
from app.shared.bus import Command, MessageBus, Query
from app.shared.domain import Clock, DomainEvent, NotFound, Page
from app.shared.security import Principal
from app.shared.wiring import Handler
from app.users.domain.events import USER_EVENTS

WEBHOOK_EVENTS: tuple[type[DomainEvent], ...] = (
    *USER_EVENTS,
    *SERVER_EVENTS,
    *GROUP_EVENTS,
    *FILE_EVENTS,
    *BACKUP_EVENTS,
)
KNOWN_EVENT_TYPES: tuple[str, ...] = tuple(sorted(event.event_type() for event in WEBHOOK_EVENTS))


@dataclass(frozen=True, slots=True, kw_only=True)
class CreatedWebhook:
    webhook: WebhookRecord
    secret: str
    """Shown once: the one the client gave, or the one generated for it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateWebhook(Command[CreatedWebhook]):
    actor: Principal
    url: str
    event_types: tuple[str, ...]
    server_id: uuid.UUID | None = None
    secret: str | None = None
    format: WebhookFormat = WebhookFormat.JSON
    active: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateWebhook(Command[WebhookRecord]):
    """Change what is given; `change_server` says whether `server_id` (None clears) is given."""

    actor: Principal
    webhook_id: uuid.UUID
    url: str | None = None
    event_types: tuple[str, ...] | None = None
    change_server: bool = False
    server_id: uuid.UUID | None = None
    secret: str | None = None
    format: WebhookFormat | None = None
    active: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteWebhook(Command[None]):
    actor: Principal
    webhook_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class TestWebhook(Command[uuid.UUID]):
    """Queue a test delivery; its id, to look for in the delivery log."""

    actor: Principal
    webhook_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class GetWebhook(Query[WebhookRecord]):
    actor: Principal
    webhook_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class ListWebhooks(Query[Page[WebhookRecord]]):
    actor: Principal
    page: int = 1
    limit: int = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class ListDeliveries(Query[Page[DeliveryView]]):
    actor: Principal
    webhook_id: uuid.UUID
    page: int = 1
    limit: int = 20


async def _own(webhooks: WebhookStore, actor: Principal, webhook_id: uuid.UUID) -> WebhookRecord:
    """The webhook if the actor owns it or is an admin; another user's is not found."""
    found = await webhooks.get(webhook_id)
    if found is None or (found.owner_id != actor.user_id and not actor.is_admin):
        raise NotFound(f"webhook {webhook_id} not found")
    return found


async def _check_server(bus: MessageBus, actor: Principal, server_id: uuid.UUID | None) -> None:
    """A server filter must name a server the actor may see (NotFound otherwise)."""
    if server_id is not None:
        await bus.handle(GetServer(actor=actor, server_id=server_id))


async def handle_create_webhook(
    command: CreateWebhook,
    *,
    webhooks: WebhookStore,
    webhook_resolver: AddressResolver,
    bus: MessageBus,
    clock: Clock,
    settings: Settings,
) -> CreatedWebhook:
    event_types = check_event_types(command.event_types, KNOWN_EVENT_TYPES)
    secret = check_secret(command.secret) if command.secret else secrets.token_urlsafe(32)
    await check_url(command.url, resolver=webhook_resolver, settings=settings)
    await _check_server(bus, command.actor, command.server_id)
    owned = await webhooks.count_owned(command.actor.user_id)
    if owned >= settings.webhooks_max_per_user:
        raise WebhookLimitReached(
            f"a user may register at most {settings.webhooks_max_per_user} webhooks",
            limit=settings.webhooks_max_per_user,
        )
    now = clock.now()
    webhook = WebhookRecord(
        id=uuid.uuid4(),
        owner_id=command.actor.user_id,
        url=command.url,
        event_types=event_types,
        server_id=command.server_id,
        secret=secret,
        format=command.format,
        active=command.active,
        created_at=now,
        updated_at=now,
    )
    await webhooks.add(webhook)
    return CreatedWebhook(webhook=webhook, secret=secret)


async def handle_update_webhook(
    command: UpdateWebhook,
    *,
    webhooks: WebhookStore,
    webhook_resolver: AddressResolver,
    bus: MessageBus,
    clock: Clock,
    settings: Settings,
) -> WebhookRecord:
    webhook = await _own(webhooks, command.actor, command.webhook_id)
    changes: dict[str, Any] = {}
    if command.url is not None:
        await check_url(command.url, resolver=webhook_resolver, settings=settings)
        changes["url"] = command.url
    if command.event_types is not None:
        changes["event_types"] = check_event_types(command.event_types, KNOWN_EVENT_TYPES)
    if command.change_server:
        await _check_server(bus, command.actor, command.server_id)
        changes["server_id"] = command.server_id
    if command.secret is not None:
        changes["secret"] = check_secret(command.secret)
    if command.format is not None:
        changes["format"] = command.format
    if command.active is not None:
        changes["active"] = command.active
    if not changes:
        return webhook
    updated = replace(webhook, **changes, updated_at=clock.now())
    await webhooks.update(updated)
    return updated


async def handle_delete_webhook(command: DeleteWebhook, *, webhooks: WebhookStore) -> None:
    await _own(webhooks, command.actor, command.webhook_id)
    await webhooks.delete(command.webhook_id)


async def handle_test_webhook(
    command: TestWebhook,
    *,
    webhooks: WebhookStore,
    webhook_queue: DeliveryQueue,
    clock: Clock,
    settings: Settings,
) -> uuid.UUID:
    webhook = await _own(webhooks, command.actor, command.webhook_id)
    return await delivery.queue_test_delivery(
        webhook, webhooks=webhooks, webhook_queue=webhook_queue, clock=clock, settings=settings
    )


async def handle_get_webhook(query: GetWebhook, *, webhooks: WebhookStore) -> WebhookRecord:
    return await _own(webhooks, query.actor, query.webhook_id)


async def handle_list_webhooks(
    query: ListWebhooks, *, webhooks: WebhookStore
) -> Page[WebhookRecord]:
    owner = None if query.actor.is_admin else query.actor.user_id
    return await webhooks.page(owner, page=query.page, limit=query.limit)


async def handle_list_deliveries(
    query: ListDeliveries, *, webhooks: WebhookStore
) -> Page[DeliveryView]:
    await _own(webhooks, query.actor, query.webhook_id)
    return await webhooks.deliveries(query.webhook_id, page=query.page, limit=query.limit)


MESSAGES: dict[type[Any], Handler] = {
    CreateWebhook: handle_create_webhook,
    UpdateWebhook: handle_update_webhook,
    DeleteWebhook: handle_delete_webhook,
    TestWebhook: handle_test_webhook,
    GetWebhook: handle_get_webhook,
    ListWebhooks: handle_list_webhooks,
    ListDeliveries: handle_list_deliveries,
    delivery.DeliverWebhook: delivery.handle_deliver_webhook,
    delivery.RequeueDueDeliveries: delivery.handle_requeue_due,
    delivery.PruneDeliveries: delivery.handle_prune_deliveries,
}
EVENT_HANDLERS: list[tuple[type[DomainEvent], Handler]] = [
    (event, delivery.handle_domain_event) for event in WEBHOOK_EVENTS
]
