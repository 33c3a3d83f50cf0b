"""Recording versions: before-images, applied changes, rejected attempts, and their events."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from app.files.domain.events import FileModified
from app.files.domain.model import (
    FileState,
    FileVersion,
    Outcome,
    PreconditionFailed,
    PreconditionRequired,
    VersionAction,
    decode_text,
    etag_matches,
)
from app.files.domain.paths import FilePath
from app.files.domain.ports import FilesUnitOfWork
from app.shared.domain import Clock, new_id

FilesUowFactory = Callable[[], FilesUnitOfWork]


@dataclass(frozen=True, slots=True, kw_only=True)
class FileLimits:
    """Settings: the largest text edit, the largest upload, and what a rejected write keeps."""

    edit_max_bytes: int
    upload_max_bytes: int
    rejected_keep_bytes: int = 64 * 1024


def stale_write(
    current: FileState, *, if_match: str | None, if_none_match: str | None, path: FilePath
) -> PreconditionFailed | None:
    """The 412 a conditional write deserves, or None; a missing If-Match raises 428 at once."""
    if current.exists and current.sha256 is not None:
        if if_none_match is not None and if_none_match.strip() == "*":
            return PreconditionFailed(
                f"{path} already exists", path=str(path), current_etag=current.etag
            )
        if if_match is None:
            raise PreconditionRequired(
                f"{path} exists: send If-Match with the ETag you read to replace it",
                path=str(path),
                current_etag=current.etag,
            )
        if not etag_matches(if_match, current.sha256):
            return PreconditionFailed(
                f"{path} changed since you read it; reload, merge and save again",
                path=str(path),
                current_etag=current.etag,
            )
        return None
    if if_match is not None:
        return PreconditionFailed(
            f"{path} no longer exists; save with If-None-Match: * to create it again",
            path=str(path),
            current_etag=None,
        )
    return None


class Recorder:
    """Adds versions to one unit of work's history, numbering them per path."""

    def __init__(
        self, work: FilesUnitOfWork, *, server_id: uuid.UUID, author_id: uuid.UUID, clock: Clock
    ) -> None:
        self.work = work
        self.server_id = server_id
        self.author_id = author_id
        self.clock = clock

    async def lock(self, *paths: FilePath) -> None:
        """Per-path advisory locks, always taken in the same order so two moves cannot deadlock."""
        for path in sorted({str(path) for path in paths}):
            await self.work.history.lock(self.server_id, path)

    async def before_image(self, path: FilePath, current: FileState) -> None:
        """Keep what is on disk when the history does not know it yet, so it can be restored."""
        latest = await self.work.history.latest(self.server_id, str(path))
        if latest is None:
            if current.exists:
                await self._add(path, VersionAction.ORIGINAL, current, author=False)
        elif latest.sha256 != current.sha256:
            note = "changed outside the dashboard" if current.exists else "removed outside"
            await self._add(path, VersionAction.EXTERNAL, current, author=False, note=note)

    async def applied(
        self, path: FilePath, action: VersionAction, state: FileState, *, note: str | None = None
    ) -> FileVersion:
        version = await self._add(path, action, state, note=note)
        self.work.record_event(
            FileModified(
                occurred_at=version.created_at,
                server_id=self.server_id,
                path=version.path,
                action=action.value,
                version=version.version,
                size=version.size,
                sha256=version.sha256,
                author_id=self.author_id,
            )
        )
        return version

    async def rejected(
        self, path: FilePath, action: VersionAction, state: FileState, *, keep: int
    ) -> None:
        """The losing attempt of a race is kept, not applied, so its author can recover the text.

        Only up to `keep` bytes of it: a larger attempt keeps its size and hash, not its bytes.
        """
        note = "based on a stale read"
        if state.content is not None and len(state.content) > keep:
            state = replace(state, content=None)
            note += f"; its content was cut: rejected writes keep at most {keep} bytes"
        await self._add(path, action, state, outcome=Outcome.REJECTED, note=note)

    async def _add(
        self,
        path: FilePath,
        action: VersionAction,
        state: FileState,
        *,
        outcome: Outcome = Outcome.APPLIED,
        author: bool = True,
        note: str | None = None,
    ) -> FileVersion:
        kept = state.content if state.content is not None else None
        version = FileVersion(
            id=new_id(),
            server_id=self.server_id,
            path=str(path),
            version=await self.work.history.next_number(self.server_id, str(path)),
            action=action,
            outcome=outcome,
            author_id=self.author_id if author else None,
            created_at=self.clock.now(),
            size=state.size if state.exists else None,
            sha256=state.sha256 if state.exists else None,
            content=kept if kept is not None and decode_text(kept) is not None else None,
            note=note,
        )
        await self.work.history.add(version)
        return version
