"""Handlers of what nodes and the scheduler report: runs begun, ended, restored, interrupted."""

from __future__ import annotations

import uuid
from datetime import timedelta

import structlog

from app.backups.application.handlers import UowFactory, delete_quietly
from app.backups.application.messages import (
    BeginBackupRun,
    CreateSafetyBackup,
    FailInterruptedBackups,
    RecordBackupCompleted,
    RecordBackupFailed,
    RecordRestoreOutcome,
    SweepInterruptedBackups,
)
from app.backups.domain.errors import BackupNotFound
from app.backups.domain.model import Backup, BackupStatus, BackupType
from app.backups.domain.ports import ArchiveStore, BackupsUnitOfWork, OperationHeartbeats
from app.shared.domain import Clock, new_id

log = structlog.get_logger(__name__)

INTERRUPTED = "worker stopped during the backup"
UNFINISHED_RESTORE = "the restore never finished: no worker is working on it"


async def _load(work: BackupsUnitOfWork, backup_id: uuid.UUID) -> Backup:
    backup = await work.backups.get(backup_id, lock=True)
    if backup is None:
        raise BackupNotFound(f"backup {backup_id} not found")
    return backup


async def handle_begin_backup_run(cmd: BeginBackupRun, *, uow: UowFactory, clock: Clock) -> Backup:
    async with uow() as work:
        backup = await _load(work, cmd.backup_id)
        backup.start(now=clock.now())
        await work.commit()
    return backup


async def handle_create_safety_backup(
    cmd: CreateSafetyBackup, *, uow: UowFactory, clock: Clock
) -> Backup:
    now = clock.now()
    backup = Backup.request(
        backup_id=new_id(),
        server_id=cmd.server_id,
        node=cmd.node,
        backup_type=BackupType.SAFETY,
        compression=cmd.compression,
        name=f"safety-before-restore-{now:%Y%m%d-%H%M%S}",
        now=now,
    )
    backup.start(now=now)
    async with uow() as work:
        work.backups.add(backup)
        await work.commit()
    return backup


async def handle_record_backup_completed(
    cmd: RecordBackupCompleted,
    *,
    uow: UowFactory,
    archives: ArchiveStore,
    clock: Clock,
) -> None:
    expired: list[Backup] = []
    async with uow() as work:
        backup = await _load(work, cmd.backup_id)
        backup.complete(
            size_bytes=cmd.size_bytes,
            sha256=cmd.sha256,
            saving_off_ms=cmd.saving_off_ms,
            now=clock.now(),
        )
        if backup.backup_type is not BackupType.SAFETY:
            await work.locks.release(backup.server_id, backup_id=backup.id)
        if backup.schedule_id is not None:
            expired = await _rotate(work, backup, clock)
        await work.commit()
    for old in expired:
        await delete_quietly(archives, old, "rotated_archive_not_deleted")


async def _rotate(work: BackupsUnitOfWork, completed: Backup, clock: Clock) -> list[Backup]:
    """Retention of a schedule: only its own completed scheduled backups are ever removed."""
    schedule_id = completed.schedule_id
    schedule = await work.schedules.get(schedule_id) if schedule_id else None
    if schedule_id is None or schedule is None:
        return []
    now = clock.now()
    stored = await work.backups.scheduled_completed(schedule_id)
    # The backup completing now is not written yet; it is the newest of the schedule's backups.
    candidates = [*(item for item in stored if item[0] != completed.id), (completed.id, now)]
    removed: list[Backup] = []
    for backup_id in schedule.retention.expired(candidates, now=now):
        old = await work.backups.get(backup_id, lock=True)
        if old is None or old.backup_type is not BackupType.SCHEDULED:
            continue
        old.delete(reason=f"retention of schedule {schedule_id}", now=now)
        await work.backups.remove(old)
        removed.append(old)
    return removed


async def handle_record_backup_failed(
    cmd: RecordBackupFailed, *, uow: UowFactory, clock: Clock
) -> None:
    async with uow() as work:
        backup = await _load(work, cmd.backup_id)
        recorded = backup.fail(cmd.reason, saving_off_ms=cmd.saving_off_ms, now=clock.now())
        if backup.backup_type is not BackupType.SAFETY:
            await work.locks.release(backup.server_id, backup_id=backup.id)
        await work.commit()
    if recorded:
        log.warning(
            "backup_recorded_failed",
            backup_id=str(backup.id),
            server_id=str(backup.server_id),
            reason=cmd.reason,
        )


async def handle_record_restore_outcome(
    cmd: RecordRestoreOutcome, *, uow: UowFactory, clock: Clock
) -> None:
    async with uow() as work:
        backup = await _load(work, cmd.backup_id)
        if cmd.error is None:
            backup.restored(
                target_server_id=cmd.target_server_id,
                safety_backup_id=cmd.safety_backup_id,
                requested_by=cmd.requested_by,
                now=clock.now(),
            )
        else:
            backup.restore_failed(
                target_server_id=cmd.target_server_id, reason=cmd.error, now=clock.now()
            )
        await work.locks.release(cmd.target_server_id, backup_id=backup.id)
        await work.commit()
    if cmd.error is not None:
        log.warning(
            "restore_recorded_failed",
            backup_id=str(cmd.backup_id),
            server_id=str(cmd.target_server_id),
            reason=cmd.error,
        )


async def handle_fail_interrupted_backups(
    cmd: FailInterruptedBackups, *, uow: UowFactory, clock: Clock
) -> list[uuid.UUID]:
    failed: list[uuid.UUID] = []
    async with uow() as work:
        for backup in await work.backups.unfinished(node=cmd.node):
            if cmd.server_id is not None and backup.server_id != cmd.server_id:
                continue
            if backup.status is BackupStatus.RUNNING and backup.fail(cmd.reason, now=clock.now()):
                await work.locks.release(backup.server_id, backup_id=backup.id)
                failed.append(backup.id)
        await work.commit()
    for backup_id in failed:
        log.warning("backup_recorded_failed", backup_id=str(backup_id), reason=cmd.reason)
    return failed


async def handle_sweep_interrupted_backups(
    cmd: SweepInterruptedBackups,
    *,
    uow: UowFactory,
    progress: OperationHeartbeats,
    clock: Clock,
) -> list[uuid.UUID]:
    """A running backup whose node stopped refreshing its heartbeat ended with that node."""
    now = clock.now()
    grace = timedelta(seconds=cmd.requested_grace_seconds)
    silent = now - timedelta(seconds=cmd.heartbeat_grace_seconds)
    failed: list[uuid.UUID] = []
    reasons: list[tuple[uuid.UUID, str]] = []
    restores: list[uuid.UUID] = []
    async with uow() as work:
        for backup in await work.backups.unfinished():
            if backup.status is BackupStatus.RUNNING:
                if (backup.started_at or now) > silent or await progress.is_alive(
                    "backup", backup.id
                ):
                    continue
                reason = INTERRUPTED
            elif backup.created_at < now - grace:
                reason = f"no worker of node {backup.node} picked the backup up in time"
            else:
                continue
            if backup.fail(reason, now=now):
                await work.locks.release(backup.server_id, backup_id=backup.id)
                failed.append(backup.id)
                reasons.append((backup.id, reason))
        for server_id, backup_id in await work.locks.restores_before(now - grace):
            if await progress.is_alive("restore", backup_id):
                continue
            restored = await work.backups.get(backup_id, lock=True)
            if restored is not None:
                restored.restore_failed(
                    target_server_id=server_id,
                    reason=UNFINISHED_RESTORE,
                    now=now,
                )
                restores.append(backup_id)
            await work.locks.release(server_id, backup_id=backup_id)
        await work.commit()
    for backup_id, reason in reasons:
        log.warning("backup_recorded_failed", backup_id=str(backup_id), reason=reason)
    for backup_id in restores:
        log.warning("restore_recorded_failed", backup_id=str(backup_id), reason=UNFINISHED_RESTORE)
    return failed
