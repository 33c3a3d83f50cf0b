"""Reading a server directory that its game server controls, without ever following a link.

The game server can swap any file or directory of its own for a symlink at any moment, for
instance to /etc/shadow or to the data directory, hoping a backup reads it with the worker's
rights. Every component is therefore opened relative to its parent's descriptor with
O_NOFOLLOW, and what is archived is what those descriptors say, not what a path resolves to.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class Entry:
    """A directory (fd None) or an open regular file, with its relative POSIX name."""

    name: str
    info: os.stat_result
    fd: int | None


def walk_tree(source: Path, *, excluded: frozenset[str]) -> Iterator[Entry]:
    """Blocking: directories and regular files under `source`, sorted, each directory followed
    by its contents; the `excluded` names are skipped at the top. A file's descriptor is closed
    once the consumer asks for the next entry; links, devices and sockets are skipped. Only the
    directories on the way down are open at a time."""
    root = os.open(source, _DIRECTORY)
    stack: list[tuple[int, Iterator[str], str]] = [(root, _names(root, excluded), "")]
    try:
        while stack:
            directory, names, prefix = stack[-1]
            name = next(names, None)
            if name is None:
                os.close(directory)
                stack.pop()
                continue
            relative = f"{prefix}{name}"
            try:
                fd = _open(directory, name)
            except OSError as exc:
                log.warning("backup_skipped_entry", path=relative, error=str(exc))
                continue
            if fd is None:
                log.warning("backup_skipped_special_file", path=relative)
                continue
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                stack.append((fd, _names(fd, frozenset()), f"{relative}/"))
                yield Entry(relative, info, None)
                continue
            try:
                yield Entry(relative, info, fd)
            finally:
                os.close(fd)
    finally:
        for directory, _, _ in stack:
            os.close(directory)


def _names(directory: int, excluded: frozenset[str]) -> Iterator[str]:
    return iter(sorted(name for name in os.listdir(directory) if name not in excluded))


def _open(directory: int, name: str) -> int | None:
    """A descriptor of a directory or regular file named in `directory`; None for anything else
    (a link among them: O_NOFOLLOW refuses it, whatever it was a moment ago)."""
    info = os.stat(name, dir_fd=directory, follow_symlinks=False)
    if stat.S_ISDIR(info.st_mode):
        flags = _DIRECTORY
    elif stat.S_ISREG(info.st_mode):
        flags = _FILE
    else:
        return None
    try:
        fd = os.open(name, flags, dir_fd=directory)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # swapped for a link meanwhile
            return None
        raise
    kind = stat.S_IFMT(os.fstat(fd).st_mode)
    if kind not in (stat.S_IFDIR, stat.S_IFREG) or kind != stat.S_IFMT(info.st_mode):
        os.close(fd)
        return None
    return fd


def copy_entries(source: Path, target: Path, *, excluded: frozenset[str]) -> None:
    """Blocking: copy the directories and regular files of `source` into a new `target`."""
    target.mkdir()
    for entry in walk_tree(source, excluded=excluded):
        path = target / entry.name
        if entry.fd is None:
            path.mkdir(mode=stat.S_IMODE(entry.info.st_mode) | 0o700)
            continue
        with open(path, "xb") as out, contextlib.closing(os.fdopen(os.dup(entry.fd), "rb")) as src:
            while chunk := src.read(1 << 20):
                out.write(chunk)
        os.chmod(path, stat.S_IMODE(entry.info.st_mode))
        os.utime(path, ns=(entry.info.st_atime_ns, entry.info.st_mtime_ns))
