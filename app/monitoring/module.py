"""The monitoring context: health and metrics of the processes, the audit log, metrics history of
servers and nodes, system sync, cache stats, notifications and webhooks.

It is made of parts (audit, metrics, notifications, sync, webhooks), each in its own modules of
each layer. An application part declares `MESSAGES` and `EVENT_HANDLERS`; an infrastructure part
builds its `deps`, and says what it runs in the background of an API process, what the scheduler
runs for it, and what it runs on a node; an api part gives its `routers()` and `node_routers()`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from fastapi import APIRouter

from app.monitoring.application import audit, metrics, notifications, sync, webhooks
from app.monitoring.domain.audit import V1AuditEntryImported
from app.monitoring.infrastructure import audit as audit_infra
from app.monitoring.infrastructure import metrics as metrics_infra
from app.monitoring.infrastructure import notifications as notifications_infra
from app.monitoring.infrastructure import sync as sync_infra
from app.monitoring.infrastructure import webhooks as webhooks_infra
from app.monitoring.infrastructure.audit_projection import AUDIT
from app.settings import Settings
from app.shared.agent import NodeTokens
from app.shared.domain import DomainEvent
from app.shared.infrastructure import Infrastructure
from app.shared.wiring import Handlers

Task = Callable[[], Coroutine[Any, Any, None]]
_APPLICATION = (audit, metrics, notifications, sync, webhooks)
_INFRASTRUCTURE = (audit_infra, metrics_infra, notifications_infra, sync_infra, webhooks_infra)

EVENTS: tuple[type[DomainEvent], ...] = (V1AuditEntryImported,)
HANDLERS = Handlers(
    messages={
        message: handler for part in _APPLICATION for message, handler in part.MESSAGES.items()
    },
    events=[pair for part in _APPLICATION for pair in part.EVENT_HANDLERS],
    projections=[AUDIT],
)


def wire(
    infra: Infrastructure, *, projectors: Mapping[str, Any], **overrides: Any
) -> dict[str, Any]:
    """`projectors` are the projections of every context, by name (system sync replays one
    that is stuck)."""
    deps: dict[str, Any] = {
        "clock": infra.clock,
        "settings": infra.settings,
        "projectors": projectors,
    }
    for part in _INFRASTRUCTURE:
        deps.update(part.deps(infra))
    deps.update(overrides)
    return deps


def background(infra: Infrastructure, deps: dict[str, Any]) -> list[Task]:
    """What an API process runs beside serving requests."""
    return [task for part in _INFRASTRUCTURE for task in part.background(infra, deps)]


def schedule_jobs(scheduler: AsyncIOScheduler, infra: Infrastructure, deps: dict[str, Any]) -> None:
    """The scheduler's periodic jobs of this context: rollups, retention."""
    for part in _INFRASTRUCTURE:
        part.schedule(scheduler, infra, deps)


def node_tasks(infra: Infrastructure, node: str, servers: Any) -> list[Task]:
    """What a node's runtime runs for this context, given the node's supervisor."""
    return [task for part in _INFRASTRUCTURE for task in part.node_tasks(infra, node, servers)]


def routers() -> list[APIRouter]:
    from app.monitoring import routes
    from app.monitoring.api import audit, metrics, notifications, sync, webhooks

    parts = (audit, metrics, notifications, sync, webhooks)
    return [routes.router, *(router for part in parts for router in part.routers())]


def node_routers(
    settings: Settings, tokens: NodeTokens, node: str, servers: Any
) -> list[APIRouter]:
    """The routes this context adds to a node's agent (/metrics, what the node observes)."""
    from app.monitoring.api import audit, metrics, notifications, sync, webhooks

    parts = (audit, metrics, notifications, sync, webhooks)
    return [r for part in parts for r in part.node_routers(settings, tokens, node, servers)]
