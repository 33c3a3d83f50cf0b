"""Command handlers of the files context: every change is locked, applied, then recorded."""

from __future__ import annotations

from app.files.application.changes import Changes
from app.files.application.history import FileLimits, FilesUowFactory
from app.files.application.messages import (
    DeleteFile,
    RestoreVersion,
    WriteFile,
    WriteResult,
)
from app.files.domain.model import (
    FileConflict,
    FileMissing,
    FileState,
    FileVersion,
    TooLarge,
    VersionAction,
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
    actor: Principal, access: ServerAccess, path: FilePath, store: FileStore
) -> None:
    """A `.jar` into plugins/ or mods/ is code the game server runs: it needs server:code,
    whether the path names it or a link in the path leads there."""
    if actor.has(Permission.SERVER_CODE):
        return
    if path.installs_code:
        raise code_forbidden(path)
    if not path.name.casefold().endswith(".jar"):
        return
    if (await store.resolve(access, path)).installs_code:
        raise code_forbidden(path)


def writable_path(raw: str) -> FilePath:
    """A path that may be changed: well formed, inside the server, not the server jar."""
    path = FilePath.parse(raw)
    path.check_writable()
    return path


async def _replace_content(
    changes: Changes,
    actor: Principal,
    access: ServerAccess,
    path: FilePath,
    content: bytes,
    *,
    action: VersionAction,
    if_match: str | None,
    if_none_match: str | None = None,
    note: str | None = None,
) -> WriteResult:
    async with changes.open(actor, access, path) as change:
        current = change.states[path]
        await change.require_fresh(
            path, if_match=if_match, if_none_match=if_none_match, attempt=content, action=action
        )
        written = await changes.store.write(access, path, content, expected=current)
        if action is VersionAction.WRITTEN and not current.exists:
            action = VersionAction.CREATED
        version = await change.applied(path, action, written, note=note)
    return await change.result(version, created=not current.exists, content=content)


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
    await check_code_permission(cmd.actor, access, path, store)
    return await _replace_content(
        Changes(uow=uow, store=store, servers=servers, clock=clock, limits=limits),
        cmd.actor,
        access,
        path,
        content,
        action=VersionAction.WRITTEN,
        if_match=cmd.if_match,
        if_none_match=cmd.if_none_match,
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
    await check_code_permission(cmd.actor, access, path, store)
    async with uow() as work:
        chosen = await work.history.get(access.server_id, str(path), cmd.version)
    content = _restorable(chosen, path, cmd.version)
    current = await store.state(access, path, keep=0)
    return await _replace_content(
        Changes(uow=uow, store=store, servers=servers, clock=clock, limits=limits),
        cmd.actor,
        access,
        path,
        content,
        action=VersionAction.RESTORED,
        if_match=cmd.if_match or (current.etag if current.exists else None),
        note=f"restored version {cmd.version}",
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
    changes = Changes(uow=uow, store=store, servers=servers, clock=clock, limits=limits)
    if await store.is_directory(access, path):
        return await _delete_directory(changes, cmd, access, path)
    async with changes.open(cmd.actor, access, path, existing=(path,)) as change:
        if cmd.if_match is not None:
            await change.require_fresh(path, if_match=cmd.if_match)
        await store.delete(access, path, recursive=False)
        version = await change.applied(path, VersionAction.DELETED, FileState(exists=False))
    return await change.result(version, created=False)


async def _delete_directory(
    changes: Changes, cmd: DeleteFile, access: ServerAccess, path: FilePath
) -> WriteResult:
    """Files inside with a history get a deletion version each, so they can be brought back."""
    async with changes.open(cmd.actor, access, under=path) as change:
        await changes.store.delete(access, path, recursive=cmd.recursive)
        for inner, state in change.states.items():
            if state.exists:
                await change.applied(inner, VersionAction.DELETED, FileState(exists=False))
    return WriteResult(path=str(path), version=None, etag=None, size=None, created=False)
