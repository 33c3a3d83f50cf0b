"""Backup routes and their bad inputs against real PostgreSQL and Redis (no worker needed)."""

from __future__ import annotations

import asyncio
import io
import tarfile
import uuid

import httpx
import pytest

from app.main import create_app
from tests.agent import in_process
from tests.conftest import admin_owner_other

BASE_PORT = 42000 + (uuid.uuid4().int % 500) * 10


@pytest.fixture
async def api(settings, clean):
    configured = settings.model_copy(
        update={"server_port_range_start": BASE_PORT, "server_port_range_end": BASE_PORT + 9}
    )
    app = create_app(configured)
    async with in_process(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            users, _ = await admin_owner_other(http)
            yield http, configured, users


async def server(http, headers, name="world"):
    body = {"name": name, "server_type": "custom", "version": "1.20.4", "memory_mb": 512}
    created = await http.post("/api/v2/servers/", headers=headers, json=body)
    assert created.status_code == 201, created.text
    return created.json()["id"]


def archive(members: dict[str, bytes], *, links: tuple[tuple[str, str], ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in links:
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buffer.getvalue()


async def upload(http, headers, sid, data: bytes):
    return await http.post(
        f"/api/v2/servers/{sid}/backups/upload",
        headers=headers,
        files={"file": ("world.tar.gz", data, "application/gzip")},
    )


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"cron_expression": "61 * * * *"}, "higher than the maximum"),
        ({"cron_expression": "* * *"}, "needs 5"),
        ({"cron_expression": "every day"}, "needs 5"),
        ({"cron_expression": "0 3 * * *", "timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"cron_expression": "0 3 * * *", "keep_last": 0}, "keep_last: Input should be greater"),
        ({"cron_expression": "0 3 * * *", "keep_last": -1}, "keep_last: Input should be greater"),
        ({"cron_expression": "0 3 * * *", "keep_days": 0}, "keep_days: Input should be greater"),
    ],
    ids=[
        "bad-cron-minute",
        "cron-3-fields",
        "cron-words",
        "bad-timezone",
        "keep_last-0",
        "keep_last-negative",
        "keep_days-0",
    ],
)
async def test_bad_schedules_are_a_clear_422_and_store_nothing(api, db, body, needle):
    http, _, users = api
    sid = await server(http, users["owner"])
    response = await http.post(
        f"/api/v2/servers/{sid}/schedules", headers=users["owner"], json=body
    )
    assert response.status_code == 422, response.text
    assert needle in response.json()["detail"]
    assert await db.fetchval("SELECT count(*) FROM backup_schedules") == 0


async def test_schedule_lifecycle_and_scheduled_event(api, db):
    http, _, users = api
    sid = await server(http, users["owner"])
    created = await http.post(
        f"/api/v2/servers/{sid}/schedules",
        headers=users["owner"],
        json={"cron_expression": "0  3 * * *", "timezone": "Europe/Berlin", "keep_last": 3},
    )
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["cron_expression"] == "0 3 * * *"
    assert schedule["next_run"] is not None
    changed = await http.patch(
        f"/api/v2/schedules/{schedule['id']}",
        headers=users["owner"],
        json={"is_active": False, "keep_last": None, "keep_days": 7},
    )
    assert changed.json()["is_active"] is False
    assert changed.json()["keep_last"] is None
    assert changed.json()["keep_days"] == 7
    assert (
        await http.get(f"/api/v2/schedules/{schedule['id']}", headers=users["other"])
    ).status_code == 404
    listed = (await http.get(f"/api/v2/servers/{sid}/schedules", headers=users["owner"])).json()
    assert [item["id"] for item in listed] == [schedule["id"]]
    assert (
        await http.delete(f"/api/v2/schedules/{schedule['id']}", headers=users["owner"])
    ).status_code == 204
    events = [
        r[0]
        for r in await db.fetch(
            "SELECT event_type FROM domain_events WHERE aggregate_type='backup_schedule' ORDER BY position"
        )
    ]
    assert events == ["BackupScheduled", "BackupScheduled", "BackupScheduleRemoved"]


async def test_another_owners_server_and_backups_answer_404(api):
    http, _, users = api
    sid = await server(http, users["owner"])
    assert (
        await http.post(f"/api/v2/servers/{sid}/backups", headers=users["other"])
    ).status_code == 404
    assert (
        await http.get(f"/api/v2/servers/{sid}/backups", headers=users["other"])
    ).status_code == 404
    uploaded = await upload(
        http, users["owner"], sid, archive({"world/level.dat": b"generation=1\n"})
    )
    assert uploaded.status_code == 201, uploaded.text
    bid = uploaded.json()["id"]
    for method, path in (
        ("GET", f"/api/v2/backups/{bid}"),
        ("DELETE", f"/api/v2/backups/{bid}"),
        ("POST", f"/api/v2/backups/{bid}/restore"),
        ("GET", f"/api/v2/backups/{bid}/download"),
    ):
        assert (await http.request(method, path, headers=users["other"])).status_code == 404, path


@pytest.mark.parametrize(
    ("members", "links", "needle"),
    [
        ({"../escape.txt": b"x"}, (), "'..'"),
        ({"world/../../escape.txt": b"x"}, (), "'..'"),
        ({"/etc/passwd": b"x"}, (), "absolute path"),
        ({"world/level.dat": b"x"}, (("world/link", "/etc/passwd"),), "link"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink"],
)
async def test_unsafe_uploaded_archives_are_refused(api, db, members, links, needle):
    http, _, users = api
    sid = await server(http, users["owner"])
    response = await upload(http, users["owner"], sid, archive(members, links=links))
    assert response.status_code == 422, response.text
    assert needle in response.json()["detail"]
    assert await db.fetchval("SELECT count(*) FROM backups") == 0


async def test_an_archive_with_runtime_files_and_the_jar_is_kept_without_them(api, db):
    """A V1 backup holds the whole directory, server.jar included: accepted, those skipped."""
    http, _, users = api
    sid = await server(http, users["owner"])
    members = {
        "server.jar": b"PK",
        ".mcdash/console.in": b"x",
        "world/level.dat": b"generation=1\n",
    }
    response = await upload(http, users["owner"], sid, archive(members))
    assert response.status_code == 201, response.text
    assert await db.fetchval("SELECT count(*) FROM backups") == 1


async def test_not_an_archive_is_refused(api):
    http, _, users = api
    sid = await server(http, users["owner"])
    response = await upload(http, users["owner"], sid, b"PK\x03\x04 a zip, not a tar")
    assert response.status_code == 422
    assert "neither a gzip nor a zstd" in response.json()["detail"]


async def test_upload_download_summary_and_delete(api, db):
    http, settings, users = api
    sid = await server(http, users["owner"])
    data = archive({"world/level.dat": b"generation=7\n"})
    uploaded = (await upload(http, users["owner"], sid, data)).json()
    assert uploaded["status"] == "completed"
    assert uploaded["backup_type"] == "uploaded"
    assert uploaded["size_bytes"] == len(data)
    download = await http.get(f"/api/v2/backups/{uploaded['id']}/download", headers=users["owner"])
    assert download.content == data
    listing = (await http.get(f"/api/v2/servers/{sid}/backups", headers=users["owner"])).json()
    assert listing["total"] == 1
    deadline = asyncio.get_running_loop().time() + 10
    while True:  # the relay refreshes the read models shortly after the commit
        servers = (await http.get("/api/v2/servers/", headers=users["owner"])).json()["items"]
        summary = (
            await http.get(f"/api/v2/servers/{sid}/backups/summary", headers=users["owner"])
        ).json()
        if servers[0]["backup_count"] == 1 and summary["backup_count"] == 1:
            break
        assert asyncio.get_running_loop().time() < deadline, (servers, summary)
        await asyncio.sleep(0.1)
    assert servers[0]["latest_backup"] is not None
    assert summary["total_size"] == len(data)
    assert summary["success_rate"] == 1.0
    deleted = await http.delete(f"/api/v2/backups/{uploaded['id']}", headers=users["owner"])
    assert deleted.status_code == 204
    stored = settings.resolved_data_dir / "backups" / sid / f"{uploaded['id']}.tar.gz"
    assert not stored.exists()
    assert await db.fetchval("SELECT count(*) FROM backups") == 0


async def test_restore_of_another_servers_backup(api, db):
    http, _, users = api
    source = await server(http, users["owner"], "source")
    target = await server(http, users["owner"], "target")
    bid = (await upload(http, users["owner"], source, archive({"a.txt": b"a"}))).json()["id"]
    as_owner = await http.post(
        f"/api/v2/backups/{bid}/restore",
        headers=users["owner"],
        json={"server_id": target, "from_other_server": True},
    )
    assert as_owner.status_code == 403
    assert as_owner.json()["type"] == "urn:mcdash:problem:cross-server-restore"
    admin_without_flag = await http.post(
        f"/api/v2/backups/{bid}/restore", headers=users["admin"], json={"server_id": target}
    )
    assert admin_without_flag.status_code == 403
    as_admin = await http.post(
        f"/api/v2/backups/{bid}/restore",
        headers=users["admin"],
        json={"server_id": target, "from_other_server": True},
    )
    assert as_admin.status_code == 202, as_admin.text
    assert as_admin.json()["server_id"] == target
    again = await http.post(
        f"/api/v2/backups/{bid}/restore",
        headers=users["admin"],
        json={"server_id": target, "from_other_server": True},
    )
    assert again.status_code == 409
    locks = await db.fetch("SELECT server_id, operation FROM backup_locks")
    assert [(str(r[0]), r[1]) for r in locks] == [(target, "restore")]


async def test_download_of_an_archive_gone_from_storage_is_410(api):
    http, settings, users = api
    sid = await server(http, users["owner"])
    bid = (await upload(http, users["owner"], sid, archive({"a": b"a"}))).json()["id"]
    (settings.resolved_data_dir / "backups" / sid / f"{bid}.tar.gz").unlink()
    response = await http.get(f"/api/v2/backups/{bid}/download", headers=users["owner"])
    assert response.status_code == 410
    assert response.json()["type"] == "urn:mcdash:problem:backup-archive-missing"


async def test_backup_routes_need_a_token_and_valid_ids(api):
    http, _, users = api
    assert (await http.get(f"/api/v2/backups/{uuid.uuid4()}")).status_code == 401
    assert (await http.get("/api/v2/backups/not-a-uuid", headers=users["owner"])).status_code == 422
    missing = await http.get(f"/api/v2/backups/{uuid.uuid4()}", headers=users["owner"])
    assert missing.status_code == 404
    assert missing.json()["type"] == "urn:mcdash:problem:backup-not-found"
    sid = await server(http, users["owner"])
    bad = await http.post(
        f"/api/v2/servers/{sid}/backups", headers=users["owner"], json={"compression": "rar"}
    )
    assert bad.status_code == 422


async def test_restore_while_a_backup_of_the_server_runs_is_409(api, db):
    http, _, users = api
    sid = await server(http, users["owner"])
    uploaded = (await upload(http, users["owner"], sid, archive({"a": b"a"}))).json()["id"]
    running = await http.post(f"/api/v2/servers/{sid}/backups", headers=users["owner"])
    assert running.status_code == 202  # no worker in this test: it stays requested
    refused = await http.post(f"/api/v2/backups/{uploaded}/restore", headers=users["owner"])
    assert refused.status_code == 409
    assert refused.json()["type"] == "urn:mcdash:problem:backup-in-progress"
    assert "backup" in refused.json()["detail"]
    second = await http.post(f"/api/v2/servers/{sid}/backups", headers=users["owner"])
    assert second.status_code == 409
    assert await db.fetchval("SELECT count(*) FROM backups WHERE status='requested'") == 1
    restore_status = await db.fetchval(
        "SELECT restore_status FROM backups WHERE id=$1", uuid.UUID(uploaded)
    )
    assert restore_status is None


@pytest.mark.parametrize(
    ("name", "fallback", "encoded"),
    [
        pytest.param(
            "бэкап-1", "_____-1", "%D0%B1%D1%8D%D0%BA%D0%B0%D0%BF-1", id="cyrillic-бэкап-1"
        ),
        pytest.param(
            'say "hi" \\ 🎮',
            "say _hi_ _ _",
            "say%20%22hi%22%20%5C%20%F0%9F%8E%AE",
            id="quotes-emoji",
        ),
    ],
)
async def test_download_of_a_backup_with_a_unicode_name(api, name, fallback, encoded):
    http, _, users = api
    sid = await server(http, users["owner"])
    data = archive({"world/level.dat": b"x"})
    uploaded = await http.post(
        f"/api/v2/servers/{sid}/backups/upload",
        params={"name": name},
        headers=users["owner"],
        files={"file": ("world.tar.gz", data, "application/gzip")},
    )
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["name"] == name
    download = await http.get(
        f"/api/v2/backups/{uploaded.json()['id']}/download", headers=users["owner"]
    )
    assert download.status_code == 200, download.text
    assert download.content == data
    assert download.headers["content-disposition"] == (
        f"attachment; filename=\"{fallback}.tar.gz\"; filename*=UTF-8''{encoded}.tar.gz"
    )
