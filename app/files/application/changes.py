"""The one way files change: lock, read, keep before-images, apply, record, commit, answer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from app.files.application.history import FileLimits, FilesUowFactory, Recorder, stale_write
from app.files.application.messages import WriteResult
from app.files.domain.model import (
    PROPERTIES_FILE,
    FileMissing,
    FileState,
    FileVersion,
    VersionAction,
    etag_of,
    sha256_of,
)
from app.files.domain.paths import FilePath
from app.files.domain.ports import FileStore, FilesUnitOfWork, ServerAccess, Servers
from app.shared.domain import Clock
from app.shared.security import Principal


async def after_change(servers: Servers, access: ServerAccess, *paths: FilePath) -> bool:
    """Editing server.properties of a running server only takes effect after a restart."""
    if any(str(path) == PROPERTIES_FILE for path in paths):
        await servers.mark_restart_required(access.server_id, PROPERTIES_FILE)
        return access.active
    return False


@dataclass(frozen=True, slots=True, kw_only=True)
class Changes:
    """What every recorded change needs; each handler adds its precondition and store call."""

    uow: FilesUowFactory
    store: FileStore
    servers: Servers
    clock: Clock
    limits: FileLimits

    @asynccontextmanager
    async def open(
        self,
        actor: Principal,
        access: ServerAccess,
        *paths: FilePath,
        existing: Collection[FilePath] = (),
        keep: Mapping[FilePath, int] | None = None,
        under: FilePath | None = None,
    ) -> AsyncIterator[Change]:
        """Lock `paths` and read them, keeping their before-images; commit if the block succeeds.

        A path of `existing` that is missing raises FileMissing; `keep` caps the bytes a read
        keeps (the edit limit otherwise); `under` adds the directory and its tracked files.
        """
        async with self.uow() as work:
            recorder = Recorder(
                work, server_id=access.server_id, author_id=actor.user_id, clock=self.clock
            )
            tracked = await _tracked(work, access.server_id, under)
            directory = () if under is None else (under,)
            await recorder.lock(*paths, *directory, *tracked)
            change = Change(work, recorder, access=access, changes=self, paths=paths)
            for path in (*paths, *tracked):
                state = await self.store.state(
                    access, path, keep=(keep or {}).get(path, self.limits.edit_max_bytes)
                )
                if path in existing and not state.exists:
                    raise FileMissing(f"{path} does not exist", path=str(path))
                await recorder.before_image(path, state)
                change.states[path] = state
            yield change
            await work.commit()


async def _tracked(
    work: FilesUnitOfWork, server_id: uuid.UUID, under: FilePath | None
) -> list[FilePath]:
    """The files below a directory that have a history, so deleting it can record them."""
    if under is None:
        return []
    return [FilePath.parse(path) for path in await work.history.paths_under(server_id, str(under))]


class Change:
    """A change in progress: its paths locked, their states read and their before-images kept."""

    def __init__(
        self,
        work: FilesUnitOfWork,
        recorder: Recorder,
        *,
        access: ServerAccess,
        changes: Changes,
        paths: Sequence[FilePath],
    ) -> None:
        self.states: dict[FilePath, FileState] = {}
        self._work = work
        self._recorder = recorder
        self._access = access
        self._changes = changes
        self._paths = paths

    async def applied(
        self, path: FilePath, action: VersionAction, state: FileState, *, note: str | None = None
    ) -> FileVersion:
        """Record what the store now holds at `path`, with its FileModified event."""
        return await self._recorder.applied(path, action, state, note=note)

    async def require_fresh(
        self,
        path: FilePath,
        *,
        if_match: str | None,
        if_none_match: str | None = None,
        attempt: bytes | None = None,
        action: VersionAction = VersionAction.WRITTEN,
    ) -> None:
        """A write based on a stale read fails with 412, once the before-images are committed.

        The `attempt`, when given, is committed too, as a rejected version its author can recover.
        """
        stale = stale_write(
            self.states[path], if_match=if_match, if_none_match=if_none_match, path=path
        )
        if stale is None:
            return
        if attempt is not None:
            tried = FileState(
                exists=True, size=len(attempt), sha256=sha256_of(attempt), content=attempt
            )
            keep = self._changes.limits.rejected_keep_bytes
            await self._recorder.rejected(path, action, tried, keep=keep)
        await self._work.commit()
        raise stale

    async def result(
        self, version: FileVersion, *, created: bool, content: bytes | None = None
    ) -> WriteResult:
        """The answer once committed; `content` written to server.properties is checked against
        the keys the dashboard manages."""
        servers = self._changes.servers
        restart_required = await after_change(servers, self._access, *self._paths)
        warnings: tuple[str, ...] = ()
        if content is not None and version.path == PROPERTIES_FILE:
            warnings = await servers.managed_overrides(self._access, content)
        return WriteResult(
            path=version.path,
            version=version.version,
            etag=etag_of(version.sha256) if version.sha256 else None,
            size=version.size,
            created=created,
            restart_required=restart_required,
            warnings=warnings,
        )
