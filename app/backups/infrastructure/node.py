"""The node side of backups: consistent snapshots of running servers, and verified restores."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import structlog

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
from app.backups.domain.model import Backup, Compression
from app.backups.domain.ports import BackupStorage
from app.backups.infrastructure.archive import write_archive
from app.backups.infrastructure.progress import ProgressPublisher, Tracker
from app.backups.infrastructure.swap import RestoreWorkspace
from app.servers.application.messages import RequestAutomaticStart, RequestMaintenanceStop
from app.servers.infrastructure.files import ServerDirectory
from app.servers.infrastructure.managed import NoAnswer, NotRunningHere
from app.servers.infrastructure.process import ConsoleUnavailable, write_console
from app.shared.bus import MessageBus
from app.shared.domain import DomainError

log = structlog.get_logger(__name__)

MARKER = "saving-off"


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeBackupSettings:
    gzip_level: int
    zstd_level: int
    save_timeout_seconds: float
    stop_timeout_seconds: float


@dataclass(slots=True)
class Snapshot:
    size: int = 0
    sha256: str = ""
    saving_off_ms: int | None = None


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
        storage: BackupStorage,
        progress: ProgressPublisher,
        settings: NodeBackupSettings,
    ) -> None:
        self._bus = bus
        self._storage = storage
        self._progress = progress
        self._settings = settings
        self._busy: set[uuid.UUID] = set()

    # Adoption by a restarted worker.

    async def after_adopt(self, server_id: uuid.UUID, directory: ServerDirectory) -> None:
        """A predecessor killed while saving was off: turn it back on, end its backups failed."""
        marker = directory.meta / MARKER
        if await asyncio.to_thread(marker.exists):
            try:
                await asyncio.to_thread(write_console, directory, "save-on")
                log.warning("autosave_resumed_after_interrupted_backup", server_id=str(server_id))
            except (ConsoleUnavailable, OSError) as exc:
                log.warning("autosave_not_resumed", server_id=str(server_id), error=str(exc))
            await asyncio.to_thread(marker.unlink, True)
        failed = await self._bus.handle(
            FailInterruptedBackups(node=None, server_id=server_id, reason=INTERRUPTED)
        )
        if failed and server_id not in self._busy:
            await asyncio.to_thread(self._storage.discard_partials, str(server_id))

    # Backups.

    async def backup(self, supervisor: Any, backup_id: uuid.UUID) -> None:
        try:
            backup = await self._bus.handle(BeginBackupRun(backup_id=backup_id))
        except DomainError as exc:
            log.warning("backup_not_started", backup_id=str(backup_id), reason=exc.detail)
            return
        if backup.server_id in self._busy:
            await self._bus.handle(
                RecordBackupFailed(
                    backup_id=backup.id,
                    reason="another backup or restore of this server is running on the node",
                )
            )
            return
        self._busy.add(backup.server_id)
        try:
            await self._take(supervisor, backup)
        except DomainError as exc:  # e.g. the server and its backups were deleted meanwhile
            log.warning("backup_outcome_not_recorded", backup_id=str(backup.id), reason=exc.detail)
        finally:
            self._busy.discard(backup.server_id)

    async def _take(self, supervisor: Any, backup: Backup) -> bool:
        """Archive, then record the outcome; True when the backup completed."""
        snapshot = Snapshot()
        async with self._progress.tracking(
            operation_id=backup.id, server_id=backup.server_id, kind="backup"
        ) as tracker:
            try:
                await self._snapshot(supervisor, backup, snapshot, tracker)
            except Exception as exc:  # noqa: BLE001 - every failure ends the backup failed
                reason = describe(exc)
                log.warning("backup_failed", backup_id=str(backup.id), reason=reason)
                await self._bus.handle(
                    RecordBackupFailed(
                        backup_id=backup.id, reason=reason, saving_off_ms=snapshot.saving_off_ms
                    )
                )
                return False
        await self._bus.handle(
            RecordBackupCompleted(
                backup_id=backup.id,
                size_bytes=snapshot.size,
                sha256=snapshot.sha256,
                saving_off_ms=snapshot.saving_off_ms,
            )
        )
        log.info("backup_completed", backup_id=str(backup.id), size=snapshot.size)
        return True

    async def _snapshot(
        self, supervisor: Any, backup: Backup, snapshot: Snapshot, tracker: Tracker
    ) -> None:
        server_id = backup.server_id
        directory: ServerDirectory = supervisor.directory(server_id)
        managed = supervisor.managed.get(server_id)
        if managed is not None and (not managed.ready or managed.stop_requested_at is not None):
            raise DomainError("the server is starting or stopping; back it up when it is running")
        if managed is None:
            tracker.enter("archiving")
            await self._archive(directory.path, backup, snapshot, tracker)
            return
        marker = directory.meta / MARKER
        await asyncio.to_thread(marker.write_text, str(backup.id))
        saving_off_at = time.monotonic()
        try:
            tracker.enter("saving")
            await supervisor.converse(
                server_id,
                "save-off",
                answer=lambda m: "saving is now disabled" in m or "already turned off" in m,
                within=self._settings.save_timeout_seconds,
            )
            await supervisor.converse(
                server_id,
                "save-all flush",
                answer=lambda m: "Saved the game" in m,
                within=self._settings.save_timeout_seconds,
            )
            tracker.enter("archiving")
            await self._archive(directory.path, backup, snapshot, tracker)
        finally:
            await self._resume_saving(supervisor, server_id)
            snapshot.saving_off_ms = int((time.monotonic() - saving_off_at) * 1000)
            await asyncio.to_thread(marker.unlink, True)

    async def _resume_saving(self, supervisor: Any, server_id: uuid.UUID) -> None:
        try:
            await supervisor.converse(
                server_id,
                "save-on",
                answer=lambda m: "saving is now enabled" in m or "already turned on" in m,
                within=self._settings.save_timeout_seconds,
            )
        except (NotRunningHere, NoAnswer) as exc:
            log.warning("save_on_unconfirmed", server_id=str(server_id), error=str(exc))

    async def _archive(
        self, source: Path, backup: Backup, snapshot: Snapshot, tracker: Tracker
    ) -> None:
        level = (
            self._settings.gzip_level
            if backup.compression is Compression.GZIP
            else self._settings.zstd_level
        )
        result: list[tuple[int, str]] = []

        def produce(sink: BinaryIO) -> None:
            result.append(
                write_archive(
                    source,
                    sink,
                    compression=backup.compression,
                    level=level,
                    progress=tracker.advance,
                )
            )

        await asyncio.to_thread(self._storage.write, backup.file_path, produce)
        snapshot.size, snapshot.sha256 = result[0]

    # Restores.

    async def restore(
        self,
        supervisor: Any,
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
                    safety_id = await self._restore(supervisor, backup_id, target_id, tracker)
            except Exception as exc:  # noqa: BLE001 - any failure is the restore's outcome
                error = describe(exc)
                log.warning("restore_failed", backup_id=str(backup_id), reason=error)
            finally:
                self._busy.discard(target_id)
        await self._bus.handle(
            RecordRestoreOutcome(
                backup_id=backup_id,
                target_server_id=target_id,
                requested_by=requested_by,
                safety_backup_id=safety_id,
                error=error,
            )
        )

    async def _restore(
        self, supervisor: Any, backup_id: uuid.UUID, target_id: uuid.UUID, tracker: Tracker
    ) -> uuid.UUID | None:
        backup = await self._bus.handle(GetBackup(actor=None, backup_id=backup_id))
        directory: ServerDirectory = supervisor.directory(target_id)
        workspace = RestoreWorkspace(directory.path, backup_id)
        try:
            tracker.enter("verifying")
            await asyncio.to_thread(workspace.fetch, self._storage, backup)
            tracker.enter("unpacking")
            await asyncio.to_thread(workspace.unpack, backup.compression)
            tracker.enter("safety-backup")
            safety_id = await self._safety_backup(supervisor, target_id, backup.compression)
            stopped = await self._stop_for_restore(supervisor, target_id, tracker)
            try:
                tracker.enter("swapping")
                await asyncio.to_thread(workspace.swap)
            finally:
                if stopped:
                    tracker.enter("starting")
                    await self._bus.handle(RequestAutomaticStart(server_id=target_id))
                    await supervisor.start(target_id)
            return safety_id
        finally:
            await asyncio.to_thread(workspace.clean)

    async def _safety_backup(
        self, supervisor: Any, server_id: uuid.UUID, compression: Compression
    ) -> uuid.UUID | None:
        directory: ServerDirectory = supervisor.directory(server_id)
        if not await asyncio.to_thread(directory.path.exists):
            return None
        safety = await self._bus.handle(
            CreateSafetyBackup(server_id=server_id, node=supervisor.node, compression=compression)
        )
        if not await self._take(supervisor, safety):
            raise DomainError("the safety backup of the current state failed; nothing was restored")
        return safety.id

    async def _stop_for_restore(
        self, supervisor: Any, server_id: uuid.UUID, tracker: Tracker
    ) -> bool:
        managed = supervisor.managed.get(server_id)
        if managed is None:
            return False
        tracker.enter("stopping")
        await self._bus.handle(RequestMaintenanceStop(server_id=server_id, reason="restore"))
        await supervisor.stop(server_id)
        try:
            await asyncio.wait_for(managed.exited.wait(), self._settings.stop_timeout_seconds)
        except TimeoutError:
            raise DomainError("the server did not stop in time; nothing was restored") from None
        return True
