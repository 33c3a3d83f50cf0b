"""What each event tells whom: the notice (type, severity, title, body) and its audience, with a
recording store and publisher (no database): the mapping is the domain's, not the SQL's."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from app.backups.domain.events import (
    BackupCompleted,
    BackupDeleted,
    BackupFailed,
    BackupRestored,
    BackupRestoreFailed,
)
from app.monitoring.application import notifications as app_notifications
from app.monitoring.application.notifications import (
    NotifyAccessSyncFailed,
    access_sync_notice,
    handle_access_sync_failed,
    notify_registration,
    notify_server_event,
)
from app.monitoring.domain.notifications import (
    ADMINS,
    EVERY_SERVER,
    Audience,
    EventKey,
    Notice,
    NotificationView,
)
from app.servers.application.messages import GetServer
from app.servers.domain.events import (
    ServerCrashed,
    ServerPlayersChanged,
    ServerStarted,
    ServerStartFailed,
    ServerStopped,
)
from app.shared.domain import NotFound
from app.shared.security import Role
from app.users.domain.events import UserRegistered
from tests.fakes.core import FakeClock

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SERVER = uuid.uuid4()
OWNER = uuid.uuid4()


@dataclass
class ServerStandIn:
    owner_id: uuid.UUID
    name: str


class Bus:
    """Answers GetServer (the system view) for the one server it knows."""

    def __init__(self, *, known: bool = True) -> None:
        self.known = known
        self.asked: list[Any] = []

    async def handle(self, message: Any) -> Any:
        self.asked.append(message)
        assert isinstance(message, GetServer)
        assert message.actor is None, "notifications look servers up as the system"
        if not self.known or message.server_id != SERVER:
            raise NotFound("no such server")
        return ServerStandIn(owner_id=OWNER, name="lobby")


class Store:
    def __init__(self) -> None:
        self.calls: list[tuple[Notice, Audience, EventKey | None]] = []

    async def notify(
        self, notice: Notice, audience: Audience, *, key: EventKey | None, at: datetime
    ) -> Sequence[NotificationView]:
        self.calls.append((notice, audience, key))
        view = NotificationView(
            id=uuid.uuid4(),
            user_id=OWNER,
            created_at=at,
            type=notice.type,
            severity=notice.severity,
            title=notice.title,
            body=notice.body,
            server_id=notice.server_id,
            data=notice.data,
            read_at=None,
        )
        return [view]


class Publisher:
    def __init__(self) -> None:
        self.published: list[NotificationView] = []

    async def publish(self, views: Sequence[NotificationView]) -> None:
        self.published.extend(views)


@pytest.fixture
def ports() -> tuple[Bus, Store, Publisher]:
    return Bus(), Store(), Publisher()


async def told(event: Any, ports: tuple[Bus, Store, Publisher]) -> list[tuple[Any, ...]]:
    bus, store, publisher = ports
    await notify_server_event(
        event,
        bus=bus,  # type: ignore[arg-type]
        notification_store=store,
        notification_publisher=publisher,
        clock=FakeClock(NOW),
    )
    assert len(publisher.published) == len(store.calls), "what is stored is pushed"
    return store.calls


def server_event(kind: type, **fields: Any) -> Any:
    return kind(occurred_at=NOW, server_id=SERVER, **fields)


def backup_event(kind: type, **fields: Any) -> Any:
    return kind(occurred_at=NOW, backup_id=uuid.uuid4(), server_id=SERVER, **fields)


@pytest.mark.parametrize(
    ("event", "type_", "severity", "title"),
    [
        pytest.param(
            server_event(ServerStarted, pid=1, detected_by="log"),
            "server.started",
            "success",
            "lobby started",
            id="started",
        ),
        pytest.param(
            server_event(ServerStopped, exit_code=0),
            "server.stopped",
            "info",
            "lobby stopped",
            id="stopped",
        ),
        pytest.param(
            server_event(ServerCrashed, exit_code=137, reason="killed", will_restart=True),
            "server.crashed",
            "error",
            "lobby crashed; restarting",
            id="crashed-restarting",
        ),
        pytest.param(
            server_event(ServerCrashed, exit_code=137, reason="killed", will_restart=False),
            "server.crashed",
            "error",
            "lobby crashed; the restart policy gave up",
            id="crashed-gave-up",
        ),
        pytest.param(
            server_event(ServerStartFailed, reason="no java"),
            "server.start_failed",
            "error",
            "lobby failed to start",
            id="start-failed",
        ),
        pytest.param(
            backup_event(
                BackupCompleted, size_bytes=10, sha256="0" * 64, saving_off_ms=None, duration_ms=1
            ),
            "backup.completed",
            "success",
            "Backup of lobby completed",
            id="backup-completed",
        ),
        pytest.param(
            backup_event(BackupFailed, reason="disk full"),
            "backup.failed",
            "error",
            "Backup of lobby failed",
            id="backup-failed",
        ),
        pytest.param(
            backup_event(
                BackupRestored, target_server_id=SERVER, safety_backup_id=None, requested_by=None
            ),
            "restore.completed",
            "success",
            "lobby was restored",
            id="restored",
        ),
        pytest.param(
            backup_event(BackupRestoreFailed, target_server_id=SERVER, reason="corrupt"),
            "restore.failed",
            "error",
            "Restore of lobby failed",
            id="restore-failed",
        ),
    ],
)
async def test_a_server_or_backup_event_tells_the_owner_and_who_sees_every_server(
    ports, event, type_, severity, title
):
    ((notice, audience, key),) = await told(event, ports)
    assert (notice.type, notice.severity, notice.title) == (type_, severity, title)
    assert notice.server_id == SERVER
    assert notice.data["server_name"] == "lobby"
    assert audience == Audience(roles=EVERY_SERVER, user_id=OWNER)
    assert set(audience.roles) == {Role.ADMIN, Role.OPERATOR}
    assert key == EventKey.of(event), "keyed by the event: a redelivery notifies nobody twice"


async def test_a_crash_the_policy_gives_up_on_says_so(ports):
    crashed = server_event(
        ServerCrashed, exit_code=1, reason="OutOfMemoryError", will_restart=False
    )
    ((notice, _, _),) = await told(crashed, ports)
    assert notice.data == {"server_name": "lobby", "exit_code": 1, "will_restart": False}
    assert notice.body.startswith("OutOfMemoryError")
    assert "stays stopped" in notice.body
    restarting = server_event(ServerCrashed, exit_code=1, reason="x", will_restart=True)
    ((_, _, _), (again, _, _)) = await told(restarting, ports)
    assert again.data["will_restart"] is True
    assert "stays stopped" not in again.body


async def test_a_long_reason_is_cut(ports):
    crashed = server_event(ServerStartFailed, reason="x" * 5000)
    ((notice, _, _),) = await told(crashed, ports)
    assert len(notice.body) == 1000


async def test_a_restore_is_about_the_server_restored_not_the_backups(ports):
    other = uuid.uuid4()
    restored = BackupRestored(
        occurred_at=NOW,
        backup_id=uuid.uuid4(),
        server_id=other,
        target_server_id=SERVER,
        safety_backup_id=None,
        requested_by=None,
    )
    ((notice, audience, _),) = await told(restored, ports)
    assert notice.server_id == SERVER
    assert audience.user_id == OWNER


async def test_a_server_deleted_since_tells_those_who_see_every_server_by_its_id():
    bus, store, publisher = Bus(known=False), Store(), Publisher()
    await told(server_event(ServerStopped, exit_code=0), (bus, store, publisher))
    ((notice, audience, _),) = store.calls
    assert notice.title == f"{SERVER} stopped"
    assert audience == Audience(roles=EVERY_SERVER, user_id=None)


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(server_event(ServerPlayersChanged, players=("a",)), id="players-changed"),
        pytest.param(backup_event(BackupDeleted, reason="retention"), id="backup-deleted"),
        pytest.param(
            UserRegistered(
                occurred_at=NOW,
                user_id=uuid.uuid4(),
                username="x",
                email="x@example.com",
                role=Role.USER,
                is_approved=True,
            ),
            id="user-registered-to-the-server-handler",
        ),
    ],
)
async def test_an_event_without_a_notice_tells_nobody(ports, event):
    assert await told(event, ports) == []


def test_only_the_events_with_a_notice_are_subscribed():
    subscribed = {event for event, _ in app_notifications.EVENT_HANDLERS}
    assert ServerPlayersChanged not in subscribed
    assert BackupDeleted not in subscribed
    assert {ServerCrashed, BackupFailed, UserRegistered} <= subscribed


def registered(*, approved: bool) -> UserRegistered:
    return UserRegistered(
        occurred_at=NOW,
        user_id=uuid.uuid4(),
        username="newcomer",
        email="n@example.com",
        role=Role.USER,
        is_approved=approved,
    )


async def test_a_registration_waiting_for_approval_tells_admins_only():
    store, publisher = Store(), Publisher()
    event = registered(approved=False)
    await notify_registration(
        event, notification_store=store, notification_publisher=publisher, clock=FakeClock(NOW)
    )
    ((notice, audience, key),) = store.calls
    assert notice.type == "user.registration_pending"
    assert notice.severity == "warning"
    assert notice.title == "newcomer registered and waits for approval"
    assert notice.data == {"user_id": str(event.user_id), "username": "newcomer"}
    assert audience == Audience(roles=ADMINS)
    assert audience.user_id is None
    assert Role.OPERATOR not in audience.roles
    assert key == EventKey.of(event)


async def test_an_approved_registration_tells_nobody():
    store, publisher = Store(), Publisher()
    await notify_registration(
        registered(approved=True),
        notification_store=store,
        notification_publisher=publisher,
        clock=FakeClock(NOW),
    )
    assert store.calls == []
    assert publisher.published == []


async def test_a_failed_group_sync_tells_the_owner_and_who_sees_every_server(ports):
    bus, store, publisher = ports
    failures = tuple(f"whitelist add P{n}: no answer" for n in range(30))
    sent = await handle_access_sync_failed(
        NotifyAccessSyncFailed(server_id=SERVER, failures=failures),
        bus=bus,  # type: ignore[arg-type]
        notification_store=store,
        notification_publisher=publisher,
        clock=FakeClock(NOW),
    )
    assert sent == 1
    ((notice, audience, key),) = store.calls
    assert (notice.type, notice.severity) == ("groups.sync_failed", "error")
    assert notice.title == "Ops and whitelist of lobby could not be synced"
    assert notice.server_id == SERVER
    assert len(notice.data["failures"]) == 20, "a bounded list"
    assert notice.data["failure_count"] == 30
    assert len(notice.body) <= 1000
    assert audience == Audience(roles=EVERY_SERVER, user_id=OWNER)
    assert key is None, "no stored event: each failed sync is told"
    assert len(publisher.published) == 1


async def test_a_group_sync_without_failures_tells_nobody(ports):
    bus, store, publisher = ports
    sent = await handle_access_sync_failed(
        NotifyAccessSyncFailed(server_id=SERVER, failures=()),
        bus=bus,  # type: ignore[arg-type]
        notification_store=store,
        notification_publisher=publisher,
        clock=FakeClock(NOW),
    )
    assert sent == 0
    assert store.calls == []
    assert bus.asked == []


def test_a_drift_check_that_fails_says_checked():
    notice = access_sync_notice(SERVER, "lobby", ["ops.json is not valid JSON"], check_only=True)
    assert notice.title == "Ops and whitelist of lobby could not be checked"
    assert notice.data["check_only"] is True
    assert notice.body == "ops.json is not valid JSON"
