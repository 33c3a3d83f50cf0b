"""Handlers that move bytes around: renames and moves, new directories, streamed uploads."""

from __future__ import annotations

from app.files.application.changes import Changes
from app.files.application.handlers import check_code_permission, code_forbidden, writable_path
from app.files.application.history import FileLimits, FilesUowFactory
from app.files.application.messages import MakeDirectory, MoveFile, UploadFile, WriteResult
from app.files.domain.model import FileConflict, FileState, TooLarge, VersionAction
from app.files.domain.paths import ROOT, FilePath, InvalidPath
from app.files.domain.ports import FileStore, Servers
from app.shared.domain import Clock
from app.shared.security import Permission


async def handle_move_file(
    cmd: MoveFile,
    *,
    uow: FilesUowFactory,
    store: FileStore,
    servers: Servers,
    clock: Clock,
    limits: FileLimits,
) -> WriteResult:
    source, target = writable_path(cmd.path), writable_path(cmd.to)
    if target.parts[: len(source.parts)] == source.parts:
        raise InvalidPath(f"{source} cannot be moved into itself", path=str(target))
    access = await servers.visible(cmd.actor, cmd.server_id)
    if await store.is_directory(access, source):
        if (
            target.in_code_directory
            and not cmd.actor.has(Permission.SERVER_CODE)
            and await store.holds_jar(access, source)
        ):
            raise code_forbidden(target)
        await store.move(access, source, target)
        return WriteResult(path=str(target), version=None, etag=None, size=None, created=True)
    await check_code_permission(cmd.actor, access, target, store)
    changes = Changes(uow=uow, store=store, servers=servers, clock=clock, limits=limits)
    opened = changes.open(cmd.actor, access, source, target, existing=(source,), keep={target: 0})
    async with opened as change:
        moved = change.states[source]
        await store.move(access, source, target)
        await change.applied(
            source, VersionAction.MOVED_OUT, FileState(exists=False), note=f"moved to {target}"
        )
        version = await change.applied(
            target, VersionAction.MOVED_IN, moved, note=f"moved from {source}"
        )
    return await change.result(version, created=True)


async def handle_make_directory(cmd: MakeDirectory, *, store: FileStore, servers: Servers) -> None:
    path = writable_path(cmd.path)
    access = await servers.visible(cmd.actor, cmd.server_id)
    await store.mkdir(access, path)


async def handle_upload_file(
    cmd: UploadFile,
    *,
    uow: FilesUowFactory,
    store: FileStore,
    servers: Servers,
    clock: Clock,
    limits: FileLimits,
) -> WriteResult:
    if not cmd.filename or "/" in cmd.filename:
        raise InvalidPath("the uploaded file needs a plain file name", filename=cmd.filename)
    directory = FilePath.parse(cmd.directory, allow_root=True) if cmd.directory else ROOT
    path = writable_path("/".join((*directory.parts, cmd.filename)))
    access = await servers.visible(cmd.actor, cmd.server_id)
    await check_code_permission(cmd.actor, access, path, store)
    sink = await store.upload(access, path)
    try:
        async for chunk in cmd.chunks:
            if sink.size + len(chunk) > limits.upload_max_bytes:
                raise TooLarge(
                    f"uploads are limited to {limits.upload_max_bytes} bytes",
                    limit=limits.upload_max_bytes,
                )
            await sink.write(chunk)
        changes = Changes(uow=uow, store=store, servers=servers, clock=clock, limits=limits)
        async with changes.open(cmd.actor, access, path) as change:
            current = change.states[path]
            if current.exists and not cmd.overwrite:
                raise FileConflict(
                    f"{path} already exists; upload with overwrite=true to replace it",
                    path=str(path),
                )
            uploaded = await sink.commit(replace=True)
            version = await change.applied(path, VersionAction.UPLOADED, uploaded)
    except BaseException:
        await sink.abort()
        raise
    return await change.result(version, created=not current.exists)
