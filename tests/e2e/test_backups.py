"""Backups end to end: a real API and worker, the fake jar writing its world all the time."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import tarfile
import time
import uuid
from pathlib import Path

import pytest
import zstandard
from websockets.asyncio.client import connect

pytestmark = pytest.mark.e2e


async def wait_backup(
    dashboard,
    backup_id: str,
    *,
    field: str = "status",
    until=("completed", "failed"),
    timeout: float = 90,
):
    deadline = time.monotonic() + timeout
    while True:
        body = (await dashboard.http.get(f"/api/v2/backups/{backup_id}")).json()
        if body[field] in until:
            return body
        assert time.monotonic() < deadline, f"backup still {body}"
        await asyncio.sleep(0.2)


def tree(path: Path) -> dict[str, str]:
    """Every file's SHA-256 under `path`, runtime files aside."""
    return {
        p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file() and ".mcdash" not in p.parts and p.name != "server.jar"
    }


def generation(data: bytes) -> int:
    return int(data.split(b"\n", 1)[0].removeprefix(b"generation="))


@pytest.fixture
def world_writing(stack_env):
    stack_env["FAKE_MC_AUTOSAVE_MS"] = "200"
    stack_env["FAKE_MC_DIRTY_WRITE_MS"] = "40"
    stack_env["FAKE_MC_REGION_FILES"] = "4"
    stack_env["FAKE_MC_REGION_BYTES"] = "200000"


async def test_backup_of_running_server_is_the_flushed_world_and_restores_byte_for_byte(
    world_writing, dashboard, start_worker, fake_jar, db, stack_env
):
    start_worker()
    server = await dashboard.create_custom_server(fake_jar, name="writer")
    sid = server["id"]
    assert (await dashboard.http.post(f"/api/v2/servers/{sid}/start")).status_code == 202
    await dashboard.wait_state(sid, "running")
    await asyncio.sleep(1.0)
    server_dir = Path(stack_env["MCDASH_DATA_DIR"]) / "servers" / sid

    requested = await dashboard.http.post(f"/api/v2/servers/{sid}/backups", json={"name": "live"})
    assert requested.status_code == 202, requested.text
    backup = await wait_backup(dashboard, requested.json()["id"])
    assert backup["status"] == "completed", backup
    assert backup["saving_off_ms"] is not None
    assert backup["saving_off_ms"] >= 0

    saves = [
        line.split(" ", 1)[1]
        for line in (server_dir / ".fake" / "save-commands.log").read_text().splitlines()
    ]
    assert saves[-3:] == ["save-off", "save-all flush", "save-on"]

    download = await dashboard.http.get(f"/api/v2/backups/{backup['id']}/download")
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == backup["sha256"]
    assert len(download.content) == backup["size_bytes"]
    with tarfile.open(fileobj=io.BytesIO(download.content), mode="r:gz") as tar:
        archived = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    assert not any(name.startswith(".mcdash") or name == "server.jar" for name in archived)
    flushed = generation(archived["world/level.dat"])
    regions = [name for name in archived if name.startswith("world/region/")]
    assert len(regions) == 4
    for name in regions:  # every region as saved by the flush: same generation, no torn write
        assert generation(archived[name]) == flushed
        assert b"dirty" not in archived[name]

    events = await dashboard.events(db, backup["id"])
    assert events == ["BackupCreated", "BackupCompleted"]
    summary = (await dashboard.http.get(f"/api/v2/servers/{sid}/backups/summary")).json()
    assert summary["server_id"] == sid

    # Let the live world move on, stop, restore: the files are the archive's bytes again.
    await asyncio.sleep(3.0)
    assert (await dashboard.http.post(f"/api/v2/servers/{sid}/stop")).status_code == 202
    await dashboard.wait_state(sid, "stopped")
    moved_on = generation((server_dir / "world" / "level.dat").read_bytes())
    assert moved_on > flushed + 3
    restore = await dashboard.http.post(f"/api/v2/backups/{backup['id']}/restore")
    assert restore.status_code == 202, restore.text
    restored = await wait_backup(
        dashboard, backup["id"], field="restore_status", until=("completed", "failed")
    )
    assert restored["restore_status"] == "completed", restored
    on_disk = tree(server_dir)
    for name, data in archived.items():
        assert on_disk[name] == hashlib.sha256(data).hexdigest(), name
    assert (await dashboard.http.post(f"/api/v2/servers/{sid}/start")).status_code == 202
    await dashboard.wait_state(sid, "running")
    started_from = generation((server_dir / "world" / "level.dat").read_bytes())
    assert flushed <= started_from < moved_on

    # Restore while running: stop, swap, start again; a backup meanwhile is refused with 409.
    second = await dashboard.http.post(f"/api/v2/backups/{backup['id']}/restore")
    assert second.status_code == 202
    busy = await dashboard.http.post(f"/api/v2/servers/{sid}/backups")
    assert busy.status_code == 409, busy.text
    assert busy.json()["type"] == "urn:mcdash:problem:backup-in-progress"
    deadline = time.monotonic() + 90
    while (
        await db.fetchval("SELECT count(*) FROM backup_locks WHERE server_id=$1", uuid.UUID(sid))
    ) != 0:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    final = (await dashboard.http.get(f"/api/v2/backups/{backup['id']}")).json()
    assert final["restore_status"] == "completed", final
    await dashboard.wait_state(sid, "running")
    safety = (await dashboard.http.get(f"/api/v2/servers/{sid}/backups?backup_type=safety")).json()
    assert safety["total"] == 2
    assert all(item["status"] == "completed" for item in safety["items"])
    assert (await dashboard.events(db, backup["id"])).count("BackupRestored") == 2


async def test_corrupted_archive_is_refused_before_anything_is_touched(
    dashboard, start_worker, fake_jar, stack_env
):
    start_worker()
    server = await dashboard.create_custom_server(fake_jar, name="corrupt")
    sid = server["id"]
    assert (await dashboard.http.post(f"/api/v2/servers/{sid}/start")).status_code == 202
    await dashboard.wait_state(sid, "running")
    backup = await wait_backup(
        dashboard, (await dashboard.http.post(f"/api/v2/servers/{sid}/backups")).json()["id"]
    )
    assert backup["status"] == "completed"
    assert (await dashboard.http.post(f"/api/v2/servers/{sid}/stop")).status_code == 202
    await dashboard.wait_state(sid, "stopped")
    data_dir = Path(stack_env["MCDASH_DATA_DIR"])
    stored = data_dir / "backups" / sid / f"{backup['id']}.tar.gz"
    raw = bytearray(stored.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    stored.write_bytes(bytes(raw))
    server_dir = data_dir / "servers" / sid
    before = tree(server_dir)
    restore = await dashboard.http.post(f"/api/v2/backups/{backup['id']}/restore")
    assert restore.status_code == 202
    result = await wait_backup(
        dashboard, backup["id"], field="restore_status", until=("completed", "failed")
    )
    assert result["restore_status"] == "failed"
    assert "checksum mismatch" in result["restore_error"]
    assert tree(server_dir) == before
    safety = (await dashboard.http.get(f"/api/v2/servers/{sid}/backups?backup_type=safety")).json()
    assert safety["total"] == 0


async def test_notifications_socket_streams_progress_and_outcome_to_the_owner_only(
    dashboard, start_worker, fake_jar
):
    start_worker()
    server = await dashboard.create_custom_server(fake_jar, name="notified")
    sid = server["id"]
    url = dashboard.url.replace("http://", "ws://") + "/api/v2/ws/notifications"
    async with connect(url, subprotocols=["bearer", dashboard.token]) as ws:
        await asyncio.sleep(0.3)
        backup_id = (await dashboard.http.post(f"/api/v2/servers/{sid}/backups")).json()["id"]
        seen: list[dict] = []
        async with asyncio.timeout(30):
            while not any(m["type"] == "BackupCompleted" for m in seen):
                seen.append(json.loads(await ws.recv()))
    kinds = [m["type"] for m in seen if m.get("backup_id") == backup_id]
    assert "backup.progress" in kinds
    assert kinds[-1] == "BackupCompleted"
    phases = [m["phase"] for m in seen if m["type"] == "backup.progress"]
    assert "archiving" in phases
    async with connect(url) as anonymous:
        with pytest.raises(Exception, match="4401"):
            await anonymous.recv()


async def test_snapshot_copy_turns_saving_back_on_before_compressing(
    world_writing, dashboard, start_worker, fake_jar, stack_env
):
    stack_env["MCDASH_BACKUP_SNAPSHOT_COPY"] = "true"
    start_worker()
    server = await dashboard.create_custom_server(fake_jar, name="copied")
    sid = server["id"]
    assert (await dashboard.http.post(f"/api/v2/servers/{sid}/start")).status_code == 202
    await dashboard.wait_state(sid, "running")
    requested = await dashboard.http.post(
        f"/api/v2/servers/{sid}/backups", json={"compression": "zstd"}
    )
    backup = await wait_backup(dashboard, requested.json()["id"])
    assert backup["status"] == "completed", backup
    assert backup["compression"] == "zstd"
    server_dir = Path(stack_env["MCDASH_DATA_DIR"]) / "servers" / sid
    saves = (server_dir / ".fake" / "save-commands.log").read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in saves[-3:]] == [
        "save-off",
        "save-all flush",
        "save-on",
    ]
    assert not list(server_dir.parent.glob(".snapshot-*"))
    download = await dashboard.http.get(f"/api/v2/backups/{backup['id']}/download")
    raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(download.content)).read()
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        archived = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    flushed = generation(archived["world/level.dat"])
    for name in (n for n in archived if n.startswith("world/region/")):
        assert generation(archived[name]) == flushed
        assert b"dirty" not in archived[name]
