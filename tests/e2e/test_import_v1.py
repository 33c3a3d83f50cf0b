"""A V1 installation imported into a real stack (API, worker, fake jar): its admin logs in with
the V1 password, its server starts on its world with server.properties untouched and its group's
players in whitelist.json, and its V1 backup restores byte for byte."""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from app.importer.run import Options, import_v1
from app.importer.source import v1_id
from tests.e2e.conftest import GAME_PORTS
from tests.v1_install import PASSWORDS, archive_members, build_v1

pytestmark = pytest.mark.e2e
V1_PORT = GAME_PORTS + 150


async def wait_for(fetch, done, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        value = await fetch()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"still {value}"
        await asyncio.sleep(0.2)


async def test_an_imported_v1_server_logs_in_starts_syncs_its_group_and_restores(
    settings, stack_env, live_server, start_worker, fake_jar, tmp_path
):
    start_worker()
    v1 = build_v1(tmp_path / "v1", port=V1_PORT, jar=fake_jar.read_bytes())
    stack = settings.model_copy(
        update={
            "server_port_range_start": int(stack_env["MCDASH_SERVER_PORT_RANGE_START"]),
            "server_port_range_end": int(stack_env["MCDASH_SERVER_PORT_RANGE_END"]),
        }
    )
    options = Options(database=str(v1.database), root=v1.root, keep_jars=True, progress=False)
    report = await import_v1(stack, options, Console(file=io.StringIO()))
    assert report.new["servers"] == 2
    assert report.new["backups"] == 1
    sid, bid = str(v1_id("servers", 1)), str(v1_id("backups", 1))
    directory = Path(stack_env["MCDASH_DATA_DIR"]) / "servers" / sid
    properties = (v1.server_dir / "server.properties").read_bytes()

    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        login = await http.post(
            "/api/v2/auth/login", json={"username": "alice", "password": PASSWORDS["alice"]}
        )
        assert login.status_code == 200, login.text
        http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"

        async def status():
            return (await http.get(f"/api/v2/servers/{sid}/status")).json()["state"]

        assert (await http.post(f"/api/v2/servers/{sid}/start")).status_code == 202
        await wait_for(status, lambda state: state == "running")
        assert (directory / "server.properties").read_bytes() == properties
        assert json.loads((directory / "whitelist.json").read_text())
        names = {entry["name"] for entry in json.loads((directory / "whitelist.json").read_text())}
        assert names == {"Steve", "Alex"}
        assert (await http.post(f"/api/v2/servers/{sid}/stop")).status_code == 202
        await wait_for(status, lambda state: state == "stopped")
        level = (directory / "world" / "level.dat").read_text()
        assert int(level.split("\n", 1)[0].removeprefix("generation=")) >= 3  # V1's world went on

        restore = await http.post(f"/api/v2/backups/{bid}/restore")
        assert restore.status_code == 202, restore.text

        async def restored():
            return (await http.get(f"/api/v2/backups/{bid}")).json()["restore_status"]

        assert await wait_for(restored, lambda s: s in ("completed", "failed")) == "completed"
        for name, data in archive_members(v1.backup_archive).items():
            if name != "server.jar":  # a runtime member: ignored on restore
                assert (directory / name).read_bytes() == data, name
