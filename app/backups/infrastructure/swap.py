"""A restore's scratch space beside the server directory, and the atomic swap into place."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from app.backups.domain.errors import InvalidArchive
from app.backups.domain.model import Backup, Compression
from app.backups.domain.ports import BackupStorage
from app.backups.infrastructure.archive import extract_archive, verify_archive
from app.backups.infrastructure.unpacking import UnpackLimits

KEPT = (".mcdash",)  # the worker's console FIFO, log and offsets of the current directory


class RestoreWorkspace:
    """Everything before `swap` only touches scratch paths; `swap` is two renames.

    Scratch paths are siblings of the server directory, so they share its file system and the
    renames are atomic.
    """

    def __init__(self, server_dir: Path, backup_id: uuid.UUID) -> None:
        self.server_dir = server_dir
        tag = f".restore-{server_dir.name}-{backup_id.hex[:12]}"
        self.archive = server_dir.parent / f"{tag}.archive"
        self.staging = server_dir.parent / f"{tag}.new"
        self.old = server_dir.parent / f"{tag}.old"

    @staticmethod
    def recover(server_dir: Path) -> bool:
        """Blocking: undo a swap a crash cut between its two renames (the directory is missing
        and a `.old` one is left); True when something was put back."""
        if server_dir.exists():
            return False
        leftovers = sorted(server_dir.parent.glob(f".restore-{server_dir.name}-*.old"))
        if not leftovers:
            return False
        os.rename(leftovers[-1], server_dir)
        return True

    def fetch(self, storage: BackupStorage, backup: Backup, key: str | None = None) -> None:
        """Blocking: download the archive (from `key`, a staged copy, when given) and verify its
        size and SHA-256."""
        self.server_dir.parent.mkdir(parents=True, exist_ok=True)
        if backup.sha256 is None or backup.size_bytes is None:
            raise InvalidArchive(f"backup {backup.id} has no recorded checksum")
        storage.download_to(key or backup.file_path, self.archive)
        verify_archive(self.archive, size=backup.size_bytes, sha256=backup.sha256)

    def unpack(self, compression: Compression, limits: UnpackLimits) -> int:
        """Blocking: extract into the staging directory, refusing unsafe members and bombs
        (what was unpacked before a refusal is removed by `clean`)."""
        shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir(mode=0o700)
        return extract_archive(self.archive, compression, self.staging, limits=limits)

    def swap(self) -> None:
        """Blocking: the staged tree becomes the server directory; on failure nothing changed."""
        had_dir = self.server_dir.exists()
        if had_dir:
            for name in ("server.jar", "fabric-server-launch.jar"):  # jars of the jar cache
                jar = self.server_dir / name
                if jar.exists():
                    _link_or_copy(jar, self.staging / name)
            os.rename(self.server_dir, self.old)
        moved: list[str] = []
        try:
            for name in KEPT:
                if had_dir and (self.old / name).exists():
                    os.rename(self.old / name, self.staging / name)
                    moved.append(name)
            os.rename(self.staging, self.server_dir)
        except BaseException:
            for name in moved:
                if (self.staging / name).exists():
                    os.rename(self.staging / name, self.old / name)
            if had_dir and not self.server_dir.exists():
                os.rename(self.old, self.server_dir)
            raise
        shutil.rmtree(self.old, ignore_errors=True)

    def clean(self) -> None:
        self.archive.unlink(missing_ok=True)
        shutil.rmtree(self.staging, ignore_errors=True)


def _link_or_copy(source: Path, target: Path) -> None:
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
