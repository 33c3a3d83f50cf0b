"""Benchmark: backup throughput of a 200 MB world, local and S3, against `tar | gzip`.

Run on demand: `.venv/bin/pytest tests/performance/test_backup_throughput.py -m performance -s`.
Also measures how long a running server spends with saving off during a backup.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from app.backups.domain.model import Compression
from app.backups.infrastructure.archive import write_archive
from app.backups.infrastructure.s3 import S3BackupStorage
from app.backups.infrastructure.storage import LocalBackupStorage
from tests.e2e.test_backups import wait_backup

pytestmark = [pytest.mark.performance, pytest.mark.e2e]

WORLD_MB = 200
REGION_MB = 8


def region_like(size: int) -> bytes:
    """Like real .mca files: zlib-compressed chunks (random) padded to 4 KiB sectors (zeros)."""
    sector = bytearray()
    out = bytearray()
    while len(out) < size:
        used = 2500 + int.from_bytes(os.urandom(2)) % 1500
        sector = bytearray(os.urandom(used)) + bytes(4096 - used)
        out += sector
    return bytes(out[:size])


def make_world(root: Path) -> int:
    region = root / "world" / "region"
    region.mkdir(parents=True)
    (root / "world" / "level.dat").write_bytes(b"generation=1\n")
    for i in range(WORLD_MB // REGION_MB):
        (region / f"r.{i}.0.mca").write_bytes(region_like(REGION_MB * 1024 * 1024))
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def mb_per_s(size: int, seconds: float) -> float:
    return size / 1e6 / seconds


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, int]:
    root = tmp_path_factory.mktemp("world")
    return root, make_world(root)


def timed_archive(world: Path, storage, key: str, compression: Compression, level: int):
    result: list[tuple[int, str]] = []

    def produce(sink) -> None:
        result.append(write_archive(world, sink, compression=compression, level=level))

    started = time.perf_counter()
    storage.write(key, produce)
    return time.perf_counter() - started, result[0][0]


def test_archive_throughput_local_s3_and_tar(world, tmp_path, moto_s3):
    root, size = world
    figures: dict[str, str] = {}
    started = time.perf_counter()
    subprocess.run(["tar", "-czf", str(tmp_path / "ref.tar.gz"), "-C", str(root), "."], check=True)
    tar_seconds = time.perf_counter() - started
    figures["tar -czf (gzip -6)"] = f"{mb_per_s(size, tar_seconds):.1f} MB/s"
    local = LocalBackupStorage(tmp_path / "backups")
    for compression, level in ((Compression.GZIP, 6), (Compression.GZIP, 1), (Compression.ZSTD, 3)):
        seconds, archived = timed_archive(root, local, f"s/{uuid.uuid4()}", compression, level)
        figures[f"local {compression.value}-{level}"] = (
            f"{mb_per_s(size, seconds):.1f} MB/s (archive {archived / 1e6:.0f} MB)"
        )
    s3 = S3BackupStorage(
        endpoint=moto_s3.endpoint,
        bucket="perf",
        access_key="testing",
        secret_key="testing",
        secure=False,
        region="us-east-1",
        part_size=16 * 1024 * 1024,
    )
    for compression, level in ((Compression.GZIP, 6), (Compression.ZSTD, 3)):
        seconds, _ = timed_archive(root, s3, f"s/{uuid.uuid4()}", compression, level)
        figures[f"s3 (moto) {compression.value}-{level}"] = f"{mb_per_s(size, seconds):.1f} MB/s"
    print(f"\nworld {size / 1e6:.0f} MB")
    for name, value in figures.items():
        print(f"  {name:28} {value}")
    assert tar_seconds > 0


@pytest.mark.parametrize("snapshot_copy", [False, True], ids=["archive-in-place", "snapshot-copy"])
async def test_time_with_saving_off_for_a_200_mb_world(
    world, dashboard, start_worker, fake_jar, stack_env, snapshot_copy
):
    root, size = world
    stack_env["MCDASH_BACKUP_SNAPSHOT_COPY"] = str(snapshot_copy).lower()
    start_worker()
    server = await dashboard.create_custom_server(fake_jar, name="big")
    sid = server["id"]
    assert (await dashboard.http.post(f"/api/v2/servers/{sid}/start")).status_code == 202
    await dashboard.wait_state(sid, "running")
    server_dir = Path(stack_env["MCDASH_DATA_DIR"]) / "servers" / sid
    await asyncio.to_thread(
        shutil.copytree,
        root / "world" / "region",
        server_dir / "world" / "region",
        dirs_exist_ok=True,
    )
    for compression in ("gzip", "zstd"):
        started = time.perf_counter()
        requested = await dashboard.http.post(
            f"/api/v2/servers/{sid}/backups", json={"compression": compression}
        )
        backup = await wait_backup(dashboard, requested.json()["id"], timeout=600)
        elapsed = time.perf_counter() - started
        assert backup["status"] == "completed", backup
        print(
            f"\nrunning server, snapshot_copy={snapshot_copy}, {compression}: request->completed {elapsed:.1f} s "
            f"({mb_per_s(size, elapsed):.1f} MB/s), saving off {backup['saving_off_ms']} ms"
        )
