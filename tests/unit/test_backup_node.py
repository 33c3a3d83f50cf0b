"""The node's backup runner against in-memory fakes: a completion that cannot be recorded
deletes its archive and records the backup failed with the real reason, and says so in the log."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from structlog.testing import capture_logs

from app.backups.application import handlers, node, schedules
from app.backups.application.handlers import BackupPolicy
from app.backups.application.messages import (
    BeginBackupRun,
    CreateBackup,
    CreateSchedule,
    FireDueSchedules,
    GetBackup,
    RecordBackupCompleted,
    RecordBackupFailed,
    RecordRestoreOutcome,
)
from app.backups.domain.model import BackupStatus, Compression
from app.backups.domain.schedule import Retention
from app.backups.infrastructure.cron import ApsCronCalendar
from app.backups.infrastructure.node import BackupNode
from app.backups.infrastructure.progress import Tracker
from app.backups.infrastructure.snapshot import NodeBackupSettings
from app.backups.infrastructure.storage import LocalBackupStorage
from app.servers.infrastructure.files import ServerDirectory
from app.shared.bus import MessageBus
from app.shared.security import Principal, Role
from app.shared.wiring import inject
from tests.fakes import FakeBackupJobs, FakeBackupsUnitOfWork, FakeClock, FakeServerLookup

START = datetime(2026, 3, 1, 10, 0, 20, tzinfo=UTC)
ADMIN = Principal(user_id=uuid.uuid4(), username="root", role=Role.ADMIN, session_id=uuid.uuid4())


class SilentProgress:
    @contextlib.asynccontextmanager
    async def tracking(self, *, operation_id, server_id, kind):
        yield Tracker(kind=kind, operation_id=operation_id, server_id=server_id)


class Node:
    def __init__(self, tmp_path: Path, *, failing_completion: Exception | None = None) -> None:
        self.uow = FakeBackupsUnitOfWork()
        self.servers = FakeServerLookup()
        self.clock = FakeClock(START)
        self.storage = LocalBackupStorage(tmp_path / "backups")
        self.deps = {
            "uow": self.uow,
            "servers": self.servers,
            "jobs": FakeBackupJobs(),
            "clock": self.clock,
            "storage": self.storage,
            "calendar": ApsCronCalendar(),
            "policy": BackupPolicy(compression=Compression.GZIP),
        }
        self.bus = MessageBus()
        for message, handler in (
            (BeginBackupRun, node.handle_begin_backup_run),
            (RecordBackupCompleted, node.handle_record_backup_completed),
            (RecordBackupFailed, node.handle_record_backup_failed),
            (RecordRestoreOutcome, node.handle_record_restore_outcome),
        ):
            self.bus.register(message, inject(handler, self.deps))
        if failing_completion is not None:
            self.bus._handlers[RecordBackupCompleted] = self._raise(failing_completion)
        self.runner = BackupNode(
            bus=self.bus,
            storage=self.storage,
            progress=SilentProgress(),
            settings=NodeBackupSettings(
                gzip_level=1, zstd_level=1, save_timeout_seconds=1, stop_timeout_seconds=1
            ),
        )
        self.servers_dir = tmp_path / "servers"

    @staticmethod
    def _raise(exc: Exception):
        async def handler(message: object) -> None:
            raise exc

        return handler

    def supervisor(self) -> SimpleNamespace:
        return SimpleNamespace(
            directory=lambda sid: ServerDirectory(self.servers_dir / str(sid)),
            managed={},
            node="local",
        )

    async def call(self, handler, message):
        return await inject(handler, self.deps)(message)

    def archives(self) -> list[Path]:
        root = self.storage.root
        return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def a_server_with_a_world(world: Node) -> uuid.UUID:
    sid = world.servers.add(running=False)
    (world.servers_dir / str(sid) / "world").mkdir(parents=True)
    (world.servers_dir / str(sid) / "world" / "level.dat").write_text("generation=1\n")
    return sid


async def scheduled_backup(world: Node, sid: uuid.UUID) -> uuid.UUID:
    await world.call(
        schedules.handle_create_schedule,
        CreateSchedule(actor=ADMIN, server_id=sid, cron_expression="*/1 * * * *", keep_days=365),
    )
    world.clock.advance(60)
    (backup_id,) = await world.call(schedules.handle_fire_due_schedules, FireDueSchedules())
    return backup_id


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        pytest.param("handler", "RuntimeError: the database went away", id="completion-raises"),
        pytest.param(
            "retention", "OverflowError: date value out of range", id="keep-days-retention-raises"
        ),
    ],
)
async def test_a_completion_that_cannot_be_recorded_deletes_the_archive_and_records_why(
    tmp_path, monkeypatch, case, reason
):
    if case == "handler":
        world = Node(tmp_path, failing_completion=RuntimeError("the database went away"))
        sid = await a_server_with_a_world(world)
        backup = await world.call(
            handlers.handle_create_backup, CreateBackup(actor=ADMIN, server_id=sid)
        )
        backup_id = backup.id
    else:
        world = Node(tmp_path)
        sid = await a_server_with_a_world(world)
        backup_id = await scheduled_backup(world, sid)

        def overflowing(self, backups, *, now):
            raise OverflowError("date value out of range")

        monkeypatch.setattr(Retention, "expired", overflowing)

    with capture_logs() as logs:
        await world.runner.backup(world.supervisor(), backup_id)

    stored = world.uow.stored_backups[backup_id]
    assert stored.status is BackupStatus.FAILED
    assert reason in stored.error
    assert "worker stopped" not in stored.error
    assert world.archives() == []
    assert world.uow.stored_locks == {}
    events = {entry["event"]: entry for entry in logs}
    assert reason in events["backup_completion_failed"]["reason"]
    assert reason in events["backup_recorded_failed"]["reason"]


async def test_a_backup_that_completes_keeps_its_archive(tmp_path):
    world = Node(tmp_path)
    sid = await a_server_with_a_world(world)
    backup_id = await scheduled_backup(world, sid)
    await world.runner.backup(world.supervisor(), backup_id)
    stored = world.uow.stored_backups[backup_id]
    assert stored.status is BackupStatus.COMPLETED
    assert [p.name for p in world.archives()] == [Path(stored.file_path).name]


async def test_a_restore_failure_is_recorded_and_logged_with_its_reason(tmp_path):
    world = Node(tmp_path)
    sid = await a_server_with_a_world(world)
    backup = await world.call(
        handlers.handle_create_backup, CreateBackup(actor=ADMIN, server_id=sid)
    )
    await world.runner.backup(world.supervisor(), backup.id)
    world.bus.register(GetBackup, Node._raise(RuntimeError("the storage is unreachable")))
    with capture_logs() as logs:
        await world.runner.restore(world.supervisor(), backup.id, sid, ADMIN.user_id)
    stored = world.uow.stored_backups[backup.id]
    assert stored.restore_status is not None
    assert stored.restore_status.value == "failed"
    assert stored.restore_error == "RuntimeError: the storage is unreachable"
    logged = [entry for entry in logs if entry["event"] == "restore_recorded_failed"]
    assert [entry["reason"] for entry in logged] == [stored.restore_error]
