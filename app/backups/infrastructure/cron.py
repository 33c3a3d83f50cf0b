"""Cron expressions read by APScheduler's CronTrigger, so what we validate is what fires."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from app.backups.domain.errors import InvalidSchedule


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(
            f"unknown timezone {timezone!r}; use an IANA name such as UTC or Europe/Berlin",
            field="timezone",
        ) from None


def _trigger(expression: str, timezone: str) -> CronTrigger:
    zone = _zone(timezone)
    fields = expression.split()
    if len(fields) != 5:
        raise InvalidSchedule(
            f"cron expression {expression!r} has {len(fields)} fields; it needs 5 "
            "(minute hour day-of-month month day-of-week), e.g. '0 3 * * *'",
            field="cron_expression",
        )
    try:
        return CronTrigger.from_crontab(expression, timezone=zone)
    except (ValueError, KeyError) as exc:
        raise InvalidSchedule(
            f"cron expression {expression!r} is not valid: {exc}", field="cron_expression"
        ) from None


class ApsCronCalendar:
    def validate(self, expression: str, timezone: str) -> None:
        _trigger(expression, timezone)

    def next_run(self, expression: str, timezone: str, after: datetime) -> datetime | None:
        """The first fire time strictly after `after`."""
        fire: datetime | None = _trigger(expression, timezone).get_next_fire_time(
            None, after + timedelta(microseconds=1)
        )
        return fire
