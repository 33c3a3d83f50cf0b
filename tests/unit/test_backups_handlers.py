"""Backup handlers through the bootstrapped bus on in-memory fakes: schedules firing,
retention, sweeping, locking."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.backups.application.messages import (
    BeginBackupRun,
    CreateBackup,
    CreateSchedule,
    DeleteBackup,
    FireDueSchedules,
    ImportBackup,
    RecordBackupCompleted,
    RecordBackupFailed,
    RestoreBackup,
    SweepInterruptedBackups,
)
from app.backups.domain.errors import BackupBusy
from app.backups.domain.events import BackupCreated, BackupDeleted, BackupFailed
from app.backups.domain.model import BackupStatus, Compression, RestoreStatus
from app.backups.domain.ports import ArchiveFacts
from app.servers.domain.events import ServerDeleted
from app.shared.agent import NodeUnavailable
from app.shared.domain import Forbidden
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


async def _chunks(*parts: bytes):
    for part in parts:
        yield part


async def test_an_upload_goes_to_the_servers_node_and_is_committed_under_its_key(world):
    sid = world.backups.servers.add(node="b")
    backup = await world.bus.handle(
        ImportBackup(actor=ADMIN, server_id=sid, chunks=_chunks(b"arch", b"ive"))
    )
    assert world.backups.archives.calls == [("upload", "b")]
    assert world.backups.storage.objects == {backup.file_path: b"archive"}
    assert world.backups.uow.stored_backups[backup.id].node == "b"


async def test_code_in_an_upload_without_server_code_is_403_and_aborted_on_the_node(world):
    sid = world.backups.servers.add()
    world.backups.archives.check = lambda data: ArchiveFacts(
        compression=Compression.GZIP,
        size_bytes=len(data),
        sha256="0" * 64,
        members=1,
        code_members=1,
    )
    owner = principal("owner", role=Role.USER)
    world.backups.servers.servers[sid] = replace(
        world.backups.servers.servers[sid], owner_id=owner.user_id
    )
    with pytest.raises(Forbidden):
        await world.bus.handle(ImportBackup(actor=owner, server_id=sid, chunks=_chunks(b"x")))
    assert world.backups.archives.aborted == 1
    assert world.backups.storage.objects == {}
    assert world.backups.uow.stored_backups == {}


async def test_a_restore_whose_archive_cannot_reach_the_target_node_ends_failed(world):
    sid = world.backups.servers.add()
    target = world.backups.servers.add(node="b")
    backup = await world.bus.handle(CreateBackup(actor=ADMIN, server_id=sid))
    await run_to_completion(world, backup.id)

    async def offline(backup, *, node, server_id):
        raise NodeUnavailable(f"node {backup.node} is offline", node=backup.node)

    world.backups.archives.stage = offline  # type: ignore[method-assign]
    with pytest.raises(NodeUnavailable):
        await world.bus.handle(
            RestoreBackup(
                actor=ADMIN, backup_id=backup.id, target_server_id=target, from_other_server=True
            )
        )
    stored = world.backups.uow.stored_backups[backup.id]
    assert stored.restore_status is RestoreStatus.FAILED
    assert "node local is offline" in stored.restore_error
    assert world.backups.uow.stored_locks == {}
    assert world.backups.jobs.queued[-1][0] == "backup", "no restore job was queued"


async def test_a_servers_archives_go_on_its_node_and_an_offline_node_is_only_logged(world):
    sid = uuid.uuid4()
    world.backups.storage.objects[f"{sid}/old.tar.gz"] = b"archive"
    event = ServerDeleted(occurred_at=START, server_id=sid, node="b")
    await world.bus.publish(event)
    assert world.backups.archives.calls == [("delete_all", "b")]
    assert world.backups.storage.objects == {}

    async def offline(node, server_id):
        raise NodeUnavailable(f"node {node} is offline", node=node)

    world.backups.archives.delete_all = offline  # type: ignore[method-assign]
    await world.bus.publish(event)  # no error: the event is not retried for space
