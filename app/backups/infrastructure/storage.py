"""Archive storage: a local directory (temp file + rename), or S3 when configured."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import structlog
from pydantic import SecretStr

from app.backups.infrastructure.archive import BUFFER
from app.settings import Settings

if TYPE_CHECKING:  # minio (and its crypto and urllib3, some 7 MB) loads only for S3
    from app.backups.infrastructure.s3 import S3BackupStorage

log = structlog.get_logger(__name__)


class StorageError(OSError):
    """The storage could not be reached or refused the data; the message says why."""


class LocalBackupStorage:
    name = "local"
    shared = False

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise StorageError(f"storage key {key!r} leaves the backup directory")
        return path

    def write(self, key: str, produce: Callable[[BinaryIO], None]) -> None:
        path = self._path(key)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)  # others' worlds: private
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
        try:
            with os.fdopen(fd, "wb", buffering=BUFFER) as handle:
                produce(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def upload_file(self, key: str, path: Path) -> None:
        def copy(sink: BinaryIO) -> None:
            with path.open("rb") as source:
                shutil.copyfileobj(source, sink, BUFFER)

        self.write(key, copy)

    def download_to(self, key: str, path: Path) -> None:
        shutil.copyfile(self._path(key), path)

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_all(self, prefix: str) -> int:
        folder = self._path(prefix)
        if not folder.is_dir():
            return 0
        count = sum(1 for path in folder.rglob("*") if path.is_file())
        shutil.rmtree(folder)
        return count

    def discard_partials(self, prefix: str) -> int:
        folder = self._path(prefix)
        removed = 0
        for partial in folder.glob(".*.partial") if folder.is_dir() else ():
            partial.unlink(missing_ok=True)
            removed += 1
        return removed

    async def chunks(self, key: str) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(self._path(key).open, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, BUFFER):
                yield chunk
        finally:
            handle.close()


def storage_from_settings(settings: Settings) -> LocalBackupStorage | S3BackupStorage:
    if settings.backup_storage == "s3":
        from app.backups.infrastructure.s3 import S3BackupStorage

        if not settings.backup_s3_endpoint:
            raise RuntimeError(
                "MCDASH_BACKUP_S3_ENDPOINT is required with MCDASH_BACKUP_STORAGE=s3"
            )
        return S3BackupStorage(
            endpoint=settings.backup_s3_endpoint,
            bucket=settings.backup_s3_bucket,
            access_key=_secret(settings.backup_s3_access_key),
            secret_key=_secret(settings.backup_s3_secret_key),
            secure=settings.backup_s3_secure,
            region=settings.backup_s3_region,
            part_size=settings.backup_s3_part_size_mb * 1024 * 1024,
            timeout_seconds=settings.backup_s3_timeout_seconds,
        )
    root = settings.backup_local_dir or settings.resolved_data_dir / "backups"
    return LocalBackupStorage(root.expanduser().resolve())


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
