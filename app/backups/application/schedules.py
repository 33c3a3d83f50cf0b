"""Handlers of backup schedules: validated cron, retention, and the scheduler's firing of them."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime

import structlog

from app.backups.application.handlers import BackupPolicy, UowFactory
from app.backups.application.messages import (
    CreateSchedule,
    DeleteSchedule,
    FireDueSchedules,
    GetSchedule,
    ListSchedules,
    UpdateSchedule,
)
from app.backups.domain.errors import BackupBusy, ScheduleNotFound
from app.backups.domain.model import Backup, BackupType
from app.backups.domain.ports import BackupJobs, BackupReadModel, BackupsUnitOfWork, ServerLookup
from app.backups.domain.schedule import BackupSchedule, CronCalendar, Retention
from app.shared.domain import Clock, NotFound, new_id
from app.shared.security import Principal

log = structlog.get_logger(__name__)


async def _visible(
    schedule: BackupSchedule | None,
    actor: Principal,
    schedule_id: uuid.UUID,
    servers: ServerLookup,
) -> BackupSchedule:
    if schedule is None:
        raise ScheduleNotFound(f"schedule {schedule_id} not found")
    try:
        await servers.find(actor, schedule.server_id)
    except NotFound:
        raise ScheduleNotFound(f"schedule {schedule_id} not found") from None
    return schedule


async def handle_create_schedule(
    cmd: CreateSchedule,
    *,
    uow: UowFactory,
    servers: ServerLookup,
    calendar: CronCalendar,
    policy: BackupPolicy,
    clock: Clock,
) -> BackupSchedule:
    server = await servers.find(cmd.actor, cmd.server_id)
    schedule = BackupSchedule.create(
        schedule_id=new_id(),
        server_id=server.id,
        cron_expression=cmd.cron_expression,
        timezone=cmd.timezone,
        is_active=cmd.is_active,
        only_when_running=cmd.only_when_running,
        retention=Retention(keep_last=cmd.keep_last, keep_days=cmd.keep_days),
        compression=cmd.compression or policy.compression,
        calendar=calendar,
        created_by=cmd.actor.user_id,
        now=clock.now(),
    )
    async with uow() as work:
        work.schedules.add(schedule)
        await work.commit()
    return schedule


async def handle_update_schedule(
    cmd: UpdateSchedule,
    *,
    uow: UowFactory,
    servers: ServerLookup,
    calendar: CronCalendar,
    clock: Clock,
) -> BackupSchedule:
    async with uow() as work:
        schedule = await _visible(
            await work.schedules.get(cmd.schedule_id, lock=True),
            cmd.actor,
            cmd.schedule_id,
            servers,
        )
        retention = schedule.retention
        if cmd.keep_last is not None or cmd.clear_keep_last:
            retention = replace(retention, keep_last=cmd.keep_last)
        if cmd.keep_days is not None or cmd.clear_keep_days:
            retention = replace(retention, keep_days=cmd.keep_days)
        schedule.change(
            calendar=calendar,
            now=clock.now(),
            cron_expression=cmd.cron_expression,
            timezone=cmd.timezone,
            is_active=cmd.is_active,
            only_when_running=cmd.only_when_running,
            retention=Retention(keep_last=retention.keep_last, keep_days=retention.keep_days),
        )
        await work.commit()
    return schedule


async def handle_delete_schedule(
    cmd: DeleteSchedule, *, uow: UowFactory, servers: ServerLookup, clock: Clock
) -> None:
    async with uow() as work:
        schedule = await _visible(
            await work.schedules.get(cmd.schedule_id, lock=True),
            cmd.actor,
            cmd.schedule_id,
            servers,
        )
        schedule.remove(now=clock.now())
        await work.schedules.remove(schedule)
        await work.commit()


async def handle_list_schedules(
    query: ListSchedules, *, read_model: BackupReadModel, servers: ServerLookup
) -> list[BackupSchedule]:
    await servers.find(query.actor, query.server_id)
    return await read_model.schedules(query.server_id)


async def handle_get_schedule(
    query: GetSchedule, *, read_model: BackupReadModel, servers: ServerLookup
) -> BackupSchedule:
    schedule = await read_model.schedule(query.schedule_id)
    return await _visible(schedule, query.actor, query.schedule_id, servers)


async def handle_fire_due_schedules(
    cmd: FireDueSchedules,
    *,
    uow: UowFactory,
    servers: ServerLookup,
    jobs: BackupJobs,
    calendar: CronCalendar,
    clock: Clock,
) -> list[uuid.UUID]:
    """Each due schedule runs once, however many runs were missed, then plans its next run."""
    now = clock.now()
    requested: list[tuple[str, uuid.UUID]] = []
    async with uow() as work:
        due = await work.schedules.due(now)
    for schedule_id in [schedule.id for schedule in due]:
        async with uow() as work:
            schedule = await work.schedules.get(schedule_id, lock=True)
            if schedule is None or not schedule.is_active or not schedule.next_run:
                continue
            if schedule.next_run > now:
                continue
            schedule.ran(at=now, calendar=calendar)
            backup = await _scheduled_backup(work, schedule, servers, now=now)
            await work.commit()
        if backup is not None:
            requested.append((backup.node, backup.id))
    for node, backup_id in requested:
        await jobs.backup(node, backup_id)
    return [backup_id for _, backup_id in requested]


async def _scheduled_backup(
    work: BackupsUnitOfWork, schedule: BackupSchedule, servers: ServerLookup, *, now: datetime
) -> Backup | None:
    try:
        server = await servers.find(None, schedule.server_id)
    except NotFound:
        return None
    if schedule.only_when_running and not server.running:
        log.info("scheduled_backup_skipped", schedule_id=str(schedule.id), reason="not running")
        return None
    backup = Backup.request(
        backup_id=new_id(),
        server_id=server.id,
        node=server.node,
        backup_type=BackupType.SCHEDULED,
        compression=schedule.compression,
        schedule_id=schedule.id,
        now=now,
    )
    try:
        await work.locks.acquire(
            server.id, operation="backup", backup_id=backup.id, node=server.node
        )
    except BackupBusy as exc:
        log.warning("scheduled_backup_skipped", schedule_id=str(schedule.id), reason=exc.detail)
        return None
    work.backups.add(backup)
    return backup
