"""`mcdash import-v1` against real PostgreSQL and Redis and an in-process node agent: a V1
installation built as V1 leaves it (tests/v1_install.py), imported, re-imported, cut off."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import signal
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from app.cli import main
from app.importer.run import ImportRefused, Options, import_v1
from app.importer.source import NotV1, v1_id
from app.main import create_app
from tests.agent import in_process
from tests.v1_install import PASSWORDS, build_v1, not_v1

BASE_PORT = 43000 + (uuid.uuid4().int % 500) * 10
TABLES = ("users", "servers", "groups", "group_players", "server_groups", "backups",
          "backup_schedules", "file_versions")  # fmt: skip


@pytest.fixture
async def api(settings, clean):
    configured = settings.model_copy(
        update={"server_port_range_start": BASE_PORT, "server_port_range_end": BASE_PORT + 9}
    )
    app = create_app(configured)
    async with in_process(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield http, configured


async def run(settings, v1, **options):
    quiet = Console(file=io.StringIO())
    opts = Options(database=str(v1.database), root=v1.root, progress=False, **options)
    return await import_v1(settings, opts, quiet)


async def login(http, username, password):
    return await http.post("/api/v2/auth/login", json={"username": username, "password": password})


async def state(db) -> dict[str, list[str]]:
    """What the import left, table by table, to compare runs."""
    return {
        table: sorted(str(row[0]) for row in await db.fetch(f"SELECT {key} FROM {table}"))
        for table, key in (
            ("users", "id"),
            ("servers", "id || ':' || port"),
            ("groups", "id"),
            ("group_players", "group_id || ':' || player_id"),
            ("server_groups", "group_id || ':' || server_id || ':' || priority"),
            ("backups", "id || ':' || sha256"),
            ("backup_schedules", "id || ':' || cron_expression"),
            ("file_versions", "id || ':' || version"),
        )
    }


async def test_a_v1_installation_is_imported_whole_and_a_second_run_adds_nothing(api, db, tmp_path):
    http, settings = api
    v1 = build_v1(tmp_path / "v1", port=BASE_PORT)
    report = await run(settings, v1)
    counts = json.loads(json.dumps(report.as_dict()))["tables"]  # what --json prints
    assert counts["users"] == {"new": 4, "present": 0, "skipped": 0}
    assert counts["servers"]["new"] == 2  # survival, lost (no directory); old deleted, orphan
    assert counts["groups"] == {"new": 2, "present": 0, "skipped": 0}
    assert counts["backups"] == {"new": 1, "present": 0, "skipped": 3}
    assert counts["backup_schedules"]["new"] == 1
    assert counts["file_edit_history"]["new"] == 2
    reasons = {(s.table, s.row_id): s.reason for s in report.skipped}
    assert "orphan foreign key owner_id=99" in reasons[("servers", 4)]
    assert "deleted in V1" in reasons[("servers", 3)]
    assert "size mismatch" in reasons[("backups", 2)]
    assert "missing archive" in reasons[("backups", 3)]
    assert "status failed" in reasons[("backups", 4)]
    assert "no mcdash equivalent" in reasons[("resource_visibility", 1)]
    assert "differs from server.properties" in reasons[("server_configurations", "1:difficulty")]
    assert "orphan foreign key server_id=4" in reasons[("server_groups", "4:2")]
    notes = "\n".join(report.notes)
    assert "'Bob'" in notes  # the case-only clash: renamed, and said
    assert "'Bob_v1'" in notes
    assert "directory is missing" in notes
    assert "naive V1 timestamps were taken as UTC" in notes

    # Passwords keep working; the bcrypt hash becomes argon2 at the first login.
    alice = await login(http, "alice", PASSWORDS["alice"])
    assert alice.status_code == 200, alice.text
    assert (await login(http, "Bob_v1", PASSWORDS["Bob"])).status_code == 200
    assert (await login(http, "carol", PASSWORDS["bob"])).status_code == 401  # not approved
    assert await db.fetchval("SELECT is_approved FROM users WHERE username='carol'") is False
    stored = await db.fetchval("SELECT password_hash FROM users WHERE username='alice'")
    assert stored.startswith("$argon2")
    admin = {"Authorization": f"Bearer {alice.json()['access_token']}"}

    # The server's directory is on the node, server.properties byte for byte, no jar, no pid.
    sid = v1_id("servers", 1)
    on_node = Path(settings.resolved_data_dir) / "servers" / str(sid)
    assert (on_node / "server.properties").read_bytes() == (
        v1.server_dir / "server.properties"
    ).read_bytes()
    assert (on_node / "world" / "level.dat").read_bytes() == b"generation=3\nfrom V1\n"
    assert not (on_node / "server.jar").exists()
    assert not (on_node / "server.pid").exists()
    listed = (await http.get(f"/api/v2/servers/{sid}", headers=admin)).json()
    assert listed["port"] == BASE_PORT
    assert listed["status"] == "stopped"

    # The backup is in the storage, re-hashed, and downloads as V1's archive, byte for byte.
    backup = (await http.get(f"/api/v2/backups/{v1_id('backups', 1)}", headers=admin)).json()
    archive = v1.backup_archive.read_bytes()
    assert backup["sha256"] == hashlib.sha256(archive).hexdigest()
    download = await http.get(f"/api/v2/backups/{backup['id']}/download", headers=admin)
    assert download.content == archive

    # The history shows every V1 version with its content.
    history = await http.get(
        f"/api/v2/servers/{sid}/files/server.properties/history", headers=admin
    )
    assert history.status_code == 200, history.text
    assert sorted(item["version"] for item in history.json()["items"]) == [1, 2]
    second = await http.get(
        f"/api/v2/servers/{sid}/files/server.properties/history/2", headers=admin
    )
    assert second.json()["content"] == v1.history[1].decode()

    # Groups: players deduplicated by UUID, attached with the V1 priority; schedule as cron.
    assert (
        await db.fetchval(
            "SELECT count(*) FROM group_players WHERE group_id=$1", v1_id("groups", 1)
        )
        == 2
    )
    assert (
        await db.fetchval(
            "SELECT priority FROM server_groups WHERE group_id=$1", v1_id("groups", 1)
        )
        == 5
    )
    schedule = await db.fetchrow("SELECT cron_expression, keep_last FROM backup_schedules")
    assert tuple(schedule) == ("0 */6 * * *", 5)

    # Every imported aggregate's events say they came from V1, and from which row.
    marked = await db.fetch(
        "SELECT aggregate_id, metadata FROM domain_events WHERE metadata->>'imported_from'='v1'"
    )
    by_aggregate = {row[0]: json.loads(row[1])["v1_id"] for row in marked}
    assert by_aggregate[v1_id("users", 1)] == "users:1"
    assert by_aggregate[sid] == "servers:1"
    assert by_aggregate[v1_id("backups", 1)] == "backups:1"
    assert by_aggregate[v1_id("groups", 1)] == "groups:1"

    # V1's audit log is in the audit history, read-only, by the imported user.
    async with asyncio.timeout(10):
        while not (
            entry := await db.fetchrow(
                "SELECT actor_id, summary, client_addr FROM audit_log"
                " WHERE action='V1AuditEntryImported'"
            )
        ):
            await asyncio.sleep(0.1)
    assert entry["actor_id"] == v1_id("users", 1)
    assert entry["summary"] == "alice (in V1): server_start on server 1"
    assert entry["client_addr"] == "127.0.0.1"

    before = await state(db)
    again = await run(settings, v1)
    assert again.total_new == 0
    assert again.present["users"] == 4
    assert await state(db) == before


async def test_a_dry_run_reports_the_same_counts_and_writes_nothing(api, db, tmp_path):
    _, settings = api
    v1 = build_v1(tmp_path / "v1", port=BASE_PORT)
    report = await run(settings, v1, dry_run=True)
    assert report.new["users"] == 4
    assert report.new["servers"] == 2
    assert report.new["backups"] == 1
    assert "size mismatch" in next(s.reason for s in report.skipped if s.row_id == 2)
    for table in TABLES:
        assert await db.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    assert await db.fetchval("SELECT count(*) FROM domain_events") == 0
    with_deleted = await run(settings, v1, dry_run=True, include_deleted=True)
    assert with_deleted.new["servers"] == 3  # the deleted one, from servers/.archived/
    assert "was deleted in V1; imported stopped" in "\n".join(with_deleted.notes)


async def test_a_database_that_is_not_v1s_is_refused_before_anything_is_written(
    api, db, tmp_path, monkeypatch, capsys
):
    _, settings = api
    v1 = build_v1(tmp_path / "v1", port=BASE_PORT)
    foreign = not_v1(tmp_path / "shop.db")
    with pytest.raises(NotV1, match="not a V1 database"):
        await import_v1(settings, Options(database=str(foreign), root=v1.root), Console())
    monkeypatch.setenv("MCDASH_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("MCDASH_REDIS_URL", settings.redis_url)
    status = await asyncio.to_thread(
        main, ["import-v1", "--database", str(tmp_path / "nothing.db"), "--root", str(v1.root)]
    )
    assert status == 2
    message = capsys.readouterr().err.strip().splitlines()
    assert message == [f"mcdash import-v1: error: no V1 database at {tmp_path / 'nothing.db'}"]
    assert await db.fetchval("SELECT count(*) FROM users") == 0


async def test_with_no_node_online_the_import_stops_before_writing_anything(
    settings, clean, db, tmp_path
):
    v1 = build_v1(tmp_path / "v1", port=BASE_PORT)
    with pytest.raises(ImportRefused, match="no node is online to take the servers"):
        await run(settings, v1)
    assert await db.fetchval("SELECT count(*) FROM domain_events") == 0


async def test_leftover_template_columns_are_reported_and_the_rest_imported(api, tmp_path):
    _, settings = api
    v1 = build_v1(tmp_path / "v1", port=BASE_PORT, templates=True)
    report = await run(settings, v1, dry_run=True)
    notes = "\n".join(report.notes)
    assert "leftover V1 template column table templates" in notes
    assert "leftover V1 template column servers.template_id" in notes
    assert report.new["servers"] == 2


async def test_a_port_clash_gives_the_next_free_port_and_says_so(api, db, tmp_path):
    http, settings = api
    v1 = build_v1(tmp_path / "v1", port=BASE_PORT)
    body = {"username": "first", "email": "first@example.com", "password": "Keeper-pass-42"}
    assert (await http.post("/api/v2/auth/register", json=body)).status_code == 201
    token = (await login(http, "first", "Keeper-pass-42")).json()["access_token"]
    created = await http.post(
        "/api/v2/servers/",
        headers={"Authorization": f"Bearer {token}"},
        json={"name": "taken", "server_type": "custom", "version": "1.20.4", "memory_mb": 512,
              "port": BASE_PORT},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    report = await run(settings, v1)
    port = await db.fetchval("SELECT port FROM servers WHERE id=$1", v1_id("servers", 1))
    assert port != BASE_PORT
    assert f"port {BASE_PORT} clashes" in "\n".join(report.notes)
    assert f"given port {port}" in "\n".join(report.notes)


async def test_a_run_killed_half_way_then_run_again_ends_as_a_clean_run(api, db, tmp_path):
    _, settings = api
    v1 = build_v1(tmp_path / "v1", port=BASE_PORT)
    env = {
        **os.environ,
        "MCDASH_DATABASE_URL": settings.database_url,
        "MCDASH_REDIS_URL": settings.redis_url,
        "MCDASH_DATA_DIR": str(settings.resolved_data_dir),
        "MCDASH_SERVER_PORT_RANGE_START": str(BASE_PORT),
        "MCDASH_SERVER_PORT_RANGE_END": str(BASE_PORT + 9),
    }
    argv = ["import-v1", "--database", str(v1.database), "--root", str(v1.root), "--no-progress"]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", *argv, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    async with asyncio.timeout(60):
        while not await db.fetchval("SELECT count(*) FROM servers"):
            assert process.returncode is None, "the import ended before it was killed"
            await asyncio.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    await process.wait()
    cut = await state(db)
    assert len(cut["users"]) == 4
    assert len(cut["file_versions"]) < 2  # it was cut off before the end

    report = await run(settings, v1)
    assert report.present["users"] == 4
    resumed = await state(db)
    expected_ids = {
        "users": sorted(str(v1_id("users", n)) for n in (1, 2, 3, 4)),
        "groups": sorted(str(v1_id("groups", n)) for n in (1, 2)),
    }
    assert resumed["users"] == expected_ids["users"]
    assert resumed["groups"] == expected_ids["groups"]
    assert resumed["backups"] == [
        f"{v1_id('backups', 1)}:{hashlib.sha256(v1.backup_archive.read_bytes()).hexdigest()}"
    ]
    assert resumed["file_versions"] == sorted(
        f"{v1_id('file_edit_history', n)}:{n}" for n in (1, 2)
    )
    assert resumed["servers"] == sorted(
        f"{v1_id('servers', n)}:{BASE_PORT + n - 1}" for n in (1, 2)
    )
    assert resumed["backup_schedules"] == [f"{v1_id('backup_schedules', 1)}:0 */6 * * *"]
    assert len(resumed["group_players"]) == 3  # friends: Steve, Alex; admins: Notch
    on_node = Path(settings.resolved_data_dir) / "servers" / str(v1_id("servers", 1))
    assert (on_node / "world" / "region" / "r.0.0.mca").read_bytes() == bytes(range(256)) * 64
    assert (await run(settings, v1)).total_new == 0
