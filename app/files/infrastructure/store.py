"""The node's file store: a server's directory on this node's disk, all I/O in threads."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import stat
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from app.files.domain.model import (
    FileConflict,
    FileMissing,
    FileState,
    PreconditionFailed,
    looks_like_text,
)
from app.files.domain.paths import CONTROL_DIRECTORY, TEMP_PREFIX, FilePath, PathForbidden
from app.files.domain.ports import Download, FileEntry
from app.files.infrastructure.tree import (
    CHUNK,
    READ_FLAGS,
    Tree,
    existing_file_mode,
    make_directory,
    refuse_special,
)
from app.files.infrastructure.upload import LocalUploadSink
from app.shared.domain import Page
from app.shared.lanes import Lanes

_TYPES = ((stat.S_ISDIR, "directory"), (stat.S_ISREG, "file"), (stat.S_ISLNK, "symlink"))


def _kind(mode: int) -> str:
    return next((name for test, name in _TYPES if test(mode)), "other")


class LocalFileStore:
    """Files of `<servers_dir>/<server_id>/` on this node, as its agent serves them."""

    def __init__(self, servers_dir: Path, *, text_max_bytes: int) -> None:
        self._servers_dir = servers_dir
        self._text_max = text_max_bytes
        self._lanes = Lanes()

    def _tree(self, server_id: uuid.UUID, *, create: bool = False) -> Tree:
        return Tree(self._servers_dir / str(server_id), create=create)

    async def listing(
        self, server_id: uuid.UUID, path: FilePath, *, page: int, limit: int
    ) -> Page[FileEntry]:
        return await asyncio.to_thread(self._listing, server_id, path, page, limit)

    def _listing(
        self, server_id: uuid.UUID, path: FilePath, page: int, limit: int
    ) -> Page[FileEntry]:
        if path.is_root and not (self._servers_dir / str(server_id)).is_dir():
            return Page(items=[], total=0, page=page, limit=limit)
        with self._tree(server_id) as tree, tree.directory(path) as dir_fd:
            found: list[tuple[str, os.stat_result]] = []
            for name in os.listdir(dir_fd):
                if name.startswith(TEMP_PREFIX) or (path.is_root and name == CONTROL_DIRECTORY):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    found.append((name, os.stat(name, dir_fd=dir_fd, follow_symlinks=False)))
            found.sort(key=lambda item: (not stat.S_ISDIR(item[1].st_mode), item[0].casefold()))
            chosen = found[(page - 1) * limit : page * limit]
            items = [
                FileEntry(
                    name=name,
                    path="/".join((*path.parts, name)),
                    type=_kind(info.st_mode),
                    size=info.st_size,
                    modified_at=datetime.fromtimestamp(info.st_mtime, UTC),
                    is_text=stat.S_ISREG(info.st_mode)
                    and info.st_size <= self._text_max
                    and _sniff(dir_fd, name),
                )
                for name, info in chosen
            ]
        return Page(items=items, total=len(found), page=page, limit=limit)

    async def state(self, server_id: uuid.UUID, path: FilePath, *, keep: int) -> FileState:
        return await asyncio.to_thread(self._state, server_id, path, keep)

    def _state(self, server_id: uuid.UUID, path: FilePath, keep: int) -> FileState:
        if not (self._servers_dir / str(server_id)).is_dir():
            return FileState(exists=False)
        with self._tree(server_id) as tree:
            try:
                return tree.read_state(path, keep=keep)
            except FileMissing:
                return FileState(exists=False)

    async def is_directory(self, server_id: uuid.UUID, path: FilePath) -> bool:
        return await asyncio.to_thread(self._is_directory, server_id, path)

    def _is_directory(self, server_id: uuid.UUID, path: FilePath) -> bool:
        with self._tree(server_id) as tree, tree.parent_of(path) as (dir_fd, name):
            try:
                return stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
            except FileNotFoundError:
                return False

    async def resolve(self, server_id: uuid.UUID, path: FilePath) -> FilePath:
        return await asyncio.to_thread(self._resolve, server_id, path)

    def _resolve(self, server_id: uuid.UUID, path: FilePath) -> FilePath:
        try:
            with self._tree(server_id) as tree:
                return tree.resolve(path)
        except FileMissing:  # no directory yet, so no link either
            return path

    async def holds_jar(self, server_id: uuid.UUID, path: FilePath) -> bool:
        return await asyncio.to_thread(self._holds_jar, server_id, path)

    def _holds_jar(self, server_id: uuid.UUID, path: FilePath) -> bool:
        with self._tree(server_id) as tree, tree.directory(path) as dir_fd:
            for _, dirs, files, _ in os.fwalk(".", dir_fd=dir_fd, follow_symlinks=False):
                if any(name.casefold().endswith(".jar") for name in (*files, *dirs)):
                    return True
        return False

    async def write(
        self,
        server_id: uuid.UUID,
        path: FilePath,
        content: bytes,
        *,
        expected: FileState | None = None,
    ) -> FileState:
        """With `expected`, a compare-and-swap: the file is replaced only if it still is what
        the writer read, checked and replaced with no other write of this path in between."""
        async with self._lanes.hold(f"{server_id}/{path}"):
            return await asyncio.to_thread(self._write, server_id, path, content, expected)

    def _write(
        self, server_id: uuid.UUID, path: FilePath, content: bytes, expected: FileState | None
    ) -> FileState:
        with self._tree(server_id, create=True) as tree:
            if expected is not None:
                try:
                    now = tree.read_state(path, keep=0)
                except FileMissing:  # a directory on the way is missing too
                    now = FileState(exists=False)
                if (now.exists, now.sha256) != (expected.exists, expected.sha256):
                    raise PreconditionFailed(
                        f"{path} changed while it was being saved; reload, merge and save again",
                        path=str(path),
                        current_etag=now.etag,
                    )
            tree.write(path, content)
            return tree.read_state(path, keep=len(content))

    async def delete(self, server_id: uuid.UUID, path: FilePath, *, recursive: bool) -> None:
        await asyncio.to_thread(self._delete, server_id, path, recursive)

    def _delete(self, server_id: uuid.UUID, path: FilePath, recursive: bool) -> None:
        with (
            self._tree(server_id) as tree,
            tree.parent_of(path, write=True) as (dir_fd, name),
        ):
            try:
                mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
            except FileNotFoundError:
                raise FileMissing(f"{path} does not exist", path=str(path)) from None
            refuse_special(mode, path)
            if not stat.S_ISDIR(mode):
                os.unlink(name, dir_fd=dir_fd)
            elif recursive:
                shutil.rmtree(name, dir_fd=dir_fd)
            else:
                try:
                    os.rmdir(name, dir_fd=dir_fd)
                except OSError as exc:
                    if exc.errno != errno.ENOTEMPTY:
                        raise
                    raise FileConflict(
                        f"{path} is not empty; delete it with recursive=true", path=str(path)
                    ) from None
            os.fsync(dir_fd)

    async def mkdir(self, server_id: uuid.UUID, path: FilePath) -> None:
        await asyncio.to_thread(self._mkdir, server_id, path)

    def _mkdir(self, server_id: uuid.UUID, path: FilePath) -> None:
        with (
            self._tree(server_id, create=True) as tree,
            tree.parent_of(path, create=True, write=True) as (dir_fd, name),
        ):
            try:
                make_directory(dir_fd, name, tree.owner)
            except FileExistsError:
                raise FileConflict(f"{path} already exists", path=str(path)) from None

    async def move(self, server_id: uuid.UUID, source: FilePath, target: FilePath) -> None:
        await asyncio.to_thread(self._move, server_id, source, target)

    def _move(self, server_id: uuid.UUID, source: FilePath, target: FilePath) -> None:
        with (
            self._tree(server_id) as tree,
            tree.parent_of(source, write=True) as (src_fd, src_name),
            tree.parent_of(target, create=True, write=True) as (dst_fd, dst_name),
        ):
            try:
                mode = os.stat(src_name, dir_fd=src_fd, follow_symlinks=False).st_mode
            except FileNotFoundError:
                raise FileMissing(f"{source} does not exist", path=str(source)) from None
            refuse_special(mode, source)
            with contextlib.suppress(FileNotFoundError):
                os.stat(dst_name, dir_fd=dst_fd, follow_symlinks=False)
                raise FileConflict(f"{target} already exists", path=str(target))
            os.rename(src_name, dst_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
            os.fsync(dst_fd)

    async def download(self, server_id: uuid.UUID, path: FilePath) -> Download:
        fd, size = await asyncio.to_thread(self._open, server_id, path)
        return Download(name=path.name, size=size, sha256=None, chunks=_chunks(fd))

    def _open(self, server_id: uuid.UUID, path: FilePath) -> tuple[int, int]:
        with self._tree(server_id) as tree, tree.parent_of(path) as (dir_fd, name):
            try:
                fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
            except FileNotFoundError:
                raise FileMissing(f"{path} does not exist", path=str(path)) from None
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise PathForbidden("symbolic links are not followed here") from None
                raise
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                os.close(fd)
                raise FileConflict(f"{path} is a directory", path=str(path))
            if not stat.S_ISREG(info.st_mode):
                os.close(fd)
                refuse_special(info.st_mode, path)
            return fd, info.st_size

    async def upload(self, server_id: uuid.UUID, path: FilePath) -> LocalUploadSink:
        return await asyncio.to_thread(self._upload, server_id, path)

    def _upload(self, server_id: uuid.UUID, path: FilePath) -> LocalUploadSink:
        with (
            self._tree(server_id, create=True) as tree,
            tree.parent_of(path, create=True, write=True) as (dir_fd, name),
        ):
            existing_file_mode(dir_fd, name, path)
            return LocalUploadSink.open(os.dup(dir_fd), name, keep=self._text_max, owner=tree.owner)

    def discard_temp(self, server_id: uuid.UUID, target: FilePath, temp: str) -> None:
        """Blocking: remove an upload's temporary file left beside `target`, if it still is."""
        if not temp.startswith(TEMP_PREFIX) or "/" in temp:
            return
        with (
            contextlib.suppress(FileMissing, PathForbidden, FileConflict, FileNotFoundError),
            self._tree(server_id) as tree,
            tree.parent_of(target) as (dir_fd, _),
        ):
            os.unlink(temp, dir_fd=dir_fd)


def _sniff(dir_fd: int, name: str) -> bool:
    try:
        fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
    except OSError:
        return False
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode) and looks_like_text(os.read(fd, 8192))
    finally:
        os.close(fd)


async def _chunks(fd: int) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(os.read, fd, CHUNK):
            yield chunk
    finally:
        os.close(fd)
