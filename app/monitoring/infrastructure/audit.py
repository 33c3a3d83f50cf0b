"""The audit part of the monitoring context: its adapters, and what runs in the background."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from app.monitoring.application.audit import PurgeAuditLog
from app.monitoring.infrastructure.audit_store import SqlAuditLog
from app.shared.infrastructure import Infrastructure

log = structlog.get_logger(__name__)


def deps(infra: Infrastructure) -> dict[str, Any]:
    store = SqlAuditLog(infra.engine, infra.read_engine)
    return {"bus": infra.bus, "audit_log": store, "audit_maintenance": store}


def background(
    infra: Infrastructure, deps: dict[str, Any]
) -> list[Callable[[], Coroutine[Any, Any, None]]]:
    return []  # the log is a projection (audit_projection.AUDIT), run with the others


def schedule(scheduler: AsyncIOScheduler, infra: Infrastructure, deps: dict[str, Any]) -> None:
    async def purge_audit_log() -> None:
        deleted = await infra.bus.handle(PurgeAuditLog())
        if deleted:
            log.info("audit_log_purged", rows=deleted)

    scheduler.add_job(
        purge_audit_log,
        "interval",
        hours=1,
        id="audit-retention",
        max_instances=1,
        coalesce=True,
    )


def node_tasks(
    infra: Infrastructure, node: str, servers: Any
) -> list[Callable[[], Coroutine[Any, Any, None]]]:
    return []
