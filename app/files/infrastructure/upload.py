"""A streamed upload: chunks go to a private temporary file beside the target, then one rename."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os

from app.files.domain.model import FileConflict, FileState
from app.files.domain.paths import FilePath
from app.files.infrastructure.tree import existing_file_mode, new_temp


class LocalUploadSink:
    """Owns a directory descriptor and a temporary file until `commit` or `abort`."""

    def __init__(self, dir_fd: int, name: str, temp: str, fd: int, *, keep: int) -> None:
        self._dir_fd = dir_fd
        self._name = name
        self._temp = temp
        self._fd = fd
        self._keep = keep
        self._digest = hashlib.sha256()
        self._head = bytearray()
        self._size = 0
        self._closed = False

    @classmethod
    def open(
        cls, dir_fd: int, name: str, *, keep: int, owner: tuple[int, int] | None
    ) -> LocalUploadSink:
        """Blocking: create the temporary file in the directory of `dir_fd` (now owned)."""
        try:
            temp = new_temp(dir_fd, owner)
            fd = os.open(temp, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        except BaseException:
            os.close(dir_fd)
            raise
        return cls(dir_fd, name, temp, fd, keep=keep)

    @property
    def size(self) -> int:
        return self._size

    @property
    def temp(self) -> str:
        """The temporary file's name, in the target's directory."""
        return self._temp

    async def write(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size <= self._keep:
            self._head += chunk
        await asyncio.to_thread(self._write_all, chunk)

    def _write_all(self, chunk: bytes) -> None:
        """Hash and write off the loop (hashlib drops the GIL for large buffers), so the next
        chunk is received meanwhile."""
        self._digest.update(chunk)
        view = memoryview(chunk)
        while view:
            view = view[os.write(self._fd, view) :]

    async def commit(self, *, replace: bool) -> FileState:
        return await asyncio.to_thread(self._commit, replace)

    def _commit(self, replace: bool) -> FileState:
        try:
            path = FilePath((self._name,))
            mode = existing_file_mode(self._dir_fd, self._name, path)
            if not replace:
                with contextlib.suppress(FileNotFoundError):
                    os.stat(self._name, dir_fd=self._dir_fd, follow_symlinks=False)
                    raise FileConflict(
                        f"{self._name} already exists; upload with overwrite=true to replace it",
                        name=self._name,
                    )
            os.fchmod(self._fd, mode)
            os.fsync(self._fd)
            os.replace(self._temp, self._name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
            os.fsync(self._dir_fd)
        except BaseException:
            self._discard()
            raise
        self._close()
        return FileState(
            exists=True,
            size=self._size,
            sha256=self._digest.hexdigest(),
            content=bytes(self._head) if self._size <= self._keep else None,
            mode=mode,
        )

    async def abort(self) -> None:
        await asyncio.to_thread(self._discard)

    def _discard(self) -> None:
        if self._closed:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._temp, dir_fd=self._dir_fd)
        self._close()

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self._fd)
            os.close(self._dir_fd)
