"""Handlers of schedules: validated cron, retention, tasks, and the scheduler's firing of them."""

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
from app.backups.application.tasks import (
    PendingRun,
    TaskPolicy,
    checked_task,
    decide_run,
    dispatch_run,
    skip_reason,
)
from app.backups.domain.errors import BackupBusy, ScheduleNotFound
from app.backups.domain.model import Backup, BackupType
from app.backups.domain.ports import (
    BackupJobs,
    BackupReadModel,
    BackupsUnitOfWork,
    ServerControl,
    ServerLookup,
)
from app.backups.domain.schedule import BackupSchedule, CronCalendar, Retention
from app.backups.domain.tasks import Outcome, Task, TaskAction
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
    control: ServerControl,
    tasks: TaskPolicy,
    clock: Clock,
) -> BackupSchedule:
    server = await servers.find(cmd.actor, cmd.server_id)
    task = Task(
        action=cmd.action,
        command=cmd.command,
        warnings=cmd.warnings,
        message=cmd.message,
        skip_if_players_online=cmd.skip_if_players_online,
    )
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
        task=checked_task(task, control),
        minute=tasks.minute,
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
    control: ServerControl,
    tasks: TaskPolicy,
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
        current = schedule.task
        task = Task(
            action=current.action,
            command=current.command if cmd.command is None else cmd.command,
            warnings=current.warnings if cmd.warnings is None else cmd.warnings,
            message=None if cmd.clear_message else cmd.message or current.message,
            skip_if_players_online=current.skip_if_players_online
            if cmd.skip_if_players_online is None
            else cmd.skip_if_players_online,
        )
        schedule.change(
            calendar=calendar,
            now=clock.now(),
            cron_expression=cmd.cron_expression,
            timezone=cmd.timezone,
            is_active=cmd.is_active,
            only_when_running=cmd.only_when_running,
            retention=Retention(keep_last=retention.keep_last, keep_days=retention.keep_days),
            task=checked_task(task, control),
            minute=tasks.minute,
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
    control: ServerControl,
    tasks: TaskPolicy,
    clock: Clock,
) -> list[uuid.UUID]:
    """Each due schedule runs once, however many runs were missed, then plans its next run."""
    now = clock.now()
    requested: list[tuple[str, uuid.UUID]] = []
    pending: list[PendingRun] = []
    async with uow() as work:
        due = await work.schedules.due(now)
    for schedule_id in [schedule.id for schedule in due]:
        backup: Backup | None = None
        run: PendingRun | None = None
        async with uow() as work:
            schedule = await work.schedules.get(schedule_id, lock=True)
            if schedule is None or not schedule.is_active or not schedule.next_run:
                continue
            if schedule.next_run > now:
                continue
            schedule.ran(at=now, calendar=calendar, minute=tasks.minute)
            if schedule.task.action is TaskAction.BACKUP:
                backup = await _scheduled_backup(work, schedule, servers, now=now)
            else:
                run = await decide_run(schedule, servers, now=now)
            await work.commit()
        if backup is not None:
            requested.append((backup.node, backup.id))
        if run is not None:
            pending.append(run)
    for node, backup_id in requested:
        await jobs.backup(node, backup_id)
    for run in pending:
        await dispatch_run(run, uow=uow, control=control, clock=clock)
    return [backup_id for _, backup_id in requested]


async def _scheduled_backup(
    work: BackupsUnitOfWork, schedule: BackupSchedule, servers: ServerLookup, *, now: datetime
) -> Backup | None:
    try:
        server = await servers.find(None, schedule.server_id)
    except NotFound:
        return None
    reason = skip_reason(schedule, server)
    if reason is not None:
        log.info("scheduled_backup_skipped", schedule_id=str(schedule.id), reason=reason)
        schedule.record_run(outcome=Outcome.SKIPPED, now=now, reason=reason)
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
        schedule.record_run(outcome=Outcome.SKIPPED, now=now, reason=exc.detail)
        return None
    work.backups.add(backup)
    schedule.record_run(outcome=Outcome.REQUESTED, now=now, backup_id=backup.id)
    return backup
