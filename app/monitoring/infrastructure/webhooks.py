"""The webhooks part of the monitoring context: its adapters, and what runs in the background.

Deliveries are sent by node workers (app.node_jobs.deliver_webhook on the shared `webhooks`
queue); the scheduler queues again those due for a retry (or lost with a worker) and prunes
the delivery log.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from app.monitoring.application.webhooks_delivery import PruneDeliveries, RequeueDueDeliveries
from app.monitoring.infrastructure.webhooks_http import (
    DnsResolver,
    HttpWebhookSender,
    PrometheusOutcomes,
    RqDeliveryQueue,
)
from app.monitoring.infrastructure.webhooks_store import PgWebhookStore
from app.shared.bus import MessageBus
from app.shared.infrastructure import Infrastructure

log = structlog.get_logger(__name__)
REQUEUE_SECONDS = 2.0
PRUNE_SECONDS = 3600.0


def deps(infra: Infrastructure) -> dict[str, Any]:
    settings = infra.settings
    return {
        "bus": infra.bus,
        "webhooks": PgWebhookStore(infra.engine, infra.read_pool),
        "webhook_resolver": DnsResolver(),
        "webhook_queue": RqDeliveryQueue(
            infra.sync_redis, job_timeout=int(settings.webhook_timeout_seconds * 3) + 30
        ),
        "webhook_sender": HttpWebhookSender(infra.http, settings.webhook_timeout_seconds),
        "webhook_outcomes": PrometheusOutcomes(),
    }


def background(
    infra: Infrastructure, deps: dict[str, Any]
) -> list[Callable[[], Coroutine[Any, Any, None]]]:
    return []


async def requeue_due(bus: MessageBus) -> None:
    try:
        queued = await bus.handle(RequeueDueDeliveries())
    except Exception:
        log.exception("webhook_requeue_failed")
        return
    if queued:
        log.info("webhook_deliveries_requeued", deliveries=queued)


async def prune_deliveries(bus: MessageBus) -> None:
    try:
        removed = await bus.handle(PruneDeliveries())
    except Exception:
        log.exception("webhook_prune_failed")
        return
    if removed:
        log.info("webhook_deliveries_pruned", deliveries=removed)


def schedule(scheduler: AsyncIOScheduler, infra: Infrastructure, deps: dict[str, Any]) -> None:
    common = {"args": [infra.bus], "max_instances": 1, "coalesce": True}
    scheduler.add_job(
        requeue_due, "interval", seconds=REQUEUE_SECONDS, id="webhook-retries", **common
    )
    scheduler.add_job(
        prune_deliveries, "interval", seconds=PRUNE_SECONDS, id="webhook-retention", **common
    )


def node_tasks(
    infra: Infrastructure, node: str, servers: Any
) -> list[Callable[[], Coroutine[Any, Any, None]]]:
    return []
