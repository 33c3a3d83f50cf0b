"""Command handlers of the files context: every change is locked, applied, then recorded."""

from __future__ import annotations

import uuid

from app.files.application.history import FileLimits, FilesUowFactory, Recorder, stale_write
from app.files.application.messages import (
    DeleteFile,
    RestoreVersion,
    WriteFile,
    WriteResult,
)
from app.files.domain.model import (
    PROPERTIES_FILE,
    FileConflict,
    FileMissing,
    FileState,
    FileVersion,
    TooLarge,
    VersionAction,
    sha256_of,
)
from app.files.domain.paths import FilePath
from app.files.domain.ports import FileStore, ServerAccess, Servers
from app.shared.domain import Clock, Forbidden
from app.shared.security import Permission, Principal


def code_forbidden(path: FilePath) -> Forbidden:
    return Forbidden(
        f"this action needs the {Permission.SERVER_CODE.value} permission: it puts a .jar into "
        f"{path}, code the game server would run",
        permission=Permission.SERVER_CODE.value,
        path=str(path),
    )


async def check_code_permission(
    actor: Principal, server_id: uuid.UUID, path: FilePath, store: FileStore
) -> None:
    """A `.jar` into plugins/ or mods/ is code the game server runs: it needs server:code,
    whether the path names it or a link in the path leads there."""
    if actor.has(Permission.SERVER_CODE):
        return
    if path.installs_code:
        raise code_forbidden(path)
    if not path.name.casefold().endswith(".jar"):
        return
    if (await store.resolve(server_id, path)).installs_code:
        raise code_forbidden(path)


def writable_path(raw: str) -> FilePath:
    """A path that may be changed: well formed, inside the server, not the server jar."""
    path = FilePath.parse(raw)
    path.check_writable()
    return path


async def after_change(servers: Servers, access: ServerAccess, *paths: FilePath) -> bool:
    """Editing server.properties of a running server only takes effect after a restart."""
    if any(str(path) == PROPERTIES_FILE for path in paths):
        await servers.mark_restart_required(access.server_id, PROPERTIES_FILE)
        return access.active
    return False


async def _replace_content(
    actor: Principal,
    access: ServerAccess,
    path: FilePath,
    content: bytes,
    *,
    action: VersionAction,
    if_match: str | None,
    if_none_match: str | None = None,
    note: str | None = None,
    uow: FilesUowFactory,
    store: FileStore,
    servers: Servers,
    clock: Clock,
    limits: FileLimits,
) -> WriteResult:
    async with uow() as work:
        history = Recorder(work, server_id=access.server_id, author_id=actor.user_id, clock=clock)
        await history.lock(path)
        current = await store.state(access.server_id, path, keep=limits.edit_max_bytes)
        await history.before_image(path, current)
        stale = stale_write(current, if_match=if_match, if_none_match=if_none_match, path=path)
        if stale is not None:
            attempt = FileState(
                exists=True, size=len(content), sha256=sha256_of(content), content=content
            )
            await history.rejected(path, action, attempt, keep=limits.rejected_keep_bytes)
            await work.commit()
            raise stale
        written = await store.write(access.server_id, path, content)
        if action is VersionAction.WRITTEN and not current.exists:
            action = VersionAction.CREATED
        version = await history.applied(path, action, written, note=note)
        await work.commit()
    return WriteResult(
        path=str(path),
        version=version.version,
        etag=written.etag,
        size=written.size,
        created=not current.exists,
        restart_required=await after_change(servers, access, path),
        warnings=(
            await servers.managed_overrides(access, content) if str(path) == PROPERTIES_FILE else ()
        ),
    )


async def handle_write_file(
    cmd: WriteFile,
    *,
    uow: FilesUowFactory,
    store: FileStore,
    servers: Servers,
    clock: Clock,
    limits: FileLimits,
) -> WriteResult:
    path = writable_path(cmd.path)
    content = cmd.content.encode("utf-8")
    if len(content) > limits.edit_max_bytes:
        raise TooLarge(
            f"text edits are limited to {limits.edit_max_bytes} bytes; upload larger files",
            limit=limits.edit_max_bytes,
        )
    access = await servers.visible(cmd.actor, cmd.server_id)
    await check_code_permission(cmd.actor, access.server_id, path, store)
    return await _replace_content(
        cmd.actor,
        access,
        path,
        content,
        action=VersionAction.WRITTEN,
        if_match=cmd.if_match,
        if_none_match=cmd.if_none_match,
        uow=uow,
        store=store,
        servers=servers,
        clock=clock,
        limits=limits,
    )


async def handle_restore_version(
    cmd: RestoreVersion,
    *,
    uow: FilesUowFactory,
    store: FileStore,
    servers: Servers,
    clock: Clock,
    limits: FileLimits,
) -> WriteResult:
    path = writable_path(cmd.path)
    access = await servers.visible(cmd.actor, cmd.server_id)
    await check_code_permission(cmd.actor, access.server_id, path, store)
    async with uow() as work:
        chosen = await work.history.get(access.server_id, str(path), cmd.version)
    content = _restorable(chosen, path, cmd.version)
    current = await store.state(access.server_id, path, keep=0)
    if_match = cmd.if_match or (current.etag if current.exists else None)
    return await _replace_content(
        cmd.actor,
        access,
        path,
        content,
        action=VersionAction.RESTORED,
        if_match=if_match,
        note=f"restored version {cmd.version}",
        uow=uow,
        store=store,
        servers=servers,
        clock=clock,
        limits=limits,
    )


def _restorable(version: FileVersion | None, path: FilePath, number: int) -> bytes:
    if version is None:
        raise FileMissing(f"{path} has no version {number}", path=str(path), version=number)
    if not version.exists:
        raise FileConflict(f"version {number} of {path} records its removal; pick another")
    if version.content is None:
        raise FileConflict(
            f"the content of version {number} was not kept (binary or over the edit limit)"
        )
    return version.content


async def handle_delete_file(
    cmd: DeleteFile,
    *,
    uow: FilesUowFactory,
    store: FileStore,
    servers: Servers,
    clock: Clock,
    limits: FileLimits,
) -> WriteResult:
    path = writable_path(cmd.path)
    access = await servers.visible(cmd.actor, cmd.server_id)
    if await store.is_directory(access.server_id, path):
        return await _delete_directory(cmd, access, path, uow, store, clock, limits)
    async with uow() as work:
        history = Recorder(
            work, server_id=access.server_id, author_id=cmd.actor.user_id, clock=clock
        )
        await history.lock(path)
        current = await store.state(access.server_id, path, keep=limits.edit_max_bytes)
        if not current.exists:
            raise FileMissing(f"{path} does not exist", path=str(path))
        await history.before_image(path, current)
        if cmd.if_match is not None:
            stale = stale_write(current, if_match=cmd.if_match, if_none_match=None, path=path)
            if stale is not None:
                await work.commit()
                raise stale
        await store.delete(access.server_id, path, recursive=False)
        version = await history.applied(path, VersionAction.DELETED, FileState(exists=False))
        await work.commit()
    return WriteResult(
        path=str(path),
        version=version.version,
        etag=None,
        size=None,
        created=False,
        restart_required=await after_change(servers, access, path),
    )


async def _delete_directory(
    cmd: DeleteFile,
    access: ServerAccess,
    path: FilePath,
    uow: FilesUowFactory,
    store: FileStore,
    clock: Clock,
    limits: FileLimits,
) -> WriteResult:
    """Files inside with a history get a deletion version each, so they can be brought back."""
    async with uow() as work:
        history = Recorder(
            work, server_id=access.server_id, author_id=cmd.actor.user_id, clock=clock
        )
        tracked = [
            FilePath.parse(p) for p in await work.history.paths_under(access.server_id, str(path))
        ]
        await history.lock(path, *tracked)
        states = [
            await store.state(access.server_id, p, keep=limits.edit_max_bytes) for p in tracked
        ]
        for inner, state in zip(tracked, states, strict=True):
            await history.before_image(inner, state)
        await store.delete(access.server_id, path, recursive=cmd.recursive)
        for inner, state in zip(tracked, states, strict=True):
            if state.exists:
                await history.applied(inner, VersionAction.DELETED, FileState(exists=False))
        await work.commit()
    return WriteResult(path=str(path), version=None, etag=None, size=None, created=False)
