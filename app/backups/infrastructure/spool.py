"""Archives a node receives from the API: uploads waiting, checked, for the API's decision, and
archives of other nodes staged for a restore here.

Everything is spooled in one private directory of the node's own data dir, emptied when the
agent starts (so a worker killed midway leaves no partial file), and moved into the node's
storage only once whole. An upload the API never commits or aborts goes after `ttl` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path

import structlog

from app.backups.domain.errors import ArchiveTooLarge, InvalidArchive, StorageUnavailable
from app.backups.domain.ports import ArchiveCheck, ArchiveFacts, BackupStorage
from app.shared.domain import Conflict, NotFound

log = structlog.get_logger(__name__)


class UploadNotWaiting(NotFound):
    slug = "backup-upload-not-waiting"
    title = "No such upload on this node"


@dataclass(frozen=True, slots=True)
class _Waiting:
    server_id: uuid.UUID
    path: Path
    facts: ArchiveFacts
    deadline: float


class ArchiveSpool:
    def __init__(
        self,
        root: Path,
        storage: BackupStorage,
        check: ArchiveCheck,
        *,
        limit: int,
        ttl: float = 900.0,
    ) -> None:
        self._root = root
        self._storage = storage
        self._check = check
        self._limit = limit
        self._ttl = ttl
        self._waiting: dict[uuid.UUID, _Waiting] = {}
        self._aborted: dict[uuid.UUID, float] = {}  # aborts that came before their upload ended

    def recover(self) -> int:
        """Blocking, at start: remove what a dead worker's uploads and stagings left behind."""
        removed = sum(1 for entry in self._root.iterdir()) if self._root.is_dir() else 0
        shutil.rmtree(self._root, ignore_errors=True)
        if removed:
            log.info("backup_spool_cleared_at_start", count=removed)
        return removed

    def held(self) -> list[Path]:
        """Blocking: the files spooled now."""
        return sorted(self._root.iterdir()) if self._root.is_dir() else []

    async def _spool(self, chunks: AsyncIterable[bytes], *, limit: int) -> Path:
        """`chunks` in a new private file; a body that breaks off or passes `limit` leaves none."""
        await asyncio.to_thread(self._root.mkdir, parents=True, exist_ok=True, mode=0o700)
        path = self._root / f"{uuid.uuid4()}.part"
        handle = await asyncio.to_thread(path.open, "xb")
        try:
            written = 0
            with handle:
                async for chunk in chunks:
                    written += len(chunk)
                    if written > limit:
                        raise ArchiveTooLarge(
                            f"backup uploads are limited to {limit} bytes", limit=limit
                        )
                    await asyncio.to_thread(handle.write, chunk)
        except BaseException:
            await asyncio.shield(asyncio.to_thread(path.unlink, missing_ok=True))
            raise
        return path

    async def receive(
        self, server_id: uuid.UUID, upload_id: uuid.UUID, chunks: AsyncIterable[bytes]
    ) -> ArchiveFacts:
        """Spool and check an upload under the id the API chose, for its commit or abort."""
        await self._sweep()
        if upload_id in self._waiting:
            raise Conflict(f"upload {upload_id} is already waiting on this node")
        path = await self._spool(chunks, limit=self._limit)
        try:
            facts = await asyncio.to_thread(self._check, path)
            if self._aborted.pop(upload_id, None) is not None:
                raise Conflict(f"upload {upload_id} was aborted")
        except BaseException:
            await asyncio.shield(asyncio.to_thread(path.unlink, missing_ok=True))
            raise
        self._waiting[upload_id] = _Waiting(server_id, path, facts, time.monotonic() + self._ttl)
        return facts

    async def commit(self, server_id: uuid.UUID, upload_id: uuid.UUID, key: str) -> None:
        waiting = self._waiting.get(upload_id)
        if waiting is None or waiting.server_id != server_id:
            raise UploadNotWaiting(f"no upload {upload_id} of this server is waiting here")
        del self._waiting[upload_id]
        await self._store(waiting.path, key)

    async def abort(self, server_id: uuid.UUID, upload_id: uuid.UUID) -> None:
        waiting = self._waiting.get(upload_id)
        if waiting is None:
            self._aborted[upload_id] = time.monotonic() + self._ttl
            return
        if waiting.server_id == server_id:
            del self._waiting[upload_id]
            await asyncio.to_thread(waiting.path.unlink, missing_ok=True)

    async def stage(self, key: str, chunks: AsyncIterable[bytes], *, size: int) -> None:
        """Another node's archive of `size` bytes, stored whole under `key` or not at all."""
        path = await self._spool(chunks, limit=size)
        actual = (await asyncio.to_thread(path.stat)).st_size
        if actual != size:
            await asyncio.to_thread(path.unlink, missing_ok=True)
            raise InvalidArchive(f"the staged archive has {actual} bytes, not {size}")
        await self._store(path, key)

    async def _store(self, path: Path, key: str) -> None:
        try:
            await asyncio.to_thread(self._storage.upload_file, key, path)
        except OSError as exc:
            raise StorageUnavailable(
                f"the node's backup storage refused the archive: {exc}"
            ) from exc
        finally:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(os.unlink, path)

    async def _sweep(self) -> None:
        now = time.monotonic()
        self._aborted = {key: until for key, until in self._aborted.items() if until > now}
        for upload_id, waiting in list(self._waiting.items()):
            if waiting.deadline < now:
                log.warning("backup_upload_expired_uncommitted", server_id=str(waiting.server_id))
                del self._waiting[upload_id]
                await asyncio.to_thread(waiting.path.unlink, missing_ok=True)
