"""Blocking, race-safe access to one server directory: every component opened with O_NOFOLLOW.

A path is walked one directory file descriptor at a time, so a directory swapped for a symlink
between checks cannot redirect an operation. A symlink met on the way is resolved once with
realpath; if it stays inside the server directory the walk restarts on the resolved path, with
symlinks refused from then on. FIFOs, sockets and device files are never opened for data.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from app.files.domain.model import FileConflict, FileMissing, FileState
from app.files.domain.paths import TEMP_PREFIX, FilePath, PathForbidden

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
CHUNK = 256 * 1024


class _SymlinkMet(Exception):
    pass


def refuse_special(mode: int, path: FilePath) -> None:
    if stat.S_ISLNK(mode):
        raise PathForbidden("symbolic links are not followed here", path=str(path))
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise PathForbidden(
            "device files, FIFOs and sockets cannot be read or written", path=str(path)
        )


class Tree:
    """One server directory, opened as a directory descriptor for the lifetime of a `with`."""

    def __init__(self, root: Path, *, create: bool = False) -> None:
        if create:
            root.mkdir(parents=True, exist_ok=True)
        self.root = root
        try:
            self.fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise FileMissing("the server directory does not exist yet; start it once") from None
        self.owner = directory_owner(self.fd)

    def __enter__(self) -> Tree:
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)

    @contextlib.contextmanager
    def parent_of(
        self, path: FilePath, *, create: bool = False, write: bool = False
    ) -> Iterator[tuple[int, str]]:
        """The opened directory holding `path` and the final name, symlinks resolved safely.

        `write`: the caller changes what it names, so a path that resolves to a file the
        dashboard manages (server.jar) is refused as that file itself would be.
        """
        try:
            fd = self._walk(path.parent.parts, create=create)
            name = path.name
            if (mode := _lstat(fd, name)) is not None and stat.S_ISLNK(mode):
                os.close(fd)
                raise _SymlinkMet
        except _SymlinkMet:
            real = self.resolve(path)
            if real.is_root:
                raise PathForbidden("this path resolves to the server directory itself") from None
            if write:
                real.check_writable()
            fd = self._walk(real.parent.parts, create=create, strict=True)
            name = real.name
            if (mode := _lstat(fd, name)) is not None and stat.S_ISLNK(mode):
                os.close(fd)
                raise PathForbidden("the symbolic link changed while it was resolved") from None
        try:
            yield fd, name
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def directory(self, path: FilePath) -> Iterator[int]:
        try:
            fd = self._walk(path.parts, create=False)
        except _SymlinkMet:
            fd = self._walk(self.resolve(path).parts, create=False, strict=True)
        try:
            yield fd
        finally:
            os.close(fd)

    def resolve(self, path: FilePath) -> FilePath:
        """Follow symlinks with realpath; refuse any path that ends outside the server root."""
        root = os.path.realpath(self.root)
        real = os.path.realpath(os.path.join(root, *path.parts))
        if real != root and not real.startswith(root + os.sep):
            raise PathForbidden(
                "a symbolic link leads outside the server directory", path=str(path)
            )
        resolved = FilePath(tuple(Path(real).relative_to(root).parts))
        resolved.check_allowed()
        return resolved

    def _walk(self, parts: tuple[str, ...], *, create: bool, strict: bool = False) -> int:
        fd = os.dup(self.fd)
        try:
            for index, part in enumerate(parts):
                mode = _lstat(fd, part)
                if mode is None:
                    if not create:
                        raise FileMissing(f"{'/'.join(parts[: index + 1])} does not exist")
                    with contextlib.suppress(FileExistsError):
                        make_directory(fd, part, self.owner)
                elif stat.S_ISLNK(mode):
                    if strict:
                        raise PathForbidden("the path changed while it was resolved")
                    raise _SymlinkMet
                elif not stat.S_ISDIR(mode):
                    raise FileConflict(f"{'/'.join(parts[: index + 1])} is not a directory")
                try:
                    nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise PathForbidden("the path changed while it was resolved") from None
                    raise
                os.close(fd)
                fd = nxt
            return fd
        except BaseException:
            os.close(fd)
            raise

    def read_state(self, path: FilePath, *, keep: int) -> FileState:
        """Hash the file in chunks; keep its bytes when it is at most `keep` bytes long."""
        with self.parent_of(path) as (dir_fd, name):
            mode = _lstat(dir_fd, name)
            if mode is None:
                return FileState(exists=False)
            if stat.S_ISDIR(mode):
                raise FileConflict(f"{path} is a directory", path=str(path))
            refuse_special(mode, path)
            fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
            try:
                info = os.fstat(fd)
                refuse_special(info.st_mode, path)
                digest, kept, size = hashlib.sha256(), bytearray(), 0
                while chunk := os.read(fd, CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    if size <= keep:
                        kept += chunk
                return FileState(
                    exists=True,
                    size=size,
                    sha256=digest.hexdigest(),
                    content=bytes(kept) if size <= keep else None,
                    mode=stat.S_IMODE(info.st_mode),
                )
            finally:
                os.close(fd)

    def write(self, path: FilePath, content: bytes) -> None:
        """Temp file in the same directory, fsync, then rename over the target (mode preserved)."""
        with self.parent_of(path, create=True, write=True) as (dir_fd, name):
            mode = existing_file_mode(dir_fd, name, path)
            tmp = new_temp(dir_fd, self.owner)
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
                try:
                    view = memoryview(content)
                    while view:
                        view = view[os.write(fd, view[:CHUNK]) :]
                    os.fchmod(fd, mode)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp, dir_fd=dir_fd)
                raise
            os.fsync(dir_fd)


def existing_file_mode(dir_fd: int, name: str, path: FilePath) -> int:
    """The mode to keep on replacement; refuse to replace a directory or a special file."""
    mode = _lstat(dir_fd, name)
    if mode is None:
        return 0o644
    if stat.S_ISDIR(mode):
        raise FileConflict(f"{path} is a directory", path=str(path))
    refuse_special(mode, path)
    return stat.S_IMODE(mode)


def directory_owner(fd: int) -> tuple[int, int] | None:
    """Whom new files must belong to: the server's account when the API or worker is root and
    the directory is a game server's, so the server can still read and change them."""
    info = os.fstat(fd)
    if os.geteuid() != 0 or info.st_uid == 0:
        return None
    return info.st_uid, info.st_gid


def new_temp(dir_fd: int, owner: tuple[int, int] | None) -> str:
    """Create an empty, private temporary file in the directory and return its name."""
    name = f"{TEMP_PREFIX}{secrets.token_hex(8)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(name, flags, 0o600, dir_fd=dir_fd)
    try:
        if owner is not None:
            os.fchown(fd, *owner)
    finally:
        os.close(fd)
    return name


def make_directory(dir_fd: int, name: str, owner: tuple[int, int] | None) -> None:
    os.mkdir(name, 0o755, dir_fd=dir_fd)
    if owner is not None:
        os.chown(name, *owner, dir_fd=dir_fd, follow_symlinks=False)


def _lstat(dir_fd: int, name: str) -> int | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return None
