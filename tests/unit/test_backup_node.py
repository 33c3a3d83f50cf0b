"""The node's backup runner against in-memory fakes: a completion that cannot be recorded
deletes its archive and records the backup failed with the real reason, and says so in the log."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from app.backups.application.messages import CreateBackup, CreateSchedule, FireDueSchedules
from app.backups.domain.model import BackupStatus, RestoreStatus, staged_key
from app.backups.domain.schedule import Retention
from app.backups.infrastructure.storage import LocalBackupStorage
from app.backups.module import node_runner
from app.shared.security import Role
from tests.fakes import (
    FakeClock,
    FakeNodeServers,
    FakeServerLookup,
    fake_app,
    fake_settings,
    principal,
)
from tests.fakes.backups import FakeBackupsSession

START = datetime(2026, 3, 1, 10, 0, 20, tzinfo=UTC)
ADMIN = principal("root", role=Role.ADMIN)


class Node:
    """The bootstrapped app on fakes, its archives on a local storage, and the node's backup
    runner as `bootstrap()` builds it."""

    def __init__(self, tmp_path: Path) -> None:
        settings = fake_settings(tmp_path, backup_gzip_level=1, backup_save_timeout_seconds=1)
        self.app = fake_app(
            tmp_path,
            clock=FakeClock(START),
            settings=settings,
            backups={
                "servers": FakeServerLookup(),
                "storage": LocalBackupStorage(tmp_path / "backups"),
            },
        )
        self.bus = self.app.bus
        self.clock = self.app.clock
        self.uow = self.app.backups.uow
        self.servers = self.app.backups.servers
        self.storage = self.app.backups.storage
        self.servers_dir = tmp_path / "servers"
        self.node = FakeNodeServers(self.servers_dir)
        container = self.app.container
        self.runner = node_runner(container.infra, container.deps["backups"], servers=self.node)

    def archives(self) -> list[Path]:
        root = self.storage.root
        return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[Node]:
    node = Node(tmp_path)
    yield node
    await node.app.close()


async def a_server_with_a_world(world: Node) -> uuid.UUID:
    sid = world.servers.add(running=False)
    (world.servers_dir / str(sid) / "world").mkdir(parents=True)
    (world.servers_dir / str(sid) / "world" / "level.dat").write_text("generation=1\n")
    return sid


async def scheduled_backup(world: Node, sid: uuid.UUID) -> uuid.UUID:
    await world.bus.handle(
        CreateSchedule(actor=ADMIN, server_id=sid, cron_expression="*/1 * * * *", keep_days=365)
    )
    world.clock.advance(60)
    (backup_id,) = await world.bus.handle(FireDueSchedules())
    return backup_id


def refuse_completions(session: FakeBackupsSession) -> None:
    """The database goes away as a backup is recorded completed."""
    if any(b.status is BackupStatus.COMPLETED for b in session.backups.items.values()):
        raise RuntimeError("the database went away")


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
    world, monkeypatch, case, reason
):
    if case == "handler":
        world.uow.before_commit = refuse_completions
        sid = await a_server_with_a_world(world)
        backup = await world.bus.handle(CreateBackup(actor=ADMIN, server_id=sid))
        backup_id = backup.id
    else:
        sid = await a_server_with_a_world(world)
        backup_id = await scheduled_backup(world, sid)

        def overflowing(self, backups, *, now):
            raise OverflowError("date value out of range")

        monkeypatch.setattr(Retention, "expired", overflowing)

    with capture_logs() as logs:
        await world.runner.backup(backup_id)

    stored = world.uow.stored_backups[backup_id]
    assert stored.status is BackupStatus.FAILED
    assert reason in stored.error
    assert "worker stopped" not in stored.error
    assert world.archives() == []
    assert world.uow.stored_locks == {}
    events = {entry["event"]: entry for entry in logs}
    assert reason in events["backup_completion_failed"]["reason"]
    assert reason in events["backup_recorded_failed"]["reason"]


async def test_a_backup_that_completes_keeps_its_archive(world):
    sid = await a_server_with_a_world(world)
    backup_id = await scheduled_backup(world, sid)
    await world.runner.backup(backup_id)
    stored = world.uow.stored_backups[backup_id]
    assert stored.status is BackupStatus.COMPLETED
    assert [p.name for p in world.archives()] == [Path(stored.file_path).name]


async def test_a_restore_failure_is_recorded_and_logged_with_its_reason(world):
    sid = await a_server_with_a_world(world)
    backup = await world.bus.handle(CreateBackup(actor=ADMIN, server_id=sid))
    await world.runner.backup(backup.id)

    async def unreachable(backup_id: uuid.UUID) -> None:
        raise RuntimeError("the storage is unreachable")

    world.app.backups.read_model.get = unreachable  # type: ignore[method-assign]
    with capture_logs() as logs:
        await world.runner.restore(backup.id, sid, ADMIN.user_id)
    stored = world.uow.stored_backups[backup.id]
    assert stored.restore_status is not None
    assert stored.restore_status.value == "failed"
    assert stored.restore_error == "RuntimeError: the storage is unreachable"
    logged = [entry for entry in logs if entry["event"] == "restore_recorded_failed"]
    assert [entry["reason"] for entry in logged] == [stored.restore_error]


async def test_a_restore_of_another_nodes_backup_reads_the_staged_copy_and_removes_it(world):
    sid = await a_server_with_a_world(world)
    backup = await world.bus.handle(CreateBackup(actor=ADMIN, server_id=sid))
    await world.runner.backup(backup.id)
    stored = world.uow.stored_backups[backup.id]
    staged = world.storage.root / staged_key(sid, backup.id, stored.compression)
    staged.parent.mkdir(parents=True)
    (world.storage.root / stored.file_path).rename(staged)  # as the API staged it from node a
    world.node.node = "b"
    (world.servers_dir / str(sid) / "world" / "level.dat").write_text("generation=2\n")

    await world.runner.restore(backup.id, sid, ADMIN.user_id)

    restored = world.uow.stored_backups[backup.id]
    assert restored.restore_status is RestoreStatus.COMPLETED, restored.restore_error
    level = world.servers_dir / str(sid) / "world" / "level.dat"
    assert level.read_text() == "generation=1\n"
    assert not staged.exists()
