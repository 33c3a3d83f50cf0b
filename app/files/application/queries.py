"""Query handlers of the files context: listings, text contents, downloads and history."""

from __future__ import annotations

from app.files.application.history import FileLimits, FilesUowFactory
from app.files.application.messages import (
    DiffVersion,
    GetVersion,
    ListFiles,
    ListVersions,
    OpenDownload,
    ReadFile,
    TextFile,
    VersionDiff,
)
from app.files.domain.model import (
    FileMissing,
    FileVersion,
    IsDirectory,
    NotText,
    decode_text,
    unified_diff,
)
from app.files.domain.paths import FilePath
from app.files.domain.ports import Download, FileEntry, FileStore, ServerAccess, Servers
from app.shared.domain import Page


async def handle_list_files(
    query: ListFiles, *, store: FileStore, servers: Servers
) -> Page[FileEntry]:
    path = FilePath.parse(query.path, allow_root=True)
    access = await servers.visible(query.actor, query.server_id)
    return await store.listing(access, path, page=query.page, limit=query.limit)


async def handle_read_file(
    query: ReadFile, *, store: FileStore, servers: Servers, limits: FileLimits
) -> TextFile:
    path = FilePath.parse(query.path)
    access = await servers.visible(query.actor, query.server_id)
    if await store.is_directory(access, path):
        raise IsDirectory(
            f"{path} is a directory; list it with GET /files?path={path}", path=str(path)
        )
    state = await store.state(access, path, keep=limits.edit_max_bytes)
    if not state.exists or state.etag is None:
        raise FileMissing(f"{path} does not exist", path=str(path))
    text = decode_text(state.content) if state.content is not None else None
    if text is None:
        reason = "is binary" if state.content is not None else "is larger than the edit limit"
        raise NotText(f"{path} {reason}; download it instead", path=str(path), download=True)
    return TextFile(path=str(path), content=text, size=state.size, etag=state.etag)


async def handle_open_download(
    query: OpenDownload, *, store: FileStore, servers: Servers
) -> Download:
    path = FilePath.parse(query.path)
    access = await servers.visible(query.actor, query.server_id)
    return await store.download(access, path)


async def handle_list_versions(
    query: ListVersions, *, uow: FilesUowFactory, servers: Servers
) -> Page[FileVersion]:
    path = FilePath.parse(query.path)
    access = await servers.visible(query.actor, query.server_id)
    async with uow() as work:
        return await work.history.page(
            access.server_id, str(path), page=query.page, limit=query.limit
        )


async def _version(
    uow: FilesUowFactory, servers: Servers, query: GetVersion | DiffVersion
) -> tuple[ServerAccess, FileVersion]:
    path = FilePath.parse(query.path)
    access = await servers.visible(query.actor, query.server_id)
    async with uow() as work:
        version = await work.history.get(access.server_id, str(path), query.version)
    if version is None:
        raise FileMissing(
            f"{path} has no version {query.version}", path=str(path), version=query.version
        )
    return access, version


async def handle_get_version(
    query: GetVersion, *, uow: FilesUowFactory, servers: Servers
) -> FileVersion:
    _, version = await _version(uow, servers, query)
    return version


async def handle_diff_version(
    query: DiffVersion,
    *,
    uow: FilesUowFactory,
    store: FileStore,
    servers: Servers,
    limits: FileLimits,
) -> VersionDiff:
    access, version = await _version(uow, servers, query)
    path = FilePath.parse(version.path)
    old = "" if not version.exists else version.text
    if old is None:
        raise NotText(f"version {version.version} of {path} kept no text to compare")
    current = await store.state(access, path, keep=limits.edit_max_bytes)
    new = "" if not current.exists else None
    if current.exists and current.content is not None:
        new = decode_text(current.content)
    if new is None:
        raise NotText(f"the current {path} is not a text file within the edit limit")
    return VersionDiff(
        path=str(path),
        version=version.version,
        current_etag=current.etag,
        diff=unified_diff(
            old, new, old_label=f"{path}@{version.version}", new_label=f"{path} (current)"
        ),
    )
