"""Backup handlers against in-memory fakes: schedules firing, retention, sweeping, locking."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from app.backups.application import handlers, node, schedules
from app.backups.application.handlers import BackupPolicy
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
from app.backups.domain.model import BackupStatus, Compression
from app.backups.infrastructure.cron import ApsCronCalendar
from app.shared.security import Principal, Role
from app.shared.wiring import inject
from tests.fakes import (
    FakeBackupJobs,
    FakeBackupStorage,
    FakeBackupsUnitOfWork,
    FakeClock,
    FakeHeartbeats,
    FakeServerLookup,
)

START = datetime(2026, 3, 1, 10, 0, 20, tzinfo=UTC)


@pytest.fixture
def world():
    class World:
        uow = FakeBackupsUnitOfWork()
        servers = FakeServerLookup()
        jobs = FakeBackupJobs()
        clock = FakeClock(START)
        storage = FakeBackupStorage()
        heartbeats = FakeHeartbeats()
        calendar = ApsCronCalendar()
        admin = Principal(
            user_id=uuid.uuid4(), username="root", role=Role.ADMIN, session_id=uuid.uuid4()
        )

        def deps(self) -> dict:
            return {
                "uow": self.uow,
                "servers": self.servers,
                "jobs": self.jobs,
                "clock": self.clock,
                "storage": self.storage,
                "progress": self.heartbeats,
                "calendar": self.calendar,
                "policy": BackupPolicy(compression=Compression.GZIP),
            }

    return World()


def call(handler, message, world):
    return inject(handler, world.deps())(message)


async def make_schedule(world, server_id, **extra):
    body = {"cron_expression": "*/1 * * * *", **extra}
    return await call(
        schedules.handle_create_schedule,
        CreateSchedule(actor=world.admin, server_id=server_id, **body),
        world,
    )


async def run_to_completion(world, backup_id):
    await call(node.handle_begin_backup_run, BeginBackupRun(backup_id=backup_id), world)
    world.storage.objects[world.uow.stored_backups[backup_id].file_path] = b"archive"
    await call(
        node.handle_record_backup_completed,
        RecordBackupCompleted(backup_id=backup_id, size_bytes=7, sha256="0" * 64, saving_off_ms=3),
        world,
    )


async def test_missed_runs_collapse_into_one_and_the_next_run_is_planned(world):
    sid = world.servers.add()
    schedule = await make_schedule(world, sid)
    world.clock.advance(3600)  # an hour of downtime: sixty missed runs
    fired = await call(schedules.handle_fire_due_schedules, FireDueSchedules(), world)
    assert len(fired) == 1
    stored = world.uow.stored_schedules[schedule.id]
    assert stored.last_run == world.clock.now()
    assert stored.next_run == datetime(2026, 3, 1, 11, 1, tzinfo=UTC)
    assert await call(schedules.handle_fire_due_schedules, FireDueSchedules(), world) == []
    assert world.jobs.queued == [("backup", "local", str(fired[0]))]


async def test_only_when_running_skips_a_stopped_server_but_plans_the_next_run(world):
    sid = world.servers.add(running=False)
    schedule = await make_schedule(world, sid, only_when_running=True)
    world.clock.advance(60)
    assert await call(schedules.handle_fire_due_schedules, FireDueSchedules(), world) == []
    assert world.uow.stored_schedules[schedule.id].next_run > world.clock.now()
    assert world.uow.stored_backups == {}


async def test_a_schedule_firing_during_a_running_backup_is_skipped(world):
    sid = world.servers.add()
    await make_schedule(world, sid)
    await call(handlers.handle_create_backup, CreateBackup(actor=world.admin, server_id=sid), world)
    with pytest.raises(BackupBusy):
        await call(
            handlers.handle_create_backup, CreateBackup(actor=world.admin, server_id=sid), world
        )
    world.clock.advance(60)
    assert await call(schedules.handle_fire_due_schedules, FireDueSchedules(), world) == []
    assert len(world.uow.stored_backups) == 1


async def test_retention_rotates_only_the_schedules_own_completed_backups(world):
    sid = world.servers.add()
    manual = await call(
        handlers.handle_create_backup, CreateBackup(actor=world.admin, server_id=sid), world
    )
    await run_to_completion(world, manual.id)
    await make_schedule(world, sid, keep_last=2)
    completed = []
    for _ in range(4):
        world.clock.advance(60)
        (backup_id,) = await call(schedules.handle_fire_due_schedules, FireDueSchedules(), world)
        await run_to_completion(world, backup_id)
        completed.append(backup_id)
    left = {b.id for b in world.uow.stored_backups.values()}
    assert left == {manual.id, completed[-1], completed[-2]}
    deleted = [e.backup_id for e in world.uow.events_of(BackupDeleted)]
    assert deleted == completed[:2]
    assert set(world.storage.objects) == {world.uow.stored_backups[i].file_path for i in left}


async def test_a_failed_backup_releases_the_server(world):
    sid = world.servers.add()
    backup = await call(
        handlers.handle_create_backup, CreateBackup(actor=world.admin, server_id=sid), world
    )
    await call(node.handle_begin_backup_run, BeginBackupRun(backup_id=backup.id), world)
    await call(
        node.handle_record_backup_failed,
        RecordBackupFailed(backup_id=backup.id, reason="S3 storage unreachable"),
        world,
    )
    assert world.uow.stored_backups[backup.id].status is BackupStatus.FAILED
    assert world.uow.stored_locks == {}
    assert world.uow.events_of(BackupFailed)[0].reason == "S3 storage unreachable"


async def test_sweep_fails_silent_running_backups_and_stale_requests_only(world):
    sid, other, third = world.servers.add(), world.servers.add(), world.servers.add()
    silent = await call(
        handlers.handle_create_backup, CreateBackup(actor=world.admin, server_id=sid), world
    )
    alive = await call(
        handlers.handle_create_backup, CreateBackup(actor=world.admin, server_id=other), world
    )
    for backup in (silent, alive):
        await call(node.handle_begin_backup_run, BeginBackupRun(backup_id=backup.id), world)
    world.heartbeats.alive.add(alive.id)
    world.clock.advance(60)
    fresh = await call(
        handlers.handle_create_backup, CreateBackup(actor=world.admin, server_id=third), world
    )
    failed = await call(
        node.handle_sweep_interrupted_backups,
        SweepInterruptedBackups(requested_grace_seconds=600),
        world,
    )
    assert failed == [silent.id]
    assert world.uow.stored_backups[silent.id].error == "worker stopped during the backup"
    assert world.uow.stored_backups[alive.id].status is BackupStatus.RUNNING
    assert world.uow.stored_backups[fresh.id].status is BackupStatus.REQUESTED
    world.clock.advance(601)
    world.heartbeats.alive.add(alive.id)
    failed = await call(
        node.handle_sweep_interrupted_backups,
        SweepInterruptedBackups(requested_grace_seconds=600),
        world,
    )
    assert failed == [fresh.id]
    assert "picked the backup up" in world.uow.stored_backups[fresh.id].error
    assert set(world.uow.stored_locks) == {other}
    assert len(world.uow.events_of(BackupCreated)) == 3


async def test_deleting_a_backup_whose_storage_is_unreachable_still_deletes_it(world):
    """The row goes (the user asked for it); the archive left behind is said in the log, not
    turned into a 500 after the deletion was committed."""
    sid = world.servers.add()
    backup = await call(
        handlers.handle_create_backup, CreateBackup(actor=world.admin, server_id=sid), world
    )
    await run_to_completion(world, backup.id)

    def unreachable(key: str) -> None:
        raise OSError(f"S3 delete failed: connection refused ({key})")

    world.storage.delete = unreachable  # type: ignore[method-assign]
    await call(
        handlers.handle_delete_backup, DeleteBackup(actor=world.admin, backup_id=backup.id), world
    )

    assert backup.id not in world.uow.stored_backups
