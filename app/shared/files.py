"""Files in a directory someone else controls (a game server's): no link followed, owner kept."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path


def write_atomically(path: Path, content: bytes) -> None:
    """Replace `path` whole; the new file belongs to the directory's owner (the server's
    account when the worker is root), so the game server can still read and change it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            _give_to_directory_owner(handle.fileno(), path.parent)
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _give_to_directory_owner(fd: int, directory: Path) -> None:
    if os.geteuid() != 0:
        return
    owner = os.stat(directory)
    if owner.st_uid != 0:
        os.fchown(fd, owner.st_uid, owner.st_gid)


def read_regular(path: Path, *, limit: int) -> bytes:
    """Blocking: a regular file's bytes, refusing symlinks and anything else that isn't a plain
    file (the game server controls its directory); a missing file is empty."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return b""
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, f"{path.name} is not a regular file")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"{path.name} is larger than {limit} bytes")
    return data
