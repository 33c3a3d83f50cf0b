"""The scheduler's backup jobs: warn players, fire due schedules, and end backups whose worker
went away."""

from __future__ import annotations

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from app.backups.application.messages import (
    FireDueSchedules,
    SendScheduleWarnings,
    SweepInterruptedBackups,
)
from app.settings import Settings
from app.shared.bus import MessageBus

log = structlog.get_logger(__name__)


async def fire_due_schedules(bus: MessageBus) -> None:
    """Schedules live in the table; polling it picks up every change without a reload signal.
    Warnings go first, so the shortest one is said before the run it announces."""
    try:
        warned = await bus.handle(SendScheduleWarnings())
    except Exception:
        log.exception("schedule_warnings_not_sent")
    else:
        if warned:
            log.info("schedule_warnings_sent", schedules=[str(s) for s in warned])
    try:
        requested = await bus.handle(FireDueSchedules())
    except Exception:
        log.exception("backup_schedules_not_fired")
        return
    if requested:
        log.info("scheduled_backups_requested", backups=[str(b) for b in requested])


async def sweep_interrupted_backups(bus: MessageBus, grace_seconds: float) -> None:
    try:
        failed = await bus.handle(SweepInterruptedBackups(requested_grace_seconds=grace_seconds))
    except Exception:
        log.exception("backup_sweep_failed")
        return
    if failed:
        log.warning("interrupted_backups_failed", backups=[str(b) for b in failed])


def schedule_backup_jobs(scheduler: AsyncIOScheduler, bus: MessageBus, settings: Settings) -> None:
    scheduler.add_job(
        fire_due_schedules,
        "interval",
        seconds=settings.backup_scheduler_tick_seconds,
        args=[bus],
        id="backup-schedules",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        sweep_interrupted_backups,
        "interval",
        seconds=settings.backup_sweep_seconds,
        args=[bus, settings.backup_requested_grace_seconds],
        id="backup-sweep",
        max_instances=1,
        coalesce=True,
    )
