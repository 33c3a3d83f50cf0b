"""The audit log's language: which server an event concerns, its one-line summary, and the
filters a reader may apply."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from app.shared.domain import DomainEvent, InvalidInput

SUMMARY_MAX = 300

# What `/servers/{id}/activity` shows: the lifecycle, console, files, backups and groups.
ACTIVITY_ACTIONS: frozenset[str] = frozenset(
    {
        "ServerCreated",
        "ServerConfigurationUpdated",
        "ServerMoved",
        "ServerStartRequested",
        "ServerStarted",
        "ServerStartFailed",
        "ServerStopRequested",
        "ServerStopped",
        "ServerCrashed",
        "ConsoleCommandExecuted",
        "FileModified",
        "BackupCreated",
        "BackupCompleted",
        "BackupFailed",
        "BackupRestored",
        "BackupRestoreFailed",
        "BackupDeleted",
        "BackupScheduled",
        "BackupScheduleRemoved",
        "ScheduledTaskRan",
        "GroupAttachedToServer",
        "GroupDetachedFromServer",
        "ModInstalled",
        "ModUpdated",
        "ModRemoved",
        "ServerVersionChanged",
        "ServerVersionRolledBack",
    }
)


def server_of(
    aggregate_type: str, aggregate_id: uuid.UUID, data: Mapping[str, Any]
) -> uuid.UUID | None:
    """The server an event concerns: a server event's own stream, else its `server_id` field."""
    if aggregate_type == "server":
        return aggregate_id
    value = data.get("server_id") or data.get("target_server_id")
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class SummaryContext:
    """Names known when the event is projected: who acted, and the server's name then."""

    actor: str | None
    server: str | None


def _who(ctx: SummaryContext) -> str:
    return ctx.actor or "the system"


def _server(ctx: SummaryContext, data: Mapping[str, Any]) -> str:
    return ctx.server or str(data.get("name") or data.get("server_id") or "a server")


def _fields(data: Mapping[str, Any]) -> str:
    changed = data.get("changed_fields") or []
    return ", ".join(str(name) for name in changed) if changed else "nothing"


_FILE_VERBS = {
    "written": "edited",
    "created": "created",
    "uploaded": "uploaded",
    "restored": "restored",
    "moved_in": "moved in",
    "moved_out": "moved away",
    "deleted": "deleted",
    "external": "saw an outside change to",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class V1AuditEntryImported(DomainEvent):
    """A row of V1's audit log, kept read-only in the audit history (mcdash import-v1)."""

    aggregate_type: ClassVar[str] = "v1_audit"

    entry_id: uuid.UUID
    action: str
    resource_type: str
    resource_id: str | None = None
    author_id: uuid.UUID | None = None
    server_id: uuid.UUID | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def aggregate_id(self) -> uuid.UUID:
        return self.entry_id


Summarize = Callable[[SummaryContext, Mapping[str, Any]], str]

_SUMMARIES: dict[str, Summarize] = {
    "V1AuditEntryImported": lambda c, d: (
        f"{_who(c)} (in V1): {d.get('action')} on {d.get('resource_type')}"
        f" {d.get('resource_id') or ''}"
    ),
    "ServerCreated": lambda c, d: f"{_who(c)} created {d.get('name') or _server(c, d)}",
    "ServerConfigurationUpdated": lambda c, d: f"{_who(c)} changed {_fields(d)} of {_server(c, d)}",
    "ServerDeleted": lambda c, d: f"{_who(c)} deleted {_server(c, d)}",
    "ServerMoved": lambda c, d: (
        f"{_who(c)} moved {_server(c, d)} from {d.get('from_node')} to {d.get('to_node')}"
    ),
    "ServerStartRequested": lambda c, d: f"{_who(c)} started {_server(c, d)}",
    "ServerStarting": lambda c, d: f"{_server(c, d)} launched (pid {d.get('pid')})",
    "ServerStarted": lambda c, d: f"{_server(c, d)} is running",
    "ServerStartFailed": lambda c, d: f"{_server(c, d)} failed to start: {d.get('reason')}",
    "ServerStopRequested": lambda c, d: (
        f"{_who(c)} {'killed' if d.get('kill') else 'stopped'} {_server(c, d)}"
    ),
    "ServerStopped": lambda c, d: f"{_server(c, d)} stopped",
    "ServerCrashed": lambda c, d: f"{_server(c, d)} crashed: {d.get('reason')}",
    "ServerPlayersChanged": lambda c, d: (
        f"{len(d.get('players') or [])} players online on {_server(c, d)}"
    ),
    "ConsoleCommandExecuted": lambda c, d: f"{_who(c)} ran `{d.get('command')}` on {_server(c, d)}",
    "FileModified": lambda c, d: (
        f"{_who(c)} {_FILE_VERBS.get(str(d.get('action')), str(d.get('action')))}"
        f" {d.get('path')} on {_server(c, d)}"
    ),
    "BackupCreated": lambda c, d: (
        f"{_who(c)} started a {d.get('backup_type', '')} backup of {_server(c, d)}".replace(
            "a  backup", "a backup"
        )
    ),
    "BackupCompleted": lambda c, d: (
        f"backup of {_server(c, d)} completed ({d.get('size_bytes')} bytes)"
    ),
    "BackupFailed": lambda c, d: f"backup of {_server(c, d)} failed: {d.get('reason')}",
    "BackupRestored": lambda c, d: f"{_who(c)} restored a backup onto {_server(c, d)}",
    "BackupRestoreFailed": lambda c, d: (
        f"restoring a backup onto {_server(c, d)} failed: {d.get('reason')}"
    ),
    "BackupDeleted": lambda c, d: f"{_who(c)} deleted a backup of {_server(c, d)}",
    "BackupScheduled": lambda c, d: (
        f"{_who(c)} scheduled {d.get('action') or 'backup'}s of {_server(c, d)}"
        f" ({d.get('cron_expression')})"
    ),
    "ScheduledTaskRan": lambda c, d: (
        f"scheduled {d.get('action')} of {_server(c, d)}: {d.get('outcome')}"
        + (f" ({d.get('reason')})" if d.get("reason") else "")
    ),
    "BackupScheduleRemoved": lambda c, d: f"{_who(c)} removed a backup schedule of {_server(c, d)}",
    "ModInstalled": lambda c, d: (
        f"{_who(c)} installed {d.get('file_name')} on {_server(c, d)}"
        + (" (a dependency)" if d.get("dependency_of") else "")
    ),
    "ModUpdated": lambda c, d: (
        f"{_who(c)} {'updated' if d.get('change') == 'version' else d.get('change')}"
        f" {d.get('file_name')} on {_server(c, d)}"
    ),
    "ModRemoved": lambda c, d: f"{_who(c)} removed {d.get('file_name')} from {_server(c, d)}",
    "ServerVersionChanged": lambda c, d: (
        f"{_who(c)} changed {_server(c, d)} from {d.get('from_type')} {d.get('from_version')}"
        f" to {d.get('to_type')} {d.get('to_version')}"
        + (" (a downgrade, allowed)" if d.get("downgrade") else "")
    ),
    "ServerVersionRolledBack": lambda c, d: (
        f"{_who(c)} rolled {_server(c, d)} back to {d.get('to_type')} {d.get('to_version')}"
    ),
    "GroupCreated": lambda c, d: f"{_who(c)} created group {d.get('name')}",
    "GroupUpdated": lambda c, d: f"{_who(c)} changed {_fields(d)} of a group",
    "GroupDeleted": lambda c, d: f"{_who(c)} deleted a group",
    "PlayerAddedToGroup": lambda c, d: f"{_who(c)} added {d.get('name')} to a group",
    "PlayerRemovedFromGroup": lambda c, d: f"{_who(c)} removed {d.get('name')} from a group",
    "GroupAttachedToServer": lambda c, d: f"{_who(c)} attached a group to {_server(c, d)}",
    "GroupDetachedFromServer": lambda c, d: f"{_who(c)} detached a group from {_server(c, d)}",
    "UserRegistered": lambda c, d: f"{d.get('username')} registered as {d.get('role')}",
    "UserApproved": lambda c, d: f"{_who(c)} approved a user",
    "UserRoleChanged": lambda c, d: (
        f"{_who(c)} changed a user's role from {d.get('old_role')} to {d.get('new_role')}"
    ),
    "UserDeactivated": lambda c, d: f"{_who(c)} deactivated a user",
    "UserReactivated": lambda c, d: f"{_who(c)} reactivated a user",
    "UserProfileUpdated": lambda c, d: f"{_who(c)} changed {_fields(d)} of a profile",
    "UserLoggedIn": lambda c, d: f"{_who(c)} logged in",
    "UserLoggedOut": lambda c, d: f"{_who(c)} logged out",
    "UserSessionsRevoked": lambda c, d: f"sessions of a user were revoked ({d.get('reason')})",
}


def summarize(event_type: str, data: Mapping[str, Any], ctx: SummaryContext) -> str:
    """One line for a person; an event type nobody described gets a generic one."""
    describe = _SUMMARIES.get(event_type)
    try:
        text = describe(ctx, data) if describe else f"{_who(ctx)}: {event_type}"
    except Exception:  # noqa: BLE001 - a malformed payload must not stop the projection
        text = f"{_who(ctx)}: {event_type}"
    line = " ".join(text.split())
    return line if len(line) <= SUMMARY_MAX else line[: SUMMARY_MAX - 1] + "…"


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditFilter:
    """What an admin narrows the log to; `before` is the keyset cursor (a position)."""

    actor_id: uuid.UUID | None = None
    server_id: uuid.UUID | None = None
    action: str | None = None
    resource_type: str | None = None
    resource_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None

    def __post_init__(self) -> None:
        for name, value in (("since", self.since), ("until", self.until)):
            if value is not None and value.tzinfo is None:
                raise InvalidInput(f"{name} needs a time zone (e.g. Z or +02:00)", field=name)
        if self.since and self.until and self.since > self.until:
            raise InvalidInput("since is after until: the time range is reversed", field="since")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One row of the audit log."""

    position: int
    occurred_at: datetime
    actor_id: uuid.UUID | None
    actor_username: str | None
    action: str
    resource_type: str
    resource_id: uuid.UUID
    server_id: uuid.UUID | None
    client_addr: str | None
    request_id: str | None
    summary: str
    details: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditPage:
    """Newest first; `next_before` is the cursor of the next page, None on the last."""

    items: tuple[AuditEntry, ...]
    next_before: int | None
