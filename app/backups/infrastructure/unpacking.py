"""Bounded reading of backup archives: a decompression bomb is refused before it is unpacked.

Every member's declared size is charged to a budget (expansion ratio, total, member count, free
disk) before one byte of it is read. Extended headers, which tarfile keeps in memory, are capped
as they are parsed, sparse members are refused, and every decompressed byte is counted, so data
that no member accounts for cannot slip past the budget either.
"""

from __future__ import annotations

import gzip
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, cast

import zstandard

from app.backups.domain.errors import InvalidArchive
from app.backups.domain.model import Compression

BUFFER = 1 << 20
_HEADER_TYPES = frozenset(
    {
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
    }
)
# Per member: its 512-byte header and up to 511 bytes of padding; and what tarfile reads ahead.
_MEMBER_OVERHEAD = 1024
_READ_AHEAD = 2 * BUFFER


@dataclass(frozen=True, slots=True, kw_only=True)
class UnpackLimits:
    """How far an archive may expand; archives unpacking to under `ratio_floor_bytes` are spared
    the ratio (a tiny archive of a fresh world compresses very well)."""

    max_ratio: float = 100.0
    max_total_bytes: int = 200 * 1024**3
    max_members: int = 1_000_000
    min_free_bytes: int = 1024**3
    ratio_floor_bytes: int = 16 * 1024**2
    max_header_bytes: int = 1024**2


class UnpackBudget:
    """What an archive has unpacked so far; InvalidArchive the moment a limit would be passed."""

    def __init__(self, limits: UnpackLimits, archive_size: int, target: Path | None) -> None:
        self.limits = limits
        self.archive_size = archive_size
        self.allowed = min(
            limits.max_total_bytes,
            max(limits.ratio_floor_bytes, int(archive_size * limits.max_ratio)),
        )
        self.target = target
        self.charged = 0
        self.members = 0

    def header(self, info: tarfile.TarInfo) -> None:
        """A header block was parsed; extended headers are charged before tarfile reads them."""
        if info.type == tarfile.GNUTYPE_SPARSE:
            raise InvalidArchive(
                f"the archive holds a sparse member, which is refused: {info.name!r}"
            )
        if info.type not in _HEADER_TYPES:
            return
        if info.size > self.limits.max_header_bytes:
            raise InvalidArchive(
                f"the archive holds a {info.size}-byte extended header; at most "
                f"{self.limits.max_header_bytes} bytes are read"
            )
        self._charge(info.size)

    def member(self, member: tarfile.TarInfo) -> None:
        """Charge a member before its data is read or written."""
        self.members += 1
        if self.members > self.limits.max_members:
            raise InvalidArchive(
                f"the archive holds more than {self.limits.max_members} members "
                "(MCDASH_BACKUP_MAX_MEMBERS)"
            )
        if member.sparse is not None:
            raise InvalidArchive(
                f"the archive holds a sparse member, which is refused: {member.name!r}"
            )
        if member.isfile():
            self._charge(member.size)
            self._check_disk(member.size)

    def decompressed(self, total: int) -> None:
        """All bytes decompressed so far: more than the members account for is refused."""
        if total > self.charged + _MEMBER_OVERHEAD * (self.members + 1) + _READ_AHEAD:
            self._refuse_ratio()

    def _charge(self, size: int) -> None:
        self.charged += size
        if self.charged > self.limits.max_total_bytes:
            raise InvalidArchive(
                f"the archive unpacks to more than {self.limits.max_total_bytes} bytes "
                "(MCDASH_BACKUP_MAX_UNPACKED_BYTES)"
            )
        if self.charged > self.allowed:
            self._refuse_ratio()

    def _refuse_ratio(self) -> None:
        raise InvalidArchive(
            f"the archive of {self.archive_size} bytes unpacks to more than "
            f"{self.limits.max_ratio:g} times its size (MCDASH_BACKUP_MAX_EXPANSION_RATIO): "
            "refused as a decompression bomb"
        )

    def _check_disk(self, size: int) -> None:
        if self.target is None or size == 0:
            return
        free = shutil.disk_usage(self.target).free
        if free - size < self.limits.min_free_bytes:
            raise InvalidArchive(
                f"unpacking the archive would leave less than {self.limits.min_free_bytes} bytes "
                f"free on the node's disk ({free} are free; MCDASH_BACKUP_MIN_FREE_BYTES)"
            )


class _CountingReader:
    """The decompressed stream, every byte of it reported to the budget."""

    def __init__(self, stream: IO[bytes], budget: UnpackBudget) -> None:
        self._stream = stream
        self._budget = budget
        self._total = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size if 0 <= size <= BUFFER else BUFFER)
        self._total += len(data)
        self._budget.decompressed(self._total)
        return data

    def close(self) -> None:
        self._stream.close()


def _charging_tarinfo(budget: UnpackBudget) -> type[tarfile.TarInfo]:
    class ChargedTarInfo(tarfile.TarInfo):
        @classmethod
        def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> ChargedTarInfo:
            info = super().frombuf(buf, encoding, errors)
            budget.header(info)
            return info

    return ChargedTarInfo


def open_bounded_tar(
    handle: BinaryIO, compression: Compression, budget: UnpackBudget
) -> tarfile.TarFile:
    """A streaming tar reader over the decompressed archive, held to `budget`."""
    stream: IO[bytes]
    if compression is Compression.GZIP:
        stream = cast(IO[bytes], gzip.GzipFile(fileobj=handle, mode="rb"))
    else:
        stream = zstandard.ZstdDecompressor().stream_reader(handle, read_size=BUFFER)
    return tarfile.open(
        fileobj=cast(IO[bytes], _CountingReader(stream, budget)),
        mode="r|",
        bufsize=BUFFER,
        tarinfo=_charging_tarinfo(budget),
    )
