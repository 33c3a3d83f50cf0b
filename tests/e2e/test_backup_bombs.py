"""A decompression bomb through the real upload and restore path: the node refuses it while
unpacking, the restore is recorded failed with the reason, and the data directory does not grow.
"""

from __future__ import annotations

import asyncio
import io
import signal
import tarfile
import time
from pathlib import Path

import pytest
import zstandard

pytestmark = pytest.mark.e2e

GIB = 1024**3


def zstd_bomb(size: int = 3 * GIB) -> bytes:
    """The issue's bomb: one region file of `size` zero bytes, about 98 KB as .tar.zst."""
    out = io.BytesIO()
    with zstandard.ZstdCompressor(level=3).stream_writer(out, closefd=False) as sink:
        info = tarfile.TarInfo("world/region/r.0.0.mca")
        info.size = size
        sink.write(info.tobuf(format=tarfile.PAX_FORMAT))
        zeros = bytes(1 << 20)
        for _ in range(size // len(zeros)):
            sink.write(zeros)
        sink.write(bytes(1024))
    return out.getvalue()


def disk_usage(root: Path) -> int:
    return sum(p.lstat().st_blocks * 512 for p in root.rglob("*"))


def restart_worker(worker, start_worker, stack_env, ratio: str):
    """The node again, with another expansion bound (its own setting: it checks archives)."""
    worker.process.send_signal(signal.SIGTERM)
    worker.process.wait(timeout=30)
    stack_env["MCDASH_BACKUP_MAX_EXPANSION_RATIO"] = ratio
    return start_worker()


async def test_a_98kb_zstd_bomb_is_refused_by_the_restore_and_the_data_dir_does_not_grow(
    dashboard, start_worker, fake_jar, stack_env
):
    stack_env["MCDASH_BACKUP_MAX_EXPANSION_RATIO"] = "100"  # the default bound
    stack_env["MCDASH_BACKUP_MAX_UNPACKED_BYTES"] = str(8 * GIB)
    worker = start_worker()
    server = await dashboard.create_custom_server(fake_jar, name="bombed")
    sid = server["id"]
    http = dashboard.http
    saved = await http.put(
        f"/api/v2/servers/{sid}/files/world/level.dat", json={"content": "before the bomb\n"}
    )
    assert saved.status_code == 201, saved.text

    bomb = await asyncio.to_thread(zstd_bomb)
    assert len(bomb) < 200_000
    upload = {"file": ("world.tar.zst", bomb, "application/zstd")}
    refused = await http.post(f"/api/v2/servers/{sid}/backups/upload", files=upload)
    assert refused.status_code == 422, refused.text
    assert "decompression bomb" in refused.json()["detail"]

    # Stored while the node accepted any ratio (as one kept from before the bound existed)...
    worker = restart_worker(worker, start_worker, stack_env, "100000")
    uploaded = await http.post(f"/api/v2/servers/{sid}/backups/upload", files=upload)
    assert uploaded.status_code == 201, uploaded.text
    # ...and restored by a node with the bound.
    restart_worker(worker, start_worker, stack_env, "100")
    backup_id = uploaded.json()["id"]

    data_dir = Path(stack_env["MCDASH_DATA_DIR"])
    server_dir = data_dir / "servers" / sid
    before = disk_usage(data_dir)
    level = (server_dir / "world" / "level.dat").read_bytes()
    restore = await http.post(f"/api/v2/backups/{backup_id}/restore")
    assert restore.status_code == 202, restore.text
    deadline = time.monotonic() + 90
    while (body := (await http.get(f"/api/v2/backups/{backup_id}")).json())["restore_status"] in (
        None,
        "requested",
    ):
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.2)

    assert body["restore_status"] == "failed", body
    assert "decompression bomb" in body["restore_error"]
    assert disk_usage(data_dir) - before < 1024 * 1024
    assert (server_dir / "world" / "level.dat").read_bytes() == level
    assert not list((data_dir / "servers").glob(".restore-*"))
    assert not (server_dir / "world" / "region").exists()
    safety = (await http.get(f"/api/v2/servers/{sid}/backups?backup_type=safety")).json()
    assert safety["total"] == 0  # refused before the safety backup: nothing else was touched
