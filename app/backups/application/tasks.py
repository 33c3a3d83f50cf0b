"""Scheduled tasks besides backups: checking them when they are written, warning the players
before a restart or a stop, and running them through the servers context's ServerControl."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog

from app.backups.application.handlers import UowFactory
from app.backups.application.messages import SendScheduleWarnings
from app.backups.domain.ports import ServerControl, ServerLookup, ServerRef
from app.backups.domain.schedule import BackupSchedule
from app.backups.domain.tasks import WARNING_MINUTES_MAX, Outcome, Task, TaskAction
from app.shared.domain import Clock, DomainError, NotFound

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskPolicy:
    """`minute`: how long a warning minute lasts (shorter only in tests)."""

    minute: timedelta = timedelta(minutes=1)


def checked_task(task: Task, control: ServerControl) -> Task:
    """The task with its command as the console policy lets it through; a warning must pass
    the policy too, so a denied `say` is refused now rather than at every run."""
    if task.command is not None:
        task = replace(task, command=control.check_command(task.command))
    if task.warnings:
        control.check_command("say " + task.warning_text(WARNING_MINUTES_MAX))
    return task


def skip_reason(schedule: BackupSchedule, server: ServerRef) -> str | None:
    """Why the schedule's run is skipped on the server as it is, or None to run it."""
    task = schedule.task
    if task.skip_if_players_online and server.players_online > 0:
        return f"{server.players_online} player(s) online"
    if task.action is TaskAction.START:
        return "the server is already running" if server.running else None
    if not server.running and (schedule.only_when_running or task.action is not TaskAction.BACKUP):
        return "the server is not running"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingRun:
    """A run decided in the schedule's transaction, to dispatch after its commit."""

    schedule_id: uuid.UUID
    server_id: uuid.UUID
    action: TaskAction
    command: str | None


async def decide_run(
    schedule: BackupSchedule, servers: ServerLookup, *, now: datetime
) -> PendingRun | None:
    """A non-backup run: recorded skipped now (with why), or returned to dispatch."""
    try:
        server = await servers.find(None, schedule.server_id)
    except NotFound:
        schedule.record_run(outcome=Outcome.SKIPPED, now=now, reason="the server is gone")
        return None
    reason = skip_reason(schedule, server)
    if reason is not None:
        log.info("scheduled_task_skipped", schedule_id=str(schedule.id), reason=reason)
        schedule.record_run(outcome=Outcome.SKIPPED, now=now, reason=reason)
        return None
    return PendingRun(
        schedule_id=schedule.id,
        server_id=server.id,
        action=schedule.task.action,
        command=schedule.task.command,
    )


async def dispatch_run(
    run: PendingRun, *, uow: UowFactory, control: ServerControl, clock: Clock
) -> None:
    """Ask the servers context to act, then record the outcome on the schedule."""
    try:
        said = await control.perform(run.action.value, run.server_id, command=run.command)
    except DomainError as exc:
        outcome, reason = Outcome.FAILED, exc.detail
        log.warning("scheduled_task_failed", schedule_id=str(run.schedule_id), reason=reason)
    else:
        outcome = Outcome.DONE if run.action is TaskAction.COMMAND else Outcome.REQUESTED
        reason = said
    async with uow() as work:
        schedule = await work.schedules.get(run.schedule_id, lock=True)
        if schedule is None:
            return
        schedule.record_run(outcome=outcome, now=clock.now(), reason=reason)
        await work.commit()


async def handle_send_schedule_warnings(
    cmd: SendScheduleWarnings,
    *,
    uow: UowFactory,
    servers: ServerLookup,
    control: ServerControl,
    tasks: TaskPolicy,
    clock: Clock,
) -> list[uuid.UUID]:
    """Each warning is sent once, at its minute before the run; one that was missed is not
    sent late, only the shortest one due."""
    now = clock.now()
    async with uow() as work:
        soon = await work.schedules.warning_soon(now + WARNING_MINUTES_MAX * tasks.minute)
    warned: list[uuid.UUID] = []
    for schedule_id in [schedule.id for schedule in soon]:
        async with uow() as work:
            schedule = await work.schedules.get(schedule_id, lock=True)
            minutes = schedule.due_warning(now, tasks.minute) if schedule else None
            if schedule is None or minutes is None:
                continue
            schedule.warning_sent(minutes)
            await work.commit()
        try:
            server = await servers.find(None, schedule.server_id)
            if not server.running:
                continue
            await control.perform(
                TaskAction.COMMAND.value,
                server.id,
                command="say " + schedule.task.warning_text(minutes),
            )
        except DomainError as exc:
            log.warning("schedule_warning_failed", schedule_id=str(schedule_id), reason=exc.detail)
            continue
        warned.append(schedule_id)
    return warned
