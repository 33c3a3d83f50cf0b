"""What a schedule does when it fires: a backup, a restart, a stop, a start or a console
command, with warnings to the players before a restart or a stop."""

from __future__ import annotations

import enum
import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from app.backups.domain.errors import InvalidSchedule
from app.shared.domain import unstorable_character

WARNINGS_MAX = 10
WARNING_MINUTES_MAX = 1440
MESSAGE_MAX = 150  # `say ` and the rendered message stay under the console's 200 characters
PLACEHOLDERS = frozenset({"minutes"})
GAP_SAMPLES = 1000


class TaskAction(enum.StrEnum):
    BACKUP = "backup"
    RESTART = "restart"
    STOP = "stop"
    START = "start"
    COMMAND = "command"


WARNED_ACTIONS = frozenset({TaskAction.RESTART, TaskAction.STOP})
DEFAULT_MESSAGES = {
    TaskAction.RESTART: "Server restarts in {minutes} minute(s)",
    TaskAction.STOP: "Server stops in {minutes} minute(s)",
}


class Outcome(enum.StrEnum):
    REQUESTED = "requested"  # a backup was requested, or a lifecycle job queued
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"


def _check_message(message: str) -> None:
    if len(message) > MESSAGE_MAX:
        raise InvalidSchedule(
            f"message must be at most {MESSAGE_MAX} characters (got {len(message)})",
            field="message",
        )
    if not message.strip() or unstorable_character(message) is not None:
        raise InvalidSchedule(
            "message must be one line of text without control characters", field="message"
        )
    try:
        parts = list(string.Formatter().parse(message))
    except ValueError as exc:
        raise InvalidSchedule(
            f"message is not a valid template ({exc}); write {{minutes}}, and {{{{ }}}} for braces",
            field="message",
        ) from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            raise InvalidSchedule(
                f"message may only use the placeholder {{minutes}} (got {{{name}}})",
                field="message",
            )


def _check_warnings(warnings: tuple[int, ...]) -> None:
    if len(warnings) > WARNINGS_MAX:
        raise InvalidSchedule(
            f"at most {WARNINGS_MAX} warnings (got {len(warnings)})", field="warnings"
        )
    for minutes in warnings:
        if not 1 <= minutes <= WARNING_MINUTES_MAX:
            raise InvalidSchedule(
                f"each warning is 1 to {WARNING_MINUTES_MAX} minutes before the run "
                f"(got {minutes})",
                field="warnings",
            )
    if len(set(warnings)) != len(warnings):
        raise InvalidSchedule("warnings must be distinct", field="warnings")


@dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    """The action of a schedule; `warnings` are minutes before the run, longest first."""

    action: TaskAction = TaskAction.BACKUP
    command: str | None = None
    warnings: tuple[int, ...] = field(default=())
    message: str | None = None
    skip_if_players_online: bool = False

    def __post_init__(self) -> None:
        if self.action is TaskAction.COMMAND and not (self.command or "").strip():
            raise InvalidSchedule("a command task needs a command", field="command")
        if self.action is not TaskAction.COMMAND and self.command is not None:
            raise InvalidSchedule(
                f"command is only for the command action, not {self.action.value}",
                field="command",
            )
        if self.action not in WARNED_ACTIONS and (self.warnings or self.message is not None):
            raise InvalidSchedule(
                f"warnings and message are only for restart and stop, not {self.action.value}",
                field="warnings",
            )
        _check_warnings(self.warnings)
        object.__setattr__(self, "warnings", tuple(sorted(self.warnings, reverse=True)))
        if self.message is not None:
            _check_message(self.message)

    def warning_text(self, minutes: int) -> str:
        template = self.message or DEFAULT_MESSAGES.get(self.action, "{minutes}")
        return template.format(minutes=minutes)


class Calendar(Protocol):
    def next_run(self, expression: str, timezone: str, after: datetime) -> datetime | None: ...


def check_warnings_fit(
    task: Task,
    *,
    calendar: Calendar,
    expression: str,
    timezone: str,
    now: datetime,
    minute: timedelta,
) -> None:
    """Refuse warnings that reach back to (or past) the previous run: each must be shorter
    than the shortest time between two runs of the cron expression."""
    if not task.warnings:
        return
    longest = task.warnings[0] * minute
    previous = calendar.next_run(expression, timezone, now)
    for _ in range(GAP_SAMPLES):
        if previous is None:
            return
        following = calendar.next_run(expression, timezone, previous)
        if following is None:
            return
        if following - previous <= longest:
            raise InvalidSchedule(
                f"the longest warning ({task.warnings[0]} minutes) is not shorter than the "
                f"time between runs of {expression!r} ({following - previous}, from {previous}); "
                "use shorter warnings or a cron whose runs are further apart",
                field="warnings",
            )
        previous = following
