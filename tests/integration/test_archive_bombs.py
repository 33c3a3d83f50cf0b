"""Decompression bombs against the archive reader: refused while unpacking, before the bytes
that would pass a limit are written, and a refused restore leaves nothing behind."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile
import uuid
from pathlib import Path

import pytest
import zstandard

from app.backups.domain.errors import InvalidArchive
from app.backups.domain.model import Compression
from app.backups.infrastructure.archive import extract_archive, inspect_archive
from app.backups.infrastructure.swap import RestoreWorkspace
from app.backups.infrastructure.unpacking import UnpackLimits

MIB = 1024 * 1024
LOOSE = UnpackLimits(ratio_floor_bytes=0, min_free_bytes=0)


class Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def compress(raw: bytes | None, compression: Compression, write=None) -> bytes:
    out = io.BytesIO()
    if compression is Compression.GZIP:
        sink = gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0)
    else:
        sink = zstandard.ZstdCompressor(level=3).stream_writer(out, closefd=False)
    if write is not None:
        write(sink)
    else:
        sink.write(raw)
    sink.close()
    return out.getvalue()


def tar(members: list[tarfile.TarInfo | tuple[str, int | bytes]], compression: Compression):
    def write(sink) -> None:
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as out:
            for member in members:
                if isinstance(member, tarfile.TarInfo):
                    out.addfile(member, io.BytesIO(b"\0" * member.size) if member.size else None)
                    continue
                name, data = member
                info = tarfile.TarInfo(name)
                if isinstance(data, int):
                    info.size = data
                    out.addfile(info, Zeros(data))
                else:
                    info.size = len(data)
                    out.addfile(info, io.BytesIO(data))

    return compress(None, compression, write)


def lying_header(size: int) -> bytes:
    """One ustar header declaring `size` bytes of data, and no data at all."""
    info = tarfile.TarInfo("world/region/r.0.0.mca")
    info.size = size
    return info.tobuf(format=tarfile.GNU_FORMAT)


def sparse_header() -> bytes:
    block = bytearray(tarfile.TarInfo("holes.bin").tobuf(format=tarfile.GNU_FORMAT))
    block[156:157] = tarfile.GNUTYPE_SPARSE
    checksum = 256 + sum(block[:148]) + sum(block[156:512])
    block[148:156] = b"%06o\0 " % checksum
    return bytes(block) + bytes(1024)


def sparse_map_bomb() -> tarfile.TarInfo:
    """A GNU sparse 1.0 member whose map (read by tarfile into a list) never ends."""
    info = tarfile.TarInfo("map.bin")
    info.pax_headers = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": "map.bin",
        "GNU.sparse.realsize": "1",
    }
    info.size = 0
    return info


def sparse_map_archive(compression: Compression) -> bytes:
    head = io.BytesIO()
    with tarfile.open(fileobj=head, mode="w", format=tarfile.PAX_FORMAT) as out:
        out.addfile(sparse_map_bomb())
    raw = head.getvalue()
    end = raw.rindex(b"map.bin") // 512 * 512 + 512  # after the member's own header block
    return compress(raw[:end] + b"999999999\n" + b"0\n" * (32 * MIB), compression)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def files_under(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def pax_bomb(compression: Compression) -> bytes:
    info = tarfile.TarInfo("level.dat")
    info.pax_headers = {"comment": "x" * (2 * MIB)}
    return tar([info], compression)


BOMBS = [
    pytest.param(
        lambda c: tar([("world/region/r.0.0.mca", 64 * MIB)], c),
        UnpackLimits(ratio_floor_bytes=MIB),
        "times its size",
        id="one-huge-member",
    ),
    pytest.param(
        lambda c: tar([(f"world/data/{i}.dat", b"") for i in range(101)], c),
        UnpackLimits(max_members=100),
        "more than 100 members",
        id="many-members",
    ),
    pytest.param(
        lambda c: tar([("world/a", os.urandom(MIB)), ("world/b", os.urandom(MIB))], c),
        UnpackLimits(max_total_bytes=MIB + MIB // 2),
        "MCDASH_BACKUP_MAX_UNPACKED_BYTES",
        id="total-over-the-maximum",
    ),
    pytest.param(
        lambda c: compress(lying_header(3 * 1024**3), c),
        LOOSE,
        "times its size",
        id="header-declaring-3gib-without-data",
    ),
    pytest.param(pax_bomb, LOOSE, "extended header", id="pax-header-of-2mib"),
    pytest.param(lambda c: compress(sparse_header(), c), LOOSE, "sparse", id="gnu-sparse-member"),
    pytest.param(sparse_map_archive, UnpackLimits(), "times its size", id="endless-sparse-map"),
]


@pytest.mark.parametrize("compression", list(Compression), ids=lambda c: c.value)
@pytest.mark.parametrize(("build", "limits", "needle"), BOMBS)
def test_bombs_are_refused_at_upload_and_while_unpacking(
    tmp_path, compression, build, limits, needle
):
    archive = write(tmp_path, f"bomb{compression.extension}", build(compression))
    with pytest.raises(InvalidArchive, match=needle):
        inspect_archive(archive, limits=limits)
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(InvalidArchive, match=needle):
        extract_archive(archive, compression, target, limits=limits)
    assert sum(files_under(target).values()) <= MIB  # nothing past a limit was written


def ratio_archive(compression: Compression) -> tuple[bytes, int]:
    data = os.urandom(64 * 1024) + bytes(2 * MIB)
    return tar([("world/region/r.0.0.mca", data)], compression), len(data)


@pytest.mark.parametrize("compression", list(Compression), ids=lambda c: c.value)
@pytest.mark.parametrize(
    ("factor", "refused"),
    [
        pytest.param(0.98, True, id="ratio-just-over"),
        pytest.param(1.02, False, id="ratio-just-under"),
    ],
)
def test_the_expansion_ratio_is_a_bound(tmp_path, compression, factor, refused):
    raw, unpacked = ratio_archive(compression)
    archive = write(tmp_path, f"world{compression.extension}", raw)
    ratio = unpacked / len(raw)
    limits = UnpackLimits(max_ratio=ratio * factor, ratio_floor_bytes=0, min_free_bytes=0)
    target = tmp_path / "target"
    target.mkdir()
    if refused:
        with pytest.raises(InvalidArchive, match="decompression bomb"):
            extract_archive(archive, compression, target, limits=limits)
        assert files_under(target) == {}
    else:
        assert extract_archive(archive, compression, target, limits=limits) == 1
        assert files_under(target) == {"world/region/r.0.0.mca": unpacked}


def test_unpacking_keeps_a_reserve_of_free_disk(tmp_path):
    archive = write(tmp_path, "w.tar.gz", tar([("a.dat", b"a" * 4096)], Compression.GZIP))
    free = shutil.disk_usage(tmp_path).free
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(InvalidArchive, match="MCDASH_BACKUP_MIN_FREE_BYTES"):
        extract_archive(archive, Compression.GZIP, target, limits=UnpackLimits(min_free_bytes=free))
    assert files_under(target) == {}
    facts = inspect_archive(archive, limits=UnpackLimits(min_free_bytes=free))
    assert facts.members == 1  # the upload check does not know the node's disk


def test_an_ordinary_world_passes_the_default_limits(tmp_path):
    members = [("world/level.dat", b"generation=3\n")]
    members += [(f"world/region/r.{i}.0.mca", os.urandom(256 * 1024)) for i in range(4)]
    members += [("plugins/config.yml", b"a: 1\n" * 5000)]
    archive = write(tmp_path, "w.tar.zst", tar(members, Compression.ZSTD))
    assert inspect_archive(archive).members == 6
    target = tmp_path / "target"
    target.mkdir()
    assert extract_archive(archive, Compression.ZSTD, target, limits=UnpackLimits()) == 6


def test_runtime_members_and_the_jar_are_skipped_not_refused(tmp_path):
    """A V1 backup holds server.jar (and a foreign archive may hold .mcdash/): never written."""
    members = [
        ("server.jar", b"PK\x03\x04"),
        (".mcdash/console.in", b"stop\n"),
        ("fabric-server-launch.jar", b"PK"),
        ("world/level.dat", b"generation=3\n"),
    ]
    archive = write(tmp_path, "v1.tar.gz", tar(members, Compression.GZIP))
    assert inspect_archive(archive).members == 1
    target = tmp_path / "target"
    target.mkdir()
    assert extract_archive(archive, Compression.GZIP, target) == 1
    assert files_under(target) == {"world/level.dat": 13}


def test_a_refused_restore_leaves_no_staging_and_the_server_directory_unchanged(tmp_path):
    server_dir = tmp_path / "servers" / "abc"
    (server_dir / "world").mkdir(parents=True)
    (server_dir / "world" / "level.dat").write_text("before")
    workspace = RestoreWorkspace(server_dir, uuid.uuid4())
    workspace.archive.write_bytes(
        tar([("world/level.dat", b"after"), ("world/bomb", 64 * MIB)], Compression.ZSTD)
    )
    with pytest.raises(InvalidArchive, match="decompression bomb"):
        workspace.unpack(Compression.ZSTD, UnpackLimits(ratio_floor_bytes=MIB))
    workspace.clean()
    assert sorted(p.name for p in (tmp_path / "servers").iterdir()) == ["abc"]
    assert files_under(server_dir) == {"world/level.dat": 6}
