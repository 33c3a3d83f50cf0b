"""Backup handlers through the bootstrapped bus on in-memory fakes: schedules firing,
retention, sweeping, locking."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.backups.application.messages import (
    BeginBackupRun,
    CreateBackup,
    CreateSchedule,
    DeleteBackup,
    FireDueSchedules,
    RecordBackupCompleted,
    RecordBackupFailed,
    SweepInterruptedBackups,
)
from app.backups.domain.errors import BackupBusy
from app.backups.domain.events import BackupCreated, BackupDeleted, BackupFailed
from app.backups.domain.model import BackupStatus
from app.shared.security import Role
from tests.fakes import FakeApp, FakeClock, FakeServerLookup, fake_app, principal

START = datetime(2026, 3, 1, 10, 0, 20, tzinfo=UTC)
ADMIN = principal("root", role=Role.ADMIN)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[FakeApp]:
    """The bootstrapped app on fakes; backups see servers through a FakeServerLookup."""
    app = fake_app(tmp_path, clock=FakeClock(START), backups={"servers": FakeServerLookup()})
    yield app
    await app.close()


async def make_schedule(world, server_id, **extra):
    body = {"cron_expression": "*/1 * * * *", **extra}
    return await world.bus.handle(CreateSchedule(actor=ADMIN, server_id=server_id, **body))


async def run_to_completion(world, backup_id):
    await world.bus.handle(BeginBackupRun(backup_id=backup_id))
    world.backups.storage.objects[world.backups.uow.stored_backups[backup_id].file_path] = (
        b"archive"
    )
    await world.bus.handle(
        RecordBackupCompleted(backup_id=backup_id, size_bytes=7, sha256="0" * 64, saving_off_ms=3)
    )


async def test_missed_runs_collapse_into_one_and_the_next_run_is_planned(world):
    sid = world.backups.servers.add()
    schedule = await make_schedule(world, sid)
    world.clock.advance(3600)  # an hour of downtime: sixty missed runs
    fired = await world.bus.handle(FireDueSchedules())
    assert len(fired) == 1
    stored = world.backups.uow.stored_schedules[schedule.id]
    assert stored.last_run == world.clock.now()
    assert stored.next_run == datetime(2026, 3, 1, 11, 1, tzinfo=UTC)
    assert await world.bus.handle(FireDueSchedules()) == []
    assert world.backups.jobs.queued == [("backup", "local", str(fired[0]))]


async def test_only_when_running_skips_a_stopped_server_but_plans_the_next_run(world):
    sid = world.backups.servers.add(running=False)
    schedule = await make_schedule(world, sid, only_when_running=True)
    world.clock.advance(60)
    assert await world.bus.handle(FireDueSchedules()) == []
    assert world.backups.uow.stored_schedules[schedule.id].next_run > world.clock.now()
    assert world.backups.uow.stored_backups == {}


async def test_a_schedule_firing_during_a_running_backup_is_skipped(world):
    sid = world.backups.servers.add()
    await make_schedule(world, sid)
    await world.bus.handle(CreateBackup(actor=ADMIN, server_id=sid))
    with pytest.raises(BackupBusy):
        await world.bus.handle(CreateBackup(actor=ADMIN, server_id=sid))
    world.clock.advance(60)
    assert await world.bus.handle(FireDueSchedules()) == []
    assert len(world.backups.uow.stored_backups) == 1


async def test_retention_rotates_only_the_schedules_own_completed_backups(world):
    sid = world.backups.servers.add()
    manual = await world.bus.handle(CreateBackup(actor=ADMIN, server_id=sid))
    await run_to_completion(world, manual.id)
    await make_schedule(world, sid, keep_last=2)
    completed = []
    for _ in range(4):
        world.clock.advance(60)
        (backup_id,) = await world.bus.handle(FireDueSchedules())
        await run_to_completion(world, backup_id)
        completed.append(backup_id)
    left = {b.id for b in world.backups.uow.stored_backups.values()}
    assert left == {manual.id, completed[-1], completed[-2]}
    deleted = [e.backup_id for e in world.backups.uow.events_of(BackupDeleted)]
    assert deleted == completed[:2]
    assert set(world.backups.storage.objects) == {
        world.backups.uow.stored_backups[i].file_path for i in left
    }


async def test_a_failed_backup_releases_the_server(world):
    sid = world.backups.servers.add()
    backup = await world.bus.handle(CreateBackup(actor=ADMIN, server_id=sid))
    await world.bus.handle(BeginBackupRun(backup_id=backup.id))
    await world.bus.handle(RecordBackupFailed(backup_id=backup.id, reason="S3 storage unreachable"))
    assert world.backups.uow.stored_backups[backup.id].status is BackupStatus.FAILED
    assert world.backups.uow.stored_locks == {}
    assert world.backups.uow.events_of(BackupFailed)[0].reason == "S3 storage unreachable"


async def test_sweep_fails_silent_running_backups_and_stale_requests_only(world):
    sid, other, third = (
        world.backups.servers.add(),
        world.backups.servers.add(),
        world.backups.servers.add(),
    )
    silent = await world.bus.handle(CreateBackup(actor=ADMIN, server_id=sid))
    alive = await world.bus.handle(CreateBackup(actor=ADMIN, server_id=other))
    for backup in (silent, alive):
        await world.bus.handle(BeginBackupRun(backup_id=backup.id))
    world.backups.progress.alive.add(alive.id)
    world.clock.advance(60)
    fresh = await world.bus.handle(CreateBackup(actor=ADMIN, server_id=third))
    failed = await world.bus.handle(SweepInterruptedBackups(requested_grace_seconds=600))
    assert failed == [silent.id]
    assert world.backups.uow.stored_backups[silent.id].error == "worker stopped during the backup"
    assert world.backups.uow.stored_backups[alive.id].status is BackupStatus.RUNNING
    assert world.backups.uow.stored_backups[fresh.id].status is BackupStatus.REQUESTED
    world.clock.advance(601)
    world.backups.progress.alive.add(alive.id)
    failed = await world.bus.handle(SweepInterruptedBackups(requested_grace_seconds=600))
    assert failed == [fresh.id]
    assert "picked the backup up" in world.backups.uow.stored_backups[fresh.id].error
    assert set(world.backups.uow.stored_locks) == {other}
    assert len(world.backups.uow.events_of(BackupCreated)) == 3


async def test_deleting_a_backup_whose_storage_is_unreachable_still_deletes_it(world):
    """The row goes (the user asked for it); the archive left behind is said in the log, not
    turned into a 500 after the deletion was committed."""
    sid = world.backups.servers.add()
    backup = await world.bus.handle(CreateBackup(actor=ADMIN, server_id=sid))
    await run_to_completion(world, backup.id)

    def unreachable(key: str) -> None:
        raise OSError(f"S3 delete failed: connection refused ({key})")

    world.backups.storage.delete = unreachable  # type: ignore[method-assign]
    await world.bus.handle(DeleteBackup(actor=ADMIN, backup_id=backup.id))

    assert backup.id not in world.backups.uow.stored_backups
