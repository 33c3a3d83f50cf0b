"""The metrics part of the monitoring context: its adapters, and what runs in the background."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from app.monitoring.domain.metrics import HOUR, MINUTE, RAW
from app.monitoring.infrastructure.collector import MetricsCollector, SampledServers
from app.monitoring.infrastructure.metrics_exports import count_servers
from app.monitoring.infrastructure.metrics_store import MetricsStore
from app.shared.infrastructure import Infrastructure

log = structlog.get_logger(__name__)
EXPORT_SECONDS = 15.0


def deps(infra: Infrastructure) -> dict[str, Any]:
    return {"bus": infra.bus, "metrics": MetricsStore(infra.engine)}


def background(
    infra: Infrastructure, deps: dict[str, Any]
) -> list[Callable[[], Coroutine[Any, Any, None]]]:
    return []


async def roll_up_metrics(infra: Infrastructure, store: MetricsStore) -> None:
    """Raw samples into 1-minute and 1-hour rollups, then each level's retention."""
    settings, now = infra.settings, infra.clock.now().timestamp()
    rolled = await store.roll_up(now=now)
    deleted = await store.expire(
        {
            RAW: now - settings.metrics_raw_retention_hours * 3600,
            MINUTE: now - settings.metrics_minute_retention_days * 86400,
            HOUR: now - settings.metrics_hour_retention_days * 86400,
        }
    )
    log.debug("metrics_rolled_up", rolled=rolled, deleted=deleted)


def schedule(scheduler: AsyncIOScheduler, infra: Infrastructure, deps: dict[str, Any]) -> None:
    scheduler.add_job(
        roll_up_metrics,
        "interval",
        seconds=infra.settings.metrics_rollup_seconds,
        args=[infra, deps["metrics"]],
        id="metrics-rollup",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        count_servers,
        "interval",
        seconds=EXPORT_SECONDS,
        args=[infra.engine],
        id="metrics-servers-by-state",
        max_instances=1,
        coalesce=True,
        next_run_time=infra.clock.now(),
    )


def node_tasks(
    infra: Infrastructure, node: str, servers: SampledServers | None
) -> list[Callable[[], Coroutine[Any, Any, None]]]:
    if servers is None:
        return []
    collector = MetricsCollector(
        node=node,
        servers=servers,
        store=MetricsStore(infra.engine),
        redis=infra.redis,
        bus=infra.bus,
        settings=infra.settings,
    )
    return [collector.run]
