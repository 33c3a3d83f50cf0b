"""The scheduler's backup jobs: fire due schedules, and end backups whose worker went away."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from app.backups.application.messages import FireDueSchedules, SweepInterruptedBackups

if TYPE_CHECKING:
    from app.bootstrap import Container

log = structlog.get_logger(__name__)


async def fire_due_schedules(container: Container) -> None:
    """Schedules live in the table; polling it picks up every change without a reload signal."""
    try:
        requested = await container.bus.handle(FireDueSchedules())
    except Exception:
        log.exception("backup_schedules_not_fired")
        return
    if requested:
        log.info("scheduled_backups_requested", backups=[str(b) for b in requested])


async def sweep_interrupted_backups(container: Container) -> None:
    grace = container.settings.backup_requested_grace_seconds
    try:
        failed = await container.bus.handle(SweepInterruptedBackups(requested_grace_seconds=grace))
    except Exception:
        log.exception("backup_sweep_failed")
        return
    if failed:
        log.warning("interrupted_backups_failed", backups=[str(b) for b in failed])


def schedule_backup_jobs(scheduler: AsyncIOScheduler, container: Container) -> None:
    settings = container.settings
    scheduler.add_job(
        fire_due_schedules,
        "interval",
        seconds=settings.backup_scheduler_tick_seconds,
        args=[container],
        id="backup-schedules",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        sweep_interrupted_backups,
        "interval",
        seconds=settings.backup_sweep_seconds,
        args=[container],
        id="backup-sweep",
        max_instances=1,
        coalesce=True,
    )
