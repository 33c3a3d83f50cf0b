"""The notifications part of the monitoring context: its messages and handlers.

Event handlers turn server, backup and registration events into stored notifications (one
INSERT ... SELECT per event, whatever the audience's size) and then push the new rows to each
user's channel. The relay delivers an event at least once: a second delivery inserts nothing
(the rows are keyed by user and event position) and so pushes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.backups.domain.events import (
    BackupCompleted,
    BackupEvent,
    BackupFailed,
    BackupRestored,
    BackupRestoreFailed,
)
from app.monitoring.application import sockets_metrics, streams
from app.monitoring.domain.notifications import (
    ADMINS,
    EVERY_SERVER,
    Audience,
    EventKey,
    Notice,
    NotificationPage,
    NotificationPublisher,
    NotificationStore,
    NotificationView,
)
from app.servers.application.messages import GetServer
from app.servers.domain.events import (
    ServerCrashed,
    ServerEvent,
    ServerStarted,
    ServerStartFailed,
    ServerStopped,
)
from app.shared.bus import Command, MessageBus, Query
from app.shared.domain import Clock, DomainError, DomainEvent, NotFound
from app.shared.security import Principal
from app.shared.wiring import Handler
from app.users.domain.events import UserRegistered

# Messages


@dataclass(frozen=True, slots=True, kw_only=True)
class ListNotifications(Query[NotificationPage]):
    actor: Principal
    unread_only: bool = False
    before: uuid.UUID | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class ListNotificationsAfter(Query[Sequence[NotificationView] | None]):
    """What a stream client missed after the notification it saw last (None: unknown id)."""

    actor: Principal
    after: uuid.UUID
    limit: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkNotificationRead(Command[NotificationView]):
    actor: Principal
    notification_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkAllNotificationsRead(Command[int]):
    actor: Principal


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishNotice(Command[int]):
    """A notice that comes from no stored event (a group sync failure on a node, say)."""

    notice: Notice
    audience: Audience


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifyAccessSyncFailed(Command[int]):
    """A node could not bring a server's ops.json / whitelist.json (or its JVM) in line.

    Sent by the groups context's sync on the node; it comes from no stored event, so each failed
    sync is one notification (for the owner and every user who sees every server)."""

    server_id: uuid.UUID
    failures: tuple[str, ...]
    check_only: bool = False


# What each event tells

_SHOWN_FAILURES = 20


def access_sync_notice(
    server_id: uuid.UUID, name: str, failures: Sequence[str], *, check_only: bool
) -> Notice:
    shown = [failure[:300] for failure in failures[:_SHOWN_FAILURES]]
    what = "checked" if check_only else "synced"
    return Notice(
        type="groups.sync_failed",
        severity="error",
        title=f"Ops and whitelist of {name} could not be {what}"[:200],
        body="\n".join(shown)[:1000],
        server_id=server_id,
        data={
            "server_name": name,
            "failures": shown,
            "failure_count": len(failures),
            "check_only": check_only,
        },
    )


def server_notice(event: ServerEvent, name: str) -> Notice | None:
    data: dict[str, Any] = {"server_name": name}
    match event:
        case ServerStarted():
            return Notice(
                type="server.started", severity="success", title=f"{name} started", data=data
            )
        case ServerStopped(exit_code=code):
            return Notice(
                type="server.stopped",
                severity="info",
                title=f"{name} stopped",
                data={**data, "exit_code": code},
            )
        case ServerCrashed(will_restart=True, reason=reason, exit_code=code):
            return Notice(
                type="server.crashed",
                severity="error",
                title=f"{name} crashed; restarting",
                body=reason[:1000],
                data={**data, "exit_code": code, "will_restart": True},
            )
        case ServerCrashed(reason=reason, exit_code=code):
            return Notice(
                type="server.crashed",
                severity="error",
                title=f"{name} crashed; the restart policy gave up",
                body=f"{reason[:900]}\nIt stays stopped until someone starts it.",
                data={**data, "exit_code": code, "will_restart": False},
            )
        case ServerStartFailed(reason=reason):
            return Notice(
                type="server.start_failed",
                severity="error",
                title=f"{name} failed to start",
                body=reason[:1000],
                data=data,
            )
    return None


def backup_notice(event: BackupEvent, name: str) -> Notice | None:
    data: dict[str, Any] = {"server_name": name, "backup_id": str(event.backup_id)}
    match event:
        case BackupCompleted(size_bytes=size):
            return Notice(
                type="backup.completed",
                severity="success",
                title=f"Backup of {name} completed",
                data={**data, "size_bytes": size},
            )
        case BackupFailed(reason=reason):
            return Notice(
                type="backup.failed",
                severity="error",
                title=f"Backup of {name} failed",
                body=reason[:1000],
                data=data,
            )
        case BackupRestored():
            return Notice(
                type="restore.completed",
                severity="success",
                title=f"{name} was restored",
                data=data,
            )
        case BackupRestoreFailed(reason=reason):
            return Notice(
                type="restore.failed",
                severity="error",
                title=f"Restore of {name} failed",
                body=reason[:1000],
                data=data,
            )
    return None


# Handlers


async def _deliver(
    notice: Notice,
    audience: Audience,
    key: EventKey | None,
    store: NotificationStore,
    publisher: NotificationPublisher,
    clock: Clock,
) -> int:
    stored = await store.notify(notice, audience, key=key, at=clock.now())
    if stored:
        await publisher.publish(stored)
    return len(stored)


async def _owner_and_name(bus: MessageBus, server_id: uuid.UUID) -> tuple[uuid.UUID | None, str]:
    """The system view of the server (actor None); a server deleted since: no owner, its id."""
    try:
        server = await bus.handle(GetServer(actor=None, server_id=server_id))
    except DomainError:
        return None, str(server_id)
    return server.owner_id, server.name


async def notify_server_event(
    event: DomainEvent,
    *,
    bus: MessageBus,
    notification_store: NotificationStore,
    notification_publisher: NotificationPublisher,
    clock: Clock,
) -> None:
    if isinstance(event, BackupRestored | BackupRestoreFailed):
        server_id = event.target_server_id
    elif isinstance(event, ServerEvent | BackupEvent):
        server_id = event.server_id
    else:
        return
    owner, name = await _owner_and_name(bus, server_id)
    notice = (
        server_notice(event, name)
        if isinstance(event, ServerEvent)
        else backup_notice(event, name)
        if isinstance(event, BackupEvent)
        else None
    )
    if notice is None:
        return
    notice = Notice(
        type=notice.type,
        severity=notice.severity,
        title=notice.title[:200],
        body=notice.body,
        server_id=server_id,
        data=notice.data,
    )
    audience = Audience(roles=EVERY_SERVER, user_id=owner)
    await _deliver(
        notice, audience, EventKey.of(event), notification_store, notification_publisher, clock
    )


async def notify_registration(
    event: DomainEvent,
    *,
    notification_store: NotificationStore,
    notification_publisher: NotificationPublisher,
    clock: Clock,
) -> None:
    if not isinstance(event, UserRegistered) or event.is_approved:
        return
    notice = Notice(
        type="user.registration_pending",
        severity="warning",
        title=f"{event.username} registered and waits for approval"[:200],
        data={"user_id": str(event.user_id), "username": event.username},
    )
    await _deliver(
        notice,
        Audience(roles=ADMINS),
        EventKey.of(event),
        notification_store,
        notification_publisher,
        clock,
    )


async def handle_publish_notice(
    cmd: PublishNotice,
    *,
    notification_store: NotificationStore,
    notification_publisher: NotificationPublisher,
    clock: Clock,
) -> int:
    return await _deliver(
        cmd.notice, cmd.audience, None, notification_store, notification_publisher, clock
    )


async def handle_access_sync_failed(
    cmd: NotifyAccessSyncFailed,
    *,
    bus: MessageBus,
    notification_store: NotificationStore,
    notification_publisher: NotificationPublisher,
    clock: Clock,
) -> int:
    if not cmd.failures:
        return 0
    owner, name = await _owner_and_name(bus, cmd.server_id)
    notice = access_sync_notice(cmd.server_id, name, cmd.failures, check_only=cmd.check_only)
    audience = Audience(roles=EVERY_SERVER, user_id=owner)
    return await _deliver(notice, audience, None, notification_store, notification_publisher, clock)


async def handle_list(query: ListNotifications, *, notification_store: NotificationStore) -> Any:
    return await notification_store.page(
        query.actor.user_id, unread_only=query.unread_only, before=query.before, limit=query.limit
    )


async def handle_list_after(
    query: ListNotificationsAfter, *, notification_store: NotificationStore
) -> Sequence[NotificationView] | None:
    return await notification_store.after(query.actor.user_id, query.after, limit=query.limit)


async def handle_mark_read(
    cmd: MarkNotificationRead, *, notification_store: NotificationStore, clock: Clock
) -> NotificationView:
    view = await notification_store.mark_read(
        cmd.actor.user_id, cmd.notification_id, at=clock.now()
    )
    if view is None:
        raise NotFound(f"notification {cmd.notification_id} not found")
    return view


async def handle_mark_all_read(
    cmd: MarkAllNotificationsRead, *, notification_store: NotificationStore, clock: Clock
) -> int:
    return await notification_store.mark_all_read(cmd.actor.user_id, at=clock.now())


MESSAGES: dict[type[Any], Handler] = {
    ListNotifications: handle_list,
    ListNotificationsAfter: handle_list_after,
    MarkNotificationRead: handle_mark_read,
    MarkAllNotificationsRead: handle_mark_all_read,
    PublishNotice: handle_publish_notice,
    NotifyAccessSyncFailed: handle_access_sync_failed,
    **streams.MESSAGES,
    sockets_metrics.GetSystemSnapshot: sockets_metrics.handle_system_snapshot,
}
EVENT_HANDLERS: list[tuple[type[DomainEvent], Handler]] = [
    *(
        (event, notify_server_event)
        for event in (
            ServerStarted,
            ServerStopped,
            ServerCrashed,
            ServerStartFailed,
            BackupCompleted,
            BackupFailed,
            BackupRestored,
            BackupRestoreFailed,
        )
    ),
    (UserRegistered, notify_registration),
]
