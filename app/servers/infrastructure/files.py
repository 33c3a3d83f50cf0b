"""A server's directory on its node: server.properties, eula.txt, the jar, the console files."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from app.servers.domain.model import ServerConfig
from app.servers.domain.properties import managed_properties, merge_properties
from app.shared.files import read_regular, write_atomically

PROPERTIES = "server.properties"
PROPERTIES_MAX_BYTES = 1024 * 1024
PRIVATE = ".mcdash"


class UnsafePrivateDirectory(OSError):
    """`.mcdash/` is not the worker's own directory: something replaced it."""


@dataclass(frozen=True, slots=True)
class ServerDirectory:
    """Where one server lives: `<data_dir>/servers/<id>/` plus the worker's private `.mcdash/`.

    The game server owns the directory, so the worker reaches `.mcdash/` only through a
    descriptor of a directory it has checked is its own, and never follows a symlink in it.
    """

    path: Path

    @property
    def meta(self) -> Path:
        return self.path / PRIVATE

    @property
    def jar(self) -> Path:
        return self.path / "server.jar"

    def ensure_private(self) -> None:
        """Blocking: create `.mcdash/` (0700, the worker's); set aside one that was replaced."""
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            st = self.meta.lstat()
        except FileNotFoundError:
            self.meta.mkdir(mode=0o700)
            return
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            os.rename(self.meta, self.path / f"{PRIVATE}.replaced-{time.time_ns()}")
            self.meta.mkdir(mode=0o700)
        elif stat.S_IMODE(st.st_mode) != 0o700:
            os.chmod(self.meta, 0o700)

    def _private_fd(self) -> int:
        fd = os.open(self.meta, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            os.close(fd)
            raise UnsafePrivateDirectory(errno.EPERM, f"{self.meta} is not the worker's own")
        return fd

    def open_private(self, name: str, flags: int, mode: int = 0o600) -> int:
        """Blocking: open a file of `.mcdash/` without following links; the caller closes it."""
        directory = self._private_fd()
        try:
            return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=directory)
        finally:
            os.close(directory)

    def read_private(self, name: str, *, limit: int) -> bytes:
        fd = self.open_private(name, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            return handle.read(limit)

    def write_private(self, name: str, content: bytes) -> None:
        fd = self.open_private(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)

    def remove_private(self, name: str) -> None:
        directory = self._private_fd()
        try:
            os.unlink(name, dir_fd=directory)
        except FileNotFoundError:
            pass
        finally:
            os.close(directory)

    def has_private(self, name: str) -> bool:
        try:
            directory = self._private_fd()
        except FileNotFoundError:
            return False
        try:
            os.stat(name, dir_fd=directory, follow_symlinks=False)
        except FileNotFoundError:
            return False
        finally:
            os.close(directory)
        return True

    def private_size(self, name: str) -> int:
        directory = self._private_fd()
        try:
            return os.stat(name, dir_fd=directory, follow_symlinks=False).st_size
        except FileNotFoundError:
            return 0
        finally:
            os.close(directory)

    def replace_private(self, source: str, target: str) -> None:
        directory = self._private_fd()
        try:
            os.replace(source, target, src_dir_fd=directory, dst_dir_fd=directory)
        finally:
            os.close(directory)

    def ensure_console_fifo(self) -> None:
        directory = self._private_fd()
        try:
            st = os.stat("console.in", dir_fd=directory, follow_symlinks=False)
            if not stat.S_ISFIFO(st.st_mode):
                os.unlink("console.in", dir_fd=directory)
                raise FileNotFoundError
        except FileNotFoundError:
            os.mkfifo("console.in", 0o600, dir_fd=directory)
        finally:
            os.close(directory)

    def write_settings(self, config: ServerConfig, *, port: int, eula_accepted: bool) -> None:
        """Blocking: write eula.txt and the managed keys of server.properties."""
        self.ensure_private()
        properties = self.path / PROPERTIES
        try:
            existing = read_regular(properties, limit=PROPERTIES_MAX_BYTES).decode(
                "utf-8", "replace"
            )
        except OSError:
            existing = ""  # a link or a special file in its place is replaced by a plain file
        merged = merge_properties(existing, managed_properties(config, port))
        write_atomically(properties, merged.encode("utf-8"))
        if eula_accepted:
            eula = "# Accepted through mcdash by the server's owner\neula=true\n"
            write_atomically(self.path / "eula.txt", eula.encode())

    def install_jar(self, source: Path, *, name: str = "server.jar") -> None:
        """Blocking: hard-link the cached jar (copy across file systems); the game server can
        replace its link but never write into the cached file."""
        tmp = self.path / f".{name}.tmp"
        tmp.unlink(missing_ok=True)
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o644)  # readable by the server's account, writable by nobody but us
        os.replace(tmp, self.path / name)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
