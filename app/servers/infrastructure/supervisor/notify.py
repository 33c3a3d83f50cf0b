"""Change notification for the supervisor: inotify for the console logs, pidfds for the JVMs.

With hundreds of servers on a node, polling each log every few milliseconds and each process
ten times a second cost the worker most of a core while nothing happened (issue 13). The
kernel says instead when a log grew (inotify, through inotify_simple) and when a process ended
(a pidfd becomes readable), on the event loop's own selector.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path

import structlog
from inotify_simple import INotify, flags

log = structlog.get_logger(__name__)

_LOG_EVENTS = flags.MODIFY | flags.MOVE_SELF | flags.DELETE_SELF


class LogWatch:
    """Which followed files were written to since the last `take()`; `changed` is set then."""

    def __init__(self) -> None:
        self.changed = asyncio.Event()
        self._inotify: INotify | None = None
        self._files: dict[int, object] = {}  # watch descriptor -> what the caller follows
        self._dirty: set[object] = set()
        self._all_dirty = False

    def start(self) -> bool:
        """Open the inotify instance on the running loop; False when the kernel refuses one."""
        try:
            self._inotify = INotify(nonblocking=True)
        except OSError as exc:
            log.warning("inotify_unavailable_polling_logs", error=str(exc))
            return False
        asyncio.get_running_loop().add_reader(self._inotify.fileno(), self._read)
        return True

    def close(self) -> None:
        if self._inotify is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._inotify.fileno())
            self._inotify.close()
            self._inotify = None
        self._files.clear()

    def add(self, path: Path, owner: object) -> int | None:
        """Watch `path` for `owner`; None when it cannot be watched (the caller polls it)."""
        if self._inotify is None:
            return None
        try:
            wd = int(self._inotify.add_watch(path, _LOG_EVENTS))
        except OSError as exc:
            log.warning("log_watch_failed", path=str(path), error=str(exc))
            return None
        self._files[wd] = owner
        return wd

    def remove(self, wd: int) -> None:
        if self._files.pop(wd, None) is not None and self._inotify is not None:
            with contextlib.suppress(OSError):  # the file went away, and its watch with it
                self._inotify.rm_watch(wd)

    def watching(self, wd: int) -> bool:
        return wd in self._files

    def take(self) -> tuple[set[object], bool]:
        """The owners written to since the last call, and whether every one may have been
        (the kernel's queue overflowed)."""
        dirty, every = self._dirty, self._all_dirty
        self._dirty, self._all_dirty = set(), False
        self.changed.clear()
        return dirty, every

    def _read(self) -> None:
        assert self._inotify is not None
        try:
            events = self._inotify.read(timeout=0)
        except OSError:
            return
        for event in events:
            if event.mask & flags.Q_OVERFLOW:
                self._all_dirty = True
            elif (owner := self._files.get(event.wd)) is not None:
                self._dirty.add(owner)
                if event.mask & (flags.IGNORED | flags.MOVE_SELF | flags.DELETE_SELF):
                    self._files.pop(event.wd, None)
        if self._dirty or self._all_dirty:
            self.changed.set()


def watch_exit(pid: int, on_exit: Callable[[], None]) -> int | None:
    """Call `on_exit` on the loop once process `pid` has ended; returns the pidfd to give to
    `unwatch_exit`, or None where pidfds are missing (Linux before 5.3): the caller polls."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None
    asyncio.get_running_loop().add_reader(fd, on_exit)
    return fd


def unwatch_exit(fd: int) -> None:
    with contextlib.suppress(Exception):
        asyncio.get_running_loop().remove_reader(fd)
    with contextlib.suppress(OSError):
        os.close(fd)
