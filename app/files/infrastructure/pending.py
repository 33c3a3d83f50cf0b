"""Uploads a node holds between the API streaming them in and the API committing them.

The API commits only once it has locked the path and recorded the change, so an upload waits
here as a temporary file beside its target. Each one is journaled: a worker killed midway
leaves no partial file, since the journal is replayed when the agent starts again; one the API
never commits is discarded after `ttl` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from app.files.domain.model import FileConflict, FileMissing, FileState
from app.files.domain.paths import FilePath
from app.files.infrastructure.store import LocalFileStore
from app.files.infrastructure.upload import LocalUploadSink
from app.shared.domain import InvalidInput
from app.shared.files import write_atomically

log = structlog.get_logger(__name__)


UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@dataclass(slots=True)
class _Pending:
    server_id: uuid.UUID
    sink: LocalUploadSink
    deadline: float
    received: bool = False
    ended: asyncio.Event = field(default_factory=asyncio.Event)  # commit or abort asked
    gone: asyncio.Event = field(default_factory=asyncio.Event)  # nothing left on disk for it


class PendingUploads:
    def __init__(self, journal: Path, store: LocalFileStore, *, ttl: float = 900.0) -> None:
        self._journal = journal
        self._store = store
        self._ttl = ttl
        self._pending: dict[str, _Pending] = {}

    async def receive(
        self,
        server_id: uuid.UUID,
        upload_id: str,
        target: FilePath,
        sink: LocalUploadSink,
        chunks: AsyncIterable[bytes],
    ) -> dict[str, Any]:
        """Stream `chunks` into `sink` under the id the API chose, for its commit or abort. A
        body that breaks off, or an abort while it streams, leaves nothing behind."""
        if not UPLOAD_ID.match(upload_id) or upload_id in self._pending:
            await sink.abort()
            raise InvalidInput("the upload id is malformed or already in use", field="upload")
        await self._sweep()
        pending = _Pending(server_id, sink, time.monotonic() + self._ttl)
        self._pending[upload_id] = pending
        try:
            await asyncio.to_thread(self._note, upload_id, server_id, target, sink.temp)
            async for chunk in chunks:
                if pending.ended.is_set():
                    raise FileConflict("the upload was aborted", upload=upload_id)
                await sink.write(chunk)
        except BaseException:
            await asyncio.shield(self._drop(upload_id, pending))
            raise
        if pending.ended.is_set():
            await self._drop(upload_id, pending)
            raise FileConflict("the upload was aborted", upload=upload_id)
        pending.received = True
        return {"upload": upload_id, "size": sink.size}

    async def commit(self, server_id: uuid.UUID, upload_id: str, *, replace: bool) -> FileState:
        pending = self._find(server_id, upload_id)
        if not pending.received:
            raise FileConflict("the upload has not been received whole", upload=upload_id)
        del self._pending[upload_id]
        try:
            return await pending.sink.commit(replace=replace)
        finally:
            pending.ended.set()
            await asyncio.to_thread(self._forget, upload_id)

    async def abort(self, server_id: uuid.UUID, upload_id: str) -> None:
        """Discard the upload; one still streaming stops at its next chunk, or when its
        connection drops, and this waits (a little) until it has."""
        try:
            pending = self._find(server_id, upload_id)
        except FileMissing:
            return
        if pending.received:
            await self._drop(upload_id, pending)
            return
        pending.ended.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(pending.gone.wait(), timeout=10)

    def recover(self) -> int:
        """Blocking, at start: remove what uploads cut short by a dead worker left behind."""
        if not self._journal.is_dir():
            return 0
        removed = 0
        for entry in self._journal.iterdir():
            with contextlib.suppress(ValueError, KeyError, OSError):
                note = json.loads(entry.read_text())
                self._store.discard_temp(
                    uuid.UUID(note["server_id"]), FilePath.parse(note["target"]), note["temp"]
                )
                removed += 1
            entry.unlink(missing_ok=True)
        if removed:
            log.info("uploads_discarded_at_start", count=removed)
        return removed

    def _find(self, server_id: uuid.UUID, upload_id: str) -> _Pending:
        pending = self._pending.get(upload_id)
        if pending is None or pending.server_id != server_id:
            raise FileMissing(f"no upload {upload_id} is waiting on this node")
        return pending

    async def _drop(self, upload_id: str, pending: _Pending) -> None:
        self._pending.pop(upload_id, None)
        pending.ended.set()
        await pending.sink.abort()
        await asyncio.to_thread(self._forget, upload_id)
        pending.gone.set()

    async def _sweep(self) -> None:
        now = time.monotonic()
        for upload_id, item in list(self._pending.items()):
            if item.received and item.deadline < now:
                log.warning("upload_expired_uncommitted", server_id=str(item.server_id))
                await self._drop(upload_id, item)

    def _note(self, upload_id: str, server_id: uuid.UUID, target: FilePath, temp: str) -> None:
        self._journal.mkdir(parents=True, exist_ok=True, mode=0o700)
        note = {"server_id": str(server_id), "target": str(target), "temp": temp}
        write_atomically(self._journal / upload_id, json.dumps(note).encode())

    def _forget(self, upload_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._journal / upload_id)
