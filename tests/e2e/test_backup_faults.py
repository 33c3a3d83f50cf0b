"""Backup faults end to end: the worker killed mid-backup, the S3 storage unreachable."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.test_backups import wait_backup
from tests.s3 import closed_port

pytestmark = pytest.mark.e2e


def save_commands(server_dir: Path) -> list[str]:
    log = server_dir / ".fake" / "save-commands.log"
    if not log.exists():
        return []
    return [line.split(" ", 1)[1] for line in log.read_text().splitlines()]


async def running_server(dashboard, fake_jar, name: str) -> str:
    server = await dashboard.create_custom_server(fake_jar, name=name)
    sid = server["id"]
    assert (await dashboard.http.post(f"/api/v2/servers/{sid}/start")).status_code == 202
    await dashboard.wait_state(sid, "running")
    return sid


async def test_worker_killed_mid_backup_fails_it_and_autosave_comes_back(
    dashboard, start_worker, fake_jar, stack_env, db
):
    stack_env["FAKE_MC_AUTOSAVE_MS"] = "200"
    first = start_worker()
    sid = await running_server(dashboard, fake_jar, "killed")
    data_dir = Path(stack_env["MCDASH_DATA_DIR"])
    server_dir = data_dir / "servers" / sid
    # Incompressible data keeps the archiver busy for a few seconds with saving off.
    (server_dir / "world" / "region" / "big.mca").write_bytes(os.urandom(80 * 1024 * 1024))
    backup_id = (await dashboard.http.post(f"/api/v2/servers/{sid}/backups")).json()["id"]
    marker = server_dir / ".mcdash" / "saving-off"
    deadline = time.monotonic() + 30
    while not (marker.exists() and "save-all flush" in save_commands(server_dir)[-1:]):
        assert time.monotonic() < deadline, "saving was never turned off"
        await asyncio.sleep(0.01)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)
    assert save_commands(server_dir)[-2:] == ["save-off", "save-all flush"]
    assert (await dashboard.http.get(f"/api/v2/backups/{backup_id}")).json()["status"] == "running"

    start_worker()
    failed = await wait_backup(dashboard, backup_id, timeout=60)
    assert failed["status"] == "failed"
    assert failed["error"] == "worker stopped during the backup"
    assert save_commands(server_dir)[-1] == "save-on"
    assert not marker.exists()
    assert list((data_dir / "backups" / sid).glob(".*.partial")) == []
    assert (await dashboard.events(db, backup_id)) == ["BackupCreated", "BackupFailed"]
    await dashboard.wait_state(sid, "running")
    again = await dashboard.http.post(f"/api/v2/servers/{sid}/backups")
    assert again.status_code == 202, again.text
    assert (await wait_backup(dashboard, again.json()["id"], timeout=120))["status"] == "completed"


async def test_unreachable_s3_fails_the_backup_with_the_reason_and_saving_is_back_on(
    dashboard, start_worker, fake_jar, stack_env
):
    stack_env.update(
        {
            "MCDASH_BACKUP_STORAGE": "s3",
            "MCDASH_BACKUP_S3_ENDPOINT": f"127.0.0.1:{closed_port()}",
            "MCDASH_BACKUP_S3_SECURE": "false",
            "MCDASH_BACKUP_S3_ACCESS_KEY": "k",
            "MCDASH_BACKUP_S3_SECRET_KEY": "s",
            "MCDASH_BACKUP_S3_TIMEOUT_SECONDS": "2",
        }
    )
    start_worker()
    sid = await running_server(dashboard, fake_jar, "unreachable")
    server_dir = Path(stack_env["MCDASH_DATA_DIR"]) / "servers" / sid
    backup_id = (await dashboard.http.post(f"/api/v2/servers/{sid}/backups")).json()["id"]
    failed = await wait_backup(dashboard, backup_id, timeout=60)
    assert failed["status"] == "failed"
    assert "S3 storage unreachable" in failed["error"]
    assert save_commands(server_dir)[-3:] == ["save-off", "save-all flush", "save-on"]
    status = (await dashboard.http.get(f"/api/v2/servers/{sid}/status")).json()
    assert status["state"] == "running"
    retry = await dashboard.http.post(f"/api/v2/servers/{sid}/backups")
    assert retry.status_code == 202  # the failed backup released the server


@pytest.fixture
def s3_stack(stack_env, moto_s3):
    """The API and the worker both store archives in the moto bucket."""
    stack_env.update(
        {
            "MCDASH_BACKUP_STORAGE": "s3",
            "MCDASH_BACKUP_S3_ENDPOINT": moto_s3.endpoint,
            "MCDASH_BACKUP_S3_BUCKET": f"e2e-{uuid.uuid4().hex[:12]}",
            "MCDASH_BACKUP_S3_SECURE": "false",
            "MCDASH_BACKUP_S3_ACCESS_KEY": moto_s3.access_key,
            "MCDASH_BACKUP_S3_SECRET_KEY": moto_s3.secret_key,
            "MCDASH_BACKUP_S3_REGION": "us-east-1",
            "MCDASH_BACKUP_S3_PART_SIZE_MB": "5",
        }
    )


async def test_backup_and_restore_through_s3(
    s3_stack, dashboard, start_worker, fake_jar, stack_env
):
    start_worker()
    sid = await running_server(dashboard, fake_jar, "in-s3")
    server_dir = Path(stack_env["MCDASH_DATA_DIR"]) / "servers" / sid
    (server_dir / "world" / "region" / "big.mca").write_bytes(os.urandom(12 * 1024 * 1024))
    backup_id = (await dashboard.http.post(f"/api/v2/servers/{sid}/backups")).json()["id"]
    backup = await wait_backup(dashboard, backup_id, timeout=120)
    assert backup["status"] == "completed", backup
    assert backup["size_bytes"] > 10 * 1024 * 1024
    assert not (Path(stack_env["MCDASH_DATA_DIR"]) / "backups").exists()
    (server_dir / "world" / "region" / "big.mca").write_bytes(b"changed after the backup")
    restore = await dashboard.http.post(f"/api/v2/backups/{backup_id}/restore")
    assert restore.status_code == 202
    restored = await wait_backup(
        dashboard, backup_id, field="restore_status", until=("completed", "failed"), timeout=120
    )
    assert restored["restore_status"] == "completed", restored
    assert (server_dir / "world" / "region" / "big.mca").stat().st_size == 12 * 1024 * 1024
    await dashboard.wait_state(sid, "running")
    download = await dashboard.http.get(f"/api/v2/backups/{backup_id}/download")
    assert len(download.content) == backup["size_bytes"]
