"""Schedules: when to back a server up (and which scheduled backups to keep), or restart,
stop, start it or send it a command, warning the players first."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from app.backups.domain.errors import InvalidSchedule
from app.backups.domain.events import BackupScheduled, BackupScheduleRemoved, ScheduledTaskRan
from app.backups.domain.model import Compression
from app.backups.domain.tasks import WARNED_ACTIONS, Outcome, Task, check_warnings_fit
from app.shared.domain import Aggregate

KEEP_LAST_MAX = 1000
KEEP_DAYS_MAX = 3650
MINUTE = timedelta(minutes=1)


class CronCalendar(Protocol):
    """Reads cron expressions; raises InvalidSchedule saying why one is not valid."""

    def validate(self, expression: str, timezone: str) -> None: ...

    def next_run(self, expression: str, timezone: str, after: datetime) -> datetime | None: ...


def _check_limit(field: str, value: int | None, highest: int, otherwise: str) -> None:
    if value is not None and value < 1:
        raise InvalidSchedule(f"{field} must be at least 1 (got {value}); {otherwise}", field=field)
    if value is not None and value > highest:
        raise InvalidSchedule(
            f"{field} must be at most {highest} (got {value}); {otherwise}", field=field
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Retention:
    """Keep the newest `keep_last` and/or those younger than `keep_days`; None = no such limit."""

    keep_last: int | None = None
    keep_days: int | None = None

    def __post_init__(self) -> None:
        _check_limit("keep_last", self.keep_last, KEEP_LAST_MAX, "omit it to keep any number")
        _check_limit("keep_days", self.keep_days, KEEP_DAYS_MAX, "omit it to keep any age")

    def cutoff(self, now: datetime) -> datetime | None:
        """The creation time before which a backup is too old, or None without an age limit."""
        if not self.keep_days:
            return None
        try:
            return now - timedelta(days=self.keep_days)
        except OverflowError:
            return None

    def expired(
        self, backups: Sequence[tuple[uuid.UUID, datetime]], *, now: datetime
    ) -> list[uuid.UUID]:
        """Of (id, created_at) pairs, those outside a limit; the newest one is always kept."""
        ordered = sorted(backups, key=lambda item: item[1], reverse=True)
        cutoff = self.cutoff(now)
        gone: list[uuid.UUID] = []
        for index, (backup_id, created_at) in enumerate(ordered):
            if index == 0:
                continue
            beyond_count = self.keep_last is not None and index >= self.keep_last
            too_old = cutoff is not None and created_at < cutoff
            if beyond_count or too_old:
                gone.append(backup_id)
        return gone


@dataclass(kw_only=True, eq=False)
class BackupSchedule(Aggregate):
    server_id: uuid.UUID
    cron_expression: str
    timezone: str
    is_active: bool
    only_when_running: bool
    retention: Retention
    compression: Compression
    created_at: datetime
    created_by: uuid.UUID | None = None
    next_run: datetime | None = None
    last_run: datetime | None = None
    task: Task = field(default_factory=Task)
    # The shortest warning sent (or passed over) for the run at next_run; None = none yet.
    warned: int | None = None

    @classmethod
    def create(
        cls,
        *,
        schedule_id: uuid.UUID,
        server_id: uuid.UUID,
        cron_expression: str,
        timezone: str,
        is_active: bool,
        only_when_running: bool,
        retention: Retention,
        compression: Compression,
        calendar: CronCalendar,
        created_by: uuid.UUID | None,
        now: datetime,
        task: Task | None = None,
        minute: timedelta = MINUTE,
    ) -> BackupSchedule:
        schedule = cls(
            id=schedule_id,
            server_id=server_id,
            cron_expression=" ".join(cron_expression.split()),
            timezone=timezone,
            is_active=is_active,
            only_when_running=only_when_running,
            retention=retention,
            compression=compression,
            created_at=now,
            created_by=created_by,
            task=task or Task(),
        )
        schedule._plan(calendar, now, minute)
        return schedule

    def change(
        self,
        *,
        calendar: CronCalendar,
        now: datetime,
        cron_expression: str | None = None,
        timezone: str | None = None,
        is_active: bool | None = None,
        only_when_running: bool | None = None,
        retention: Retention | None = None,
        task: Task | None = None,
        minute: timedelta = MINUTE,
    ) -> None:
        if task is not None:
            self.task = task
        if cron_expression is not None:
            self.cron_expression = " ".join(cron_expression.split())
        if timezone is not None:
            self.timezone = timezone
        if is_active is not None:
            self.is_active = is_active
        if only_when_running is not None:
            self.only_when_running = only_when_running
        if retention is not None:
            self.retention = retention
        self._plan(calendar, now, minute)

    def ran(self, *, at: datetime, calendar: CronCalendar, minute: timedelta = MINUTE) -> None:
        """A run happened (or was skipped) at `at`: a missed backlog collapses into this one run."""
        self.last_run = at
        self.next_run = calendar.next_run(self.cron_expression, self.timezone, at)
        self._forget_warnings(at, minute)
        self.changed = True

    def record_run(
        self,
        *,
        outcome: Outcome,
        now: datetime,
        reason: str | None = None,
        backup_id: uuid.UUID | None = None,
    ) -> None:
        self.record(
            ScheduledTaskRan(
                occurred_at=now,
                schedule_id=self.id,
                server_id=self.server_id,
                action=self.task.action.value,
                outcome=outcome.value,
                reason=reason,
                backup_id=backup_id,
            )
        )

    def due_warning(self, now: datetime, minute: timedelta = MINUTE) -> int | None:
        """The warning to send now: the shortest whose time has come and that was not sent.
        Longer ones that were missed (the scheduler was down) are passed over."""
        if not self.is_active or self.next_run is None or self.next_run <= now:
            return None
        if self.task.action not in WARNED_ACTIONS:
            return None
        due = [
            minutes
            for minutes in self.task.warnings
            if self.next_run - minutes * minute <= now
            and (self.warned is None or minutes < self.warned)
        ]
        return min(due) if due else None

    def warning_sent(self, minutes: int) -> None:
        self.warned = minutes
        self.changed = True

    def _forget_warnings(self, now: datetime, minute: timedelta) -> None:
        """Warnings whose time is already past for the coming run are not sent late."""
        passed = [
            minutes
            for minutes in self.task.warnings
            if self.next_run is not None and self.next_run - minutes * minute <= now
        ]
        self.warned = min(passed) if passed else None

    def remove(self, *, now: datetime) -> None:
        self.record(
            BackupScheduleRemoved(occurred_at=now, schedule_id=self.id, server_id=self.server_id)
        )

    def _plan(self, calendar: CronCalendar, now: datetime, minute: timedelta) -> None:
        calendar.validate(self.cron_expression, self.timezone)
        check_warnings_fit(
            self.task,
            calendar=calendar,
            expression=self.cron_expression,
            timezone=self.timezone,
            now=now,
            minute=minute,
        )
        self.next_run = calendar.next_run(self.cron_expression, self.timezone, now)
        self._forget_warnings(now, minute)
        self.record(
            BackupScheduled(
                occurred_at=now,
                schedule_id=self.id,
                server_id=self.server_id,
                cron_expression=self.cron_expression,
                timezone=self.timezone,
                is_active=self.is_active,
                only_when_running=self.only_when_running,
                keep_last=self.retention.keep_last,
                keep_days=self.retention.keep_days,
                next_run=self.next_run,
                action=self.task.action.value,
                command=self.task.command,
                warnings=self.task.warnings,
                message=self.task.message,
                skip_if_players_online=self.task.skip_if_players_online,
            )
        )
