"""The node side of backups: consistent snapshots of running servers, and verified restores."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import structlog
from prometheus_client import Histogram

from app.backups.application.messages import (
    BeginBackupRun,
    CreateSafetyBackup,
    FailInterruptedBackups,
    GetBackup,
    RecordBackupCompleted,
    RecordBackupFailed,
    RecordRestoreOutcome,
)
from app.backups.application.node import INTERRUPTED
from app.backups.domain.model import Backup, Compression, staged_key
from app.backups.domain.ports import BackupStorage
from app.backups.infrastructure.progress import ProgressPublisher, Tracker
from app.backups.infrastructure.snapshot import (
    MARKER,
    NodeBackupSettings,
    Snapshot,
    SnapshotTaker,
)
from app.backups.infrastructure.swap import RestoreWorkspace
from app.servers.application.messages import RequestAutomaticStart, RequestMaintenanceStop
from app.servers.domain.ports import NodeServers
from app.shared.bus import MessageBus
from app.shared.domain import DomainError

log = structlog.get_logger(__name__)
BACKUP_SECONDS = Histogram(
    "mcdash_backup_duration_seconds",
    "Time to take a backup that completed",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600),
)
BACKUP_BYTES = Histogram(
    "mcdash_backup_bytes",
    "Archive size of a backup that completed",
    buckets=tuple(float(1024**2 * 4**n) for n in range(10)),  # 1 MiB to 256 GiB
)


def describe(exc: BaseException) -> str:
    if isinstance(exc, DomainError):
        return exc.detail
    if isinstance(exc, OSError) and exc.errno == 28:
        return f"the backup storage is full: {exc}"
    return f"{type(exc).__name__}: {exc}"[:1000]


class BackupNode:
    """Runs on the supervisor's event loop; the archiving itself runs in threads."""

    def __init__(
        self,
        *,
        bus: MessageBus,
        servers: NodeServers,
        storage: BackupStorage,
        progress: ProgressPublisher,
        settings: NodeBackupSettings,
    ) -> None:
        self._bus = bus
        self._servers = servers
        self._storage = storage
        self._progress = progress
        self._settings = settings
        self._snapshots = SnapshotTaker(storage, settings)
        self._busy: set[uuid.UUID] = set()

    # Adoption by a restarted worker.

    async def after_adopt(self, server_id: uuid.UUID) -> None:
        """A predecessor killed while saving was off: turn it back on, end its backups failed."""
        if await self._servers.marked(server_id, MARKER):
            await self._servers.send(server_id, "save-on")
            log.warning("autosave_resumed_after_interrupted_backup", server_id=str(server_id))
            await self._servers.unmark(server_id, MARKER)
        failed = await self._bus.handle(
            FailInterruptedBackups(node=None, server_id=server_id, reason=INTERRUPTED)
        )
        if failed and server_id not in self._busy:
            await asyncio.to_thread(self._storage.discard_partials, str(server_id))

    # Backups.

    async def backup(self, backup_id: uuid.UUID) -> None:
        try:
            backup = await self._bus.handle(BeginBackupRun(backup_id=backup_id))
        except DomainError as exc:
            log.warning("backup_not_started", backup_id=str(backup_id), reason=exc.detail)
            return
        except Exception as exc:  # logged and recorded, never lost in the job
            log.exception("backup_not_started", backup_id=str(backup_id), reason=describe(exc))
            await self._record_failed(backup_id, f"the backup could not start: {describe(exc)}")
            return
        if backup.server_id in self._busy:
            await self._record_failed(
                backup.id, "another backup or restore of this server is running on the node"
            )
            return
        self._busy.add(backup.server_id)
        try:
            await self._take(backup)
        except DomainError as exc:  # e.g. the server and its backups were deleted meanwhile
            log.warning("backup_outcome_not_recorded", backup_id=str(backup.id), reason=exc.detail)
        except Exception as exc:  # the job host must not be the only witness
            log.exception(
                "backup_outcome_not_recorded", backup_id=str(backup.id), reason=describe(exc)
            )
        finally:
            self._busy.discard(backup.server_id)

    async def _record_failed(
        self, backup_id: uuid.UUID, reason: str, saving_off_ms: int | None = None
    ) -> None:
        """Record a failure that happened outside the archiving; a failure to record is logged."""
        try:
            await self._bus.handle(
                RecordBackupFailed(backup_id=backup_id, reason=reason, saving_off_ms=saving_off_ms)
            )
        except Exception as exc:  # the sweeper ends it later; the reason is logged
            log.exception(
                "backup_failure_not_recorded",
                backup_id=str(backup_id),
                reason=reason,
                error=describe(exc),
            )

    async def _discard_archive(self, backup: Backup) -> None:
        try:
            await asyncio.to_thread(self._storage.delete, backup.file_path)
        except Exception as exc:  # logged with the key to remove by hand
            log.exception(
                "backup_archive_not_deleted",
                backup_id=str(backup.id),
                key=backup.file_path,
                error=describe(exc),
            )

    async def _take(self, backup: Backup) -> bool:
        """Archive, then record the outcome; True when the backup completed."""
        snapshot = Snapshot()
        began = time.monotonic()
        async with self._progress.tracking(
            operation_id=backup.id, server_id=backup.server_id, kind="backup"
        ) as tracker:
            try:
                await self._snapshots.take(self._servers, backup, snapshot, tracker)
            except Exception as exc:  # noqa: BLE001 - every failure ends the backup failed
                reason = describe(exc)
                log.warning("backup_failed", backup_id=str(backup.id), reason=reason)
                await self._bus.handle(
                    RecordBackupFailed(
                        backup_id=backup.id, reason=reason, saving_off_ms=snapshot.saving_off_ms
                    )
                )
                return False
        try:
            await self._bus.handle(
                RecordBackupCompleted(
                    backup_id=backup.id,
                    size_bytes=snapshot.size,
                    sha256=snapshot.sha256,
                    saving_off_ms=snapshot.saving_off_ms,
                )
            )
        except Exception as exc:  # an unrecorded archive must not stay behind
            reason = f"the archive was written but recording it failed: {describe(exc)}"
            log.exception("backup_completion_failed", backup_id=str(backup.id), reason=reason)
            await self._discard_archive(backup)
            await self._bus.handle(
                RecordBackupFailed(
                    backup_id=backup.id, reason=reason, saving_off_ms=snapshot.saving_off_ms
                )
            )
            return False
        BACKUP_SECONDS.observe(time.monotonic() - began)
        BACKUP_BYTES.observe(snapshot.size)
        log.info("backup_completed", backup_id=str(backup.id), size=snapshot.size)
        return True

    # Restores.

    async def restore(
        self,
        backup_id: uuid.UUID,
        target_id: uuid.UUID,
        requested_by: uuid.UUID | None,
    ) -> None:
        error: str | None = None
        safety_id: uuid.UUID | None = None
        if target_id in self._busy:
            error = "another backup or restore of this server is running on the node"
        else:
            self._busy.add(target_id)
            try:
                async with self._progress.tracking(
                    operation_id=backup_id, server_id=target_id, kind="restore"
                ) as tracker:
                    safety_id = await self._restore(backup_id, target_id, tracker)
            except Exception as exc:  # noqa: BLE001 - any failure is the restore's outcome
                error = describe(exc)
                log.warning("restore_failed", backup_id=str(backup_id), reason=error)
            finally:
                self._busy.discard(target_id)
        try:
            await self._bus.handle(
                RecordRestoreOutcome(
                    backup_id=backup_id,
                    target_server_id=target_id,
                    requested_by=requested_by,
                    safety_backup_id=safety_id,
                    error=error,
                )
            )
        except Exception as exc:  # the sweeper ends the restore; keep the reason
            log.exception(
                "restore_outcome_not_recorded",
                backup_id=str(backup_id),
                restore_error=error,
                error=describe(exc),
            )

    async def _restore(
        self, backup_id: uuid.UUID, target_id: uuid.UUID, tracker: Tracker
    ) -> uuid.UUID | None:
        backup = await self._bus.handle(GetBackup(actor=None, backup_id=backup_id))
        server_dir = self._servers.path(target_id)
        workspace = RestoreWorkspace(server_dir, backup_id)
        staged = self._staged(backup, target_id)
        if await asyncio.to_thread(RestoreWorkspace.recover, server_dir):
            log.warning("interrupted_restore_undone", server_id=str(target_id))
        try:
            tracker.enter("verifying")
            await asyncio.to_thread(workspace.fetch, self._storage, backup, staged)
            tracker.enter("unpacking")
            await asyncio.to_thread(
                workspace.unpack, backup.compression, self._settings.unpack_limits
            )
            if await asyncio.to_thread(server_dir.exists):
                await self._servers.hand_over(target_id, workspace.staging)
            tracker.enter("safety-backup")
            safety_id = await self._safety_backup(target_id, backup.compression)
            stopped = await self._stop_for_restore(target_id, tracker)
            try:
                tracker.enter("swapping")
                await asyncio.to_thread(workspace.swap)
            finally:
                if stopped:
                    tracker.enter("starting")
                    await self._bus.handle(RequestAutomaticStart(server_id=target_id))
                    await self._servers.start(target_id)
            return safety_id
        finally:
            await asyncio.to_thread(workspace.clean)
            if staged is not None:
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(self._storage.delete, staged)

    def _staged(self, backup: Backup, target_id: uuid.UUID) -> str | None:
        """The copy the API staged here of another node's local archive (None: read the
        backup's own key, in this node's storage or the shared one)."""
        if self._storage.shared or backup.node == self._servers.node:
            return None
        return staged_key(target_id, backup.id, backup.compression)

    async def _safety_backup(
        self, server_id: uuid.UUID, compression: Compression
    ) -> uuid.UUID | None:
        if not await asyncio.to_thread(self._servers.path(server_id).exists):
            return None
        safety = await self._bus.handle(
            CreateSafetyBackup(
                server_id=server_id, node=self._servers.node, compression=compression
            )
        )
        if not await self._take(safety):
            raise DomainError("the safety backup of the current state failed; nothing was restored")
        return safety.id

    async def _stop_for_restore(self, server_id: uuid.UUID, tracker: Tracker) -> bool:
        if self._servers.presence(server_id) == "stopped":
            return False
        tracker.enter("stopping")
        await self._bus.handle(RequestMaintenanceStop(server_id=server_id, reason="restore"))
        try:
            return await self._servers.stop_and_wait(
                server_id, within=self._settings.stop_timeout_seconds
            )
        except TimeoutError:
            raise DomainError("the server did not stop in time; nothing was restored") from None
