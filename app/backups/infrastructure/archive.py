"""Tar archives of server directories: streamed out while hashed, checked member by member in
(within the unpack limits of `unpacking`)."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO, cast

import structlog
import zstandard

from app.backups.domain.errors import InvalidArchive
from app.backups.domain.model import Compression, installs_code
from app.backups.domain.ports import ArchiveFacts
from app.backups.infrastructure.unpacking import UnpackBudget, UnpackLimits, open_bounded_tar
from app.backups.infrastructure.walk import Entry, copy_entries, walk_tree

log = structlog.get_logger(__name__)

BUFFER = 1 << 20
# The worker's runtime files (console FIFO, wrapper logs, exit code) and the jar, which every
# start installs again from the verified jar cache: neither belongs in a world backup.
EXCLUDED = frozenset(
    {".mcdash", "server.jar", ".server.jar.tmp"}
    | {"fabric-server-launch.jar", ".fabric-server-launch.jar.tmp"}  # Fabric's launcher jar
)
_GZIP_MAGIC, _ZSTD_MAGIC = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"

Progress = Callable[[int], None]


class HashingWriter:
    """Passes bytes on to `sink` while hashing and counting them."""

    def __init__(self, sink: BinaryIO, progress: Progress | None = None) -> None:
        self._sink = sink
        self._progress = progress
        self._sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._sink.write(data)
        self._sha.update(data)
        self.size += len(data)
        if self._progress is not None:
            self._progress(self.size)
        return len(data)

    def flush(self) -> None:
        self._sink.flush()

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


def write_archive(
    source: Path,
    sink: BinaryIO,
    *,
    compression: Compression,
    level: int,
    progress: Progress | None = None,
) -> tuple[int, str]:
    """Blocking: stream `source` as a compressed tar into `sink`; returns (size, sha256)."""
    hashing = HashingWriter(sink, progress)
    sink_like = cast(IO[bytes], hashing)
    compressor: IO[bytes]
    if compression is Compression.GZIP:
        compressor = cast(
            IO[bytes],
            gzip.GzipFile(fileobj=sink_like, mode="wb", compresslevel=level, mtime=0),
        )
    else:
        compressor = zstandard.ZstdCompressor(level=level).stream_writer(
            sink_like, closefd=False, write_size=BUFFER
        )
    with tarfile.open(
        fileobj=compressor, mode="w|", bufsize=BUFFER, format=tarfile.PAX_FORMAT
    ) as tar:
        tar.copybufsize = BUFFER  # type: ignore[attr-defined]
        if source.is_dir():
            for entry in walk_tree(source, excluded=EXCLUDED):
                tar.addfile(*_member(tar, entry))
    compressor.close()
    hashing.flush()
    return hashing.size, hashing.sha256


def _member(tar: tarfile.TarFile, entry: Entry) -> tuple[tarfile.TarInfo, BinaryIO | None]:
    """The tar header from what the open descriptor says, and the file to read its bytes from."""
    member = tar.tarinfo(entry.name)
    member.mode = stat.S_IMODE(entry.info.st_mode)
    member.mtime = int(entry.info.st_mtime)
    member.uid, member.gid = entry.info.st_uid, entry.info.st_gid
    if entry.fd is None:
        member.type = tarfile.DIRTYPE
        return member, None
    member.size = entry.info.st_size
    return member, cast(BinaryIO, _Bounded(entry.fd, entry.info.st_size))


class _Bounded:
    """Exactly the size recorded in the header: a file growing meanwhile is cut, a shrinking
    one padded, so the archive stays well formed either way (the world is flushed anyway)."""

    def __init__(self, fd: int, size: int) -> None:
        self._fd = fd
        self._left = size

    def read(self, n: int = -1) -> bytes:
        want = self._left if n < 0 else min(n, self._left)
        data = os.read(self._fd, want) if want else b""
        if want and not data:
            data = bytes(want)
        self._left -= len(data)
        return data


def copy_tree(source: Path, target: Path) -> None:
    """Blocking: copy what a backup archives (same exclusions) to `target`, a sibling directory."""
    copy_entries(source, target, excluded=EXCLUDED)


def detect_compression(path: Path) -> Compression:
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic.startswith(_GZIP_MAGIC):
        return Compression.GZIP
    if magic == _ZSTD_MAGIC:
        return Compression.ZSTD
    raise InvalidArchive("the file is neither a gzip nor a zstd compressed tar archive")


def file_digest(path: Path) -> tuple[int, str]:
    sha = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(BUFFER):
            sha.update(chunk)
            size += len(chunk)
    return size, sha.hexdigest()


def verify_archive(path: Path, *, size: int | None, sha256: str | None) -> None:
    """Blocking: refuse an archive whose size or SHA-256 differs from what was recorded."""
    actual_size, actual_sha = file_digest(path)
    if size is not None and actual_size != size:
        raise InvalidArchive(
            f"the stored archive has {actual_size} bytes, {size} were recorded: it is damaged"
        )
    if sha256 is not None and actual_sha != sha256:
        raise InvalidArchive(
            f"checksum mismatch: the stored archive's SHA-256 is {actual_sha}, {sha256} was "
            "recorded; it was modified or damaged and is not restored"
        )


def safe_name(member: tarfile.TarInfo) -> PurePosixPath | None:
    """The member's relative path, or InvalidArchive for anything that could leave the target;
    None for a runtime file or jar (a V1 backup holds its server.jar), which is skipped."""
    name = member.name
    path = PurePosixPath(name)
    if name.startswith("/") or path.is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise InvalidArchive(f"the archive holds an absolute path: {name!r}")
    if ".." in path.parts:
        raise InvalidArchive(f"the archive holds a path with '..': {name!r}")
    if member.issym() or member.islnk():
        raise InvalidArchive(f"the archive holds a link, which is refused: {name!r}")
    if not (member.isfile() or member.isdir()):
        raise InvalidArchive(f"the archive holds a device, FIFO or other special file: {name!r}")
    parts = [part for part in path.parts if part not in ("", ".")]
    if parts and parts[0] in EXCLUDED:
        return None
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def inspect_archive(path: Path, *, limits: UnpackLimits | None = None) -> ArchiveFacts:
    """Blocking: an uploaded archive's compression, checksum and member count; unsafe = refused,
    and so is one that would pass the unpack limits."""
    compression = detect_compression(path)
    budget = UnpackBudget(limits or UnpackLimits(), path.stat().st_size, None)
    members = code = 0
    try:
        with path.open("rb") as handle, open_bounded_tar(handle, compression, budget) as tar:
            for member in tar:
                relative = safe_name(member)
                budget.member(member)
                if relative is None:
                    continue
                members += 1
                if member.isfile() and installs_code(relative.parts):
                    code += 1
    except (tarfile.TarError, OSError, EOFError, zstandard.ZstdError) as exc:
        raise InvalidArchive(f"the archive cannot be read: {exc}") from exc
    size, sha256 = file_digest(path)
    return ArchiveFacts(
        compression=compression,
        size_bytes=size,
        sha256=sha256,
        members=members,
        code_members=code,
    )


def extract_archive(
    path: Path, compression: Compression, target: Path, *, limits: UnpackLimits | None = None
) -> int:
    """Blocking: unpack into the empty directory `target`, checking every member first; a
    refused archive leaves what was unpacked before the refusal for the caller to remove."""
    budget = UnpackBudget(limits or UnpackLimits(), path.stat().st_size, target)
    count = 0
    try:
        with path.open("rb") as handle, open_bounded_tar(handle, compression, budget) as tar:
            for member in tar:
                relative = safe_name(member)
                budget.member(member)
                if relative is None:
                    continue
                destination = target.joinpath(*relative.parts)
                if member.isdir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:
                    raise InvalidArchive(f"member {member.name!r} has no data")
                with source, destination.open("xb") as out:
                    shutil.copyfileobj(source, out, BUFFER)
                os.chmod(destination, (member.mode & 0o755) | 0o600)
                os.utime(destination, (member.mtime, member.mtime))
                count += 1
    except (tarfile.TarError, EOFError, zstandard.ZstdError) as exc:
        raise InvalidArchive(f"the archive cannot be read: {exc}") from exc
    except FileExistsError as exc:
        raise InvalidArchive(f"the archive holds {exc.filename!r} twice") from exc
    return count
