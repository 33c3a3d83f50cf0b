"""Webhook deliveries: the ports they go through, and the handlers that queue, send and retry
them. The event handler only writes rows and queues jobs; a node worker does the sending."""

from __future__ import annotations

import dataclasses
import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from app.monitoring.application.webhooks_ports import (
    AddressResolver,
    DeliveryOutcomes,
    DeliveryQueue,
    NewDelivery,
    Sent,
    WebhookRecord,
    WebhookSender,
    WebhookStore,
)
from app.monitoring.domain.webhooks import (
    TEST_EVENT,
    DeliveryStatus,
    WebhookFormat,
    check_addresses,
    discord_body,
    encode_body,
    event_id,
    parse_url,
    retry_delay,
    sign,
)
from app.servers.application.messages import GetServer
from app.settings import Settings
from app.shared.bus import Command, MessageBus
from app.shared.context import stored_event
from app.shared.domain import Clock, DomainError, DomainEvent, NotFound
from app.shared.security import Role
from app.users.application.messages import GetUser

log = structlog.get_logger(__name__)
_ERROR_MAX = 2000


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverWebhook(Command[str]):
    delivery_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class RequeueDueDeliveries(Command[int]):
    limit: int = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneDeliveries(Command[int]):
    batch: int = 1000
    max_batches: int = 50


def lease(settings: Settings) -> timedelta:
    """How long an attempt may hold a delivery before it counts as lost and is queued again."""
    return timedelta(seconds=settings.webhook_timeout_seconds * 2 + 30)


async def check_url(url: str, *, resolver: AddressResolver, settings: Settings) -> None:
    target = parse_url(url)
    addresses = await resolver.resolve(target.host, target.port)
    check_addresses(target.host, addresses, allow_private=settings.webhooks_allow_private_addresses)


def _encode(value: Any) -> Any:
    if isinstance(value, uuid.UUID | datetime):
        return str(value) if isinstance(value, uuid.UUID) else value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    return value


def describe(event: DomainEvent) -> tuple[dict[str, Any], uuid.UUID | None, str | None]:
    """The event's data as JSON, the server it concerns, and who caused it where it says."""
    data = {
        field.name: _encode(getattr(event, field.name))
        for field in dataclasses.fields(event)
        if field.name != "occurred_at"
    }
    server_id = getattr(event, "server_id", None)
    actor = next(
        (
            data[name]
            for name in ("requested_by", "actor_id", "changed_by", "created_by")
            if data.get(name)
        ),
        None,
    )
    return data, server_id if isinstance(server_id, uuid.UUID) else None, actor


async def _may_see(
    bus: MessageBus,
    webhook: WebhookRecord,
    event: DomainEvent,
    server_id: uuid.UUID | None,
    known: dict[uuid.UUID, Role | None],
) -> bool:
    """Admins' webhooks get every event, operators' every server's; a user's, their servers'."""
    if webhook.owner_id not in known:
        try:
            known[webhook.owner_id] = (await bus.handle(GetUser(user_id=webhook.owner_id))).role
        except NotFound:
            known[webhook.owner_id] = None
    role = known[webhook.owner_id]
    if role is Role.ADMIN:
        return True
    if role is None or event.aggregate_type == "user":
        return False
    if role is Role.OPERATOR:
        return True
    if server_id is None:
        return False
    owner = getattr(event, "owner_id", None)
    if owner is None:
        try:
            owner = (await bus.handle(GetServer(actor=None, server_id=server_id))).owner_id
        except DomainError:
            return False
    return bool(owner == webhook.owner_id)


async def handle_domain_event(
    event: DomainEvent,
    *,
    webhooks: WebhookStore,
    webhook_queue: DeliveryQueue,
    bus: MessageBus,
    clock: Clock,
    settings: Settings,
) -> None:
    """Queue a delivery to each matching webhook: rows and jobs only, never the target itself."""
    data, server_id, actor = describe(event)
    candidates = await webhooks.matching(event.event_type(), server_id)
    if not candidates:
        return
    now = clock.now()
    stored = stored_event(event.event_type(), event.aggregate_id)
    if stored is not None:  # dispatched by the relay: the stored event's own id and actor
        source = stored.id
        actor = stored.metadata.get("actor_id") or actor
    else:
        source = event_id(event.event_type(), event.aggregate_id, event.occurred_at, data)
    roles: dict[uuid.UUID, Role | None] = {}
    rows = []
    for webhook in candidates:
        if not await _may_see(bus, webhook, event, server_id, roles):
            continue
        delivery_id = uuid.uuid4()
        payload = {
            "id": str(delivery_id),
            "event": event.event_type(),
            "occurred_at": event.occurred_at.isoformat(),
            "server_id": str(server_id) if server_id else None,
            "data": data,
            "actor": actor,
        }
        rows.append(
            NewDelivery(
                id=delivery_id,
                webhook_id=webhook.id,
                event_id=source,
                event_type=event.event_type(),
                payload=payload,
                created_at=now,
                next_attempt_at=now + lease(settings),
            )
        )
    if rows and (added := await webhooks.add_deliveries(rows)):
        await webhook_queue.enqueue(added)


async def queue_test_delivery(
    webhook: WebhookRecord,
    *,
    webhooks: WebhookStore,
    webhook_queue: DeliveryQueue,
    clock: Clock,
    settings: Settings,
) -> uuid.UUID:
    now = clock.now()
    delivery_id = uuid.uuid4()
    payload = {
        "id": str(delivery_id),
        "event": TEST_EVENT,
        "occurred_at": now.isoformat(),
        "server_id": str(webhook.server_id) if webhook.server_id else None,
        "data": {"webhook_id": str(webhook.id), "message": "a test delivery from mcdash"},
        "actor": str(webhook.owner_id),
    }
    row = NewDelivery(
        id=delivery_id,
        webhook_id=webhook.id,
        event_id=None,
        event_type=TEST_EVENT,
        payload=payload,
        created_at=now,
        next_attempt_at=now + lease(settings),
    )
    await webhooks.add_deliveries([row])
    await webhook_queue.enqueue([delivery_id])
    return delivery_id


async def handle_deliver_webhook(
    command: DeliverWebhook,
    *,
    webhooks: WebhookStore,
    webhook_sender: WebhookSender,
    webhook_resolver: AddressResolver,
    webhook_outcomes: DeliveryOutcomes,
    clock: Clock,
    settings: Settings,
) -> str:
    """One attempt: check the address again (DNS may have changed), post, record the outcome."""
    now = clock.now()
    claimed = await webhooks.claim(command.delivery_id, now=now, lease_until=now + lease(settings))
    if claimed is None:
        return "not due"
    try:
        await check_url(claimed.url, resolver=webhook_resolver, settings=settings)
    except DomainError as exc:
        sent = Sent(error=f"address refused: {exc.detail}")
    else:
        body = encode_body(
            discord_body(claimed.payload)
            if claimed.format is WebhookFormat.DISCORD
            else claimed.payload
        )
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "mcdash-webhooks",
            "X-Mcdash-Event": claimed.event_type,
            "X-Mcdash-Delivery": str(claimed.delivery_id),
            "X-Mcdash-Signature-256": sign(claimed.secret, body),
        }
        sent = await webhook_sender.send(claimed.url, body, headers)
    finished = clock.now()
    if sent.ok:
        status, next_at = DeliveryStatus.DELIVERED, None
    elif claimed.attempts >= settings.webhook_max_attempts:
        status, next_at = DeliveryStatus.FAILED, None
    else:
        status = DeliveryStatus.RETRYING
        delay = retry_delay(claimed.attempts, settings.webhook_retry_base_seconds)
        next_at = finished + timedelta(seconds=delay)
    if sent.error:
        sent = Sent(status=sent.status, error=sent.error[:_ERROR_MAX])
    await webhooks.record(
        claimed.delivery_id, status=status, now=finished, sent=sent, next_attempt_at=next_at
    )
    webhook_outcomes.count(status.value)
    log.info(
        "webhook_delivery_attempted",
        delivery_id=str(claimed.delivery_id),
        attempt=claimed.attempts,
        outcome=status.value,
        response_status=sent.status,
        error=sent.error,
    )
    return status.value


async def handle_requeue_due(
    command: RequeueDueDeliveries,
    *,
    webhooks: WebhookStore,
    webhook_queue: DeliveryQueue,
    clock: Clock,
    settings: Settings,
) -> int:
    now = clock.now()
    due = await webhooks.take_due(now=now, lease_until=now + lease(settings), limit=command.limit)
    if due:
        await webhook_queue.enqueue(due)
    return len(due)


async def handle_prune_deliveries(
    command: PruneDeliveries, *, webhooks: WebhookStore, clock: Clock, settings: Settings
) -> int:
    before = clock.now() - timedelta(days=settings.webhook_delivery_retention_days)
    removed = 0
    for _ in range(command.max_batches):
        gone = await webhooks.prune(before=before, batch=command.batch)
        removed += gone
        if gone < command.batch:
            break
    return removed
