"""Consistent snapshots: save-off, save-all flush, archive (or copy aside), always save-on."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import structlog

from app.backups.domain.model import Backup, Compression
from app.backups.domain.ports import BackupStorage
from app.backups.infrastructure.archive import copy_tree, write_archive
from app.backups.infrastructure.progress import Tracker
from app.backups.infrastructure.unpacking import UnpackLimits
from app.servers.domain.ports import NoAnswer, NodeServers, NotRunningHere
from app.shared.domain import DomainError

log = structlog.get_logger(__name__)

MARKER = "saving-off"


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeBackupSettings:
    gzip_level: int
    zstd_level: int
    save_timeout_seconds: float
    stop_timeout_seconds: float
    snapshot_copy: bool = False
    unpack_limits: UnpackLimits = field(default_factory=UnpackLimits)


@dataclass(slots=True)
class Snapshot:
    size: int = 0
    sha256: str = ""
    saving_off_ms: int | None = None


class SnapshotTaker:
    """Archives a server directory into the storage; a running server's world is flushed first.

    While saving is off a marker file (`.mcdash/saving-off`) says so, for a worker that takes
    over after this one died mid-backup.
    """

    def __init__(self, storage: BackupStorage, settings: NodeBackupSettings) -> None:
        self._storage = storage
        self._settings = settings

    async def take(
        self, servers: NodeServers, backup: Backup, snapshot: Snapshot, tracker: Tracker
    ) -> None:
        server_id = backup.server_id
        directory = servers.path(server_id)
        presence = servers.presence(server_id)
        if presence == "busy":
            raise DomainError("the server is starting or stopping; back it up when it is running")
        if presence == "stopped":
            tracker.enter("archiving")
            await self._archive(directory, backup, snapshot, tracker)
            return
        await servers.mark(server_id, MARKER, str(backup.id).encode())
        copy = directory.parent / f".snapshot-{server_id}-{backup.id.hex[:12]}"
        try:
            await self._consistent(servers, backup, directory, copy, snapshot, tracker)
            if self._settings.snapshot_copy:
                tracker.enter("archiving")
                await self._archive(copy, backup, snapshot, tracker)
        finally:
            await asyncio.to_thread(shutil.rmtree, copy, True)

    async def _consistent(
        self,
        servers: NodeServers,
        backup: Backup,
        directory: Path,
        copy: Path,
        snapshot: Snapshot,
        tracker: Tracker,
    ) -> None:
        """With saving off and the world flushed: archive it, or only copy it (snapshot_copy)."""
        server_id = backup.server_id
        saving_off_at = time.monotonic()
        try:
            tracker.enter("saving")
            await servers.converse(
                server_id,
                "save-off",
                answer=lambda m: "saving is now disabled" in m or "already turned off" in m,
                within=self._settings.save_timeout_seconds,
            )
            await servers.converse(
                server_id,
                "save-all flush",
                answer=lambda m: "Saved the game" in m,
                within=self._settings.save_timeout_seconds,
            )
            if self._settings.snapshot_copy:
                tracker.enter("copying")
                await asyncio.to_thread(copy_tree, directory, copy)
            else:
                tracker.enter("archiving")
                await self._archive(directory, backup, snapshot, tracker)
        finally:
            await self._resume_saving(servers, server_id)
            snapshot.saving_off_ms = int((time.monotonic() - saving_off_at) * 1000)
            await servers.unmark(server_id, MARKER)

    async def _resume_saving(self, servers: NodeServers, server_id: uuid.UUID) -> None:
        try:
            await servers.converse(
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
