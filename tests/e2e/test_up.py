"""`mcdash up` on a machine with nothing configured: embedded PostgreSQL and Redis, then serve."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import psutil
import pytest

from tests.e2e.conftest import free_port, wait_ready

pytestmark = pytest.mark.e2e


def test_up_serves_docs_and_ready_with_embedded_services_and_stops_on_ctrl_c(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCDASH_")}
    port = free_port()
    data_dir = tmp_path / "mcdash-data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "up", "--data-dir", str(data_dir), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, timeout=120)
        ready = httpx.get(f"{url}/ready").json()
        assert ready == {
            "status": "ready",
            "checks": {"database": "ok", "migrations": "ok", "redis": "ok"},
        }
        assert httpx.get(f"{url}/docs").status_code == 200
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 4, "api, worker, scheduler and the embedded servers run"
        assert (data_dir / "postgres" / "PG_VERSION").exists()
        assert (data_dir / "jwt.key").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr[-2000:]
    assert not any(
        child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children
    )
    assert "mcdash_stopped" in stderr
