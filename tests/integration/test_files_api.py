"""The files API against real PostgreSQL, Redis and files under a temporary data directory."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest

from app.main import create_app
from tests.agent import in_process
from tests.conftest import admin_owner_other

BASE_PORT = 42000 + (uuid.uuid4().int % 400) * 20


@pytest.fixture
async def api(settings, clean, db):
    configured = settings.model_copy(
        update={
            "server_port_range_start": BASE_PORT,
            "server_port_range_end": BASE_PORT + 9,
            "file_edit_max_bytes": 64 * 1024,
            "file_upload_max_bytes": 256 * 1024,
        }
    )
    app = create_app(configured)
    async with in_process(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            users, _ = await admin_owner_other(http)
            created = await http.post(
                "/api/v2/servers/",
                headers=users["owner"],
                json={"name": "lobby", "server_type": "custom", "version": "1.0", "memory_mb": 512},
            )
            assert created.status_code == 201, created.text
            sid = created.json()["id"]
            root = configured.resolved_data_dir / "servers" / sid
            root.mkdir(parents=True)
            yield Api(http, users, sid, root, db, app)


class Api:
    def __init__(self, http, users, sid, root: Path, db, app) -> None:
        self.app = app
        self.http = http
        self.users = users
        self.sid = sid
        self.root = root
        self.db = db
        self.base = f"/api/v2/servers/{sid}/files"

    def url(self, path: str = "") -> str:
        return f"{self.base}/{path}" if path else self.base

    async def get(self, path: str = "", user: str = "owner", **kw) -> httpx.Response:
        return await self.http.get(self.url(path), headers=self.users[user], **kw)

    async def put(self, path: str, content: str, user="owner", **headers) -> httpx.Response:
        return await self.http.put(
            self.url(path), json={"content": content}, headers={**self.users[user], **headers}
        )

    async def history(self, path: str) -> list[dict]:
        response = await self.get(f"{path}/history")
        assert response.status_code == 200, response.text
        return response.json()["items"]


def problem_type(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()["type"].rsplit(":", 1)[1]


async def test_listing_shows_types_sizes_text_and_paginates(api):
    (api.root / "world").mkdir()
    (api.root / "ops.json").write_text("[]\n")
    (api.root / "level.dat").write_bytes(b"\x1f\x8b\x00\x00binary")
    (api.root / "server.properties").write_text("motd=hi\n")
    (api.root / ".mcdash").mkdir()
    response = await api.get()
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [i["name"] for i in items] == ["world", "level.dat", "ops.json", "server.properties"]
    kinds = {i["name"]: (i["type"], i["is_text"]) for i in items}
    assert kinds["world"] == ("directory", False)
    assert kinds["level.dat"] == ("file", False)
    assert kinds["ops.json"] == ("file", True)
    assert items[2]["size"] == 3
    second = (await api.get(params={"page": 2, "limit": 3})).json()
    assert second["total"] == 4
    assert [i["name"] for i in second["items"]] == ["server.properties"]


async def test_read_write_with_etags_and_history(api):
    (api.root / "ops.json").write_text("[]\n")
    read = await api.get("ops.json")
    assert read.status_code == 200
    etag = read.headers["etag"]
    assert read.json() == {"path": "ops.json", "content": "[]\n", "size": 3, "etag": etag}
    missing_precondition = await api.put("ops.json", "[1]\n")
    assert missing_precondition.status_code == 428
    saved = await api.put("ops.json", '[{"name": "Alice"}]\n', **{"If-Match": etag})
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] == 2
    assert (api.root / "ops.json").read_text() == '[{"name": "Alice"}]\n'
    assert saved.headers["etag"] != etag
    stale = await api.put("ops.json", "[]\n", **{"If-Match": etag})
    assert stale.status_code == 412
    assert stale.json()["current_etag"] == saved.headers["etag"]
    history = await api.history("ops.json")
    assert [(v["version"], v["action"], v["outcome"]) for v in history] == [
        (3, "written", "rejected"),
        (2, "written", "applied"),
        (1, "original", "applied"),
    ]
    assert (api.root / "ops.json").read_text() == '[{"name": "Alice"}]\n'


async def test_create_requires_no_existing_file_and_writes_unicode_paths(api):
    created = await api.put("wörld/日本.txt", "こんにちは\n", **{"If-None-Match": "*"})
    assert created.status_code == 201, created.text
    assert (api.root / "wörld" / "日本.txt").read_text() == "こんにちは\n"
    again = await api.put("wörld/日本.txt", "x", **{"If-None-Match": "*"})
    assert again.status_code == 412
    listing = (await api.get(params={"path": "wörld"})).json()
    assert listing["items"][0]["path"] == "wörld/日本.txt"
    assert (await api.get("wörld/日本.txt")).json()["content"] == "こんにちは\n"
    text_body = await api.http.put(
        api.url("notes.txt"), content="plain text", headers=api.users["owner"]
    )
    assert text_body.status_code == 201
    assert (api.root / "notes.txt").read_text() == "plain text"


async def test_two_concurrent_edits_with_the_same_etag_exactly_one_wins(api):
    (api.root / "whitelist.json").write_text("[]\n")
    etag = (await api.get("whitelist.json")).headers["etag"]
    first, second = await asyncio.gather(
        api.put("whitelist.json", '["alice"]\n', **{"If-Match": etag}),
        api.put("whitelist.json", '["bob"]\n', **{"If-Match": etag}),
    )
    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [200, 412], (first.text, second.text)
    winner, _loser = (first, second) if first.status_code == 200 else (second, first)
    winner_text = '["alice"]\n' if winner is first else '["bob"]\n'
    loser_text = '["bob"]\n' if winner is first else '["alice"]\n'
    assert (api.root / "whitelist.json").read_text() == winner_text
    history = await api.history("whitelist.json")
    assert [(v["action"], v["outcome"]) for v in history] == [
        ("written", "rejected"),
        ("written", "applied"),
        ("original", "applied"),
    ]
    rejected = (await api.get(f"whitelist.json/history/{history[0]['version']}")).json()
    assert rejected["content"] == loser_text
    applied = (await api.get(f"whitelist.json/history/{history[1]['version']}")).json()
    assert applied["content"] == winner_text
    events = await api.db.fetch(
        "SELECT event_data FROM domain_events WHERE event_type = 'FileModified'"
    )
    assert len(events) == 1


async def test_view_diff_restore_and_delete_then_restore(api):
    (api.root / "server.properties").write_text("motd=one\nmax-players=20\n")
    etag = (await api.get("server.properties")).headers["etag"]
    saved = await api.put("server.properties", "motd=two\nmax-players=20\n", **{"If-Match": etag})
    assert saved.status_code == 200
    assert saved.json()["restart_required"] is False
    diff = (await api.get("server.properties/history/1/diff")).json()
    assert "-motd=one\n+motd=two\n" in diff["diff"]
    assert diff["current_etag"] == saved.headers["etag"]
    restored = await api.http.post(
        api.url("server.properties/history/1/restore"), headers=api.users["owner"]
    )
    assert restored.status_code == 200, restored.text
    assert restored.json()["version"] == 3
    assert (api.root / "server.properties").read_text() == "motd=one\nmax-players=20\n"
    deleted = await api.http.delete(api.url("server.properties"), headers=api.users["owner"])
    assert deleted.status_code == 200
    assert not (api.root / "server.properties").exists()
    assert (await api.get("server.properties")).status_code == 404
    gone_diff = (await api.get("server.properties/history/2/diff")).json()
    assert "-motd=two" in gone_diff["diff"]
    back = await api.http.post(
        api.url("server.properties/history/2/restore"), headers=api.users["owner"]
    )
    assert back.status_code == 200, back.text
    assert (api.root / "server.properties").read_text() == "motd=two\nmax-players=20\n"
    actions = [v["action"] for v in await api.history("server.properties")]
    assert actions == ["restored", "deleted", "restored", "written", "original"]
    removal = await api.http.post(
        api.url("server.properties/history/4/restore"), headers=api.users["owner"]
    )
    assert removal.status_code == 409


async def test_server_properties_edit_of_a_running_server_requires_restart(api):
    await api.db.execute("UPDATE servers SET status = 'running' WHERE id = $1", uuid.UUID(api.sid))
    created = await api.put("server.properties", "motd=live\n")
    assert created.status_code == 201
    assert created.json()["restart_required"] is True
    server = (await api.http.get(f"/api/v2/servers/{api.sid}", headers=api.users["owner"])).json()
    assert server["restart_required"] is True
    other = await api.put("notes.txt", "x")
    assert other.json()["restart_required"] is False


async def test_server_properties_edits_of_managed_keys_are_flagged(api):
    server = (await api.http.get(f"/api/v2/servers/{api.sid}", headers=api.users["owner"])).json()
    text = (
        f"max-players={server['max_players']}\nserver-port={server['port'] + 1}\nview-distance=12\n"
    )
    written = await api.put("server.properties", text, **{"If-None-Match": "*"})
    assert written.status_code == 201, written.text
    warnings = written.json()["warnings"]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"server-port={server['port'] + 1} will be reset to")
    assert f"server-port={server['port']}" in warnings[0]
    assert (api.root / "server.properties").read_text() == text
    plain = await api.put("notes.txt", "server-port=1\n", **{"If-None-Match": "*"})
    assert plain.json()["warnings"] == []


async def test_binary_files_are_downloaded_not_read(api):
    payload = bytes(range(256)) * 100
    (api.root / "world").mkdir()
    (api.root / "world" / "r.0.0.mca").write_bytes(payload)
    read = await api.get("world/r.0.0.mca")
    assert read.status_code == 415
    assert problem_type(read) == "not-text"
    download = await api.get("world/r.0.0.mca/download")
    assert download.status_code == 200
    assert download.content == payload
    assert 'filename="r.0.0.mca"' in download.headers["content-disposition"]
    assert (await api.get("world")).status_code == 400


async def test_upload_streams_to_disk_and_refuses_oversized_files(api):
    files = {"file": ("plugin.jar", b"PK\x03\x04" + b"\x00" * 5000, "application/java-archive")}
    uploaded = await api.http.post(  # a plugin is code: server:code, which users lack by default
        api.url("upload"), params={"path": "plugins"}, files=files, headers=api.users["admin"]
    )
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()[0]["path"] == "plugins/plugin.jar"
    assert (api.root / "plugins" / "plugin.jar").stat().st_size == 5004
    again = await api.http.post(
        api.url("upload"), params={"path": "plugins"}, files=files, headers=api.users["admin"]
    )
    assert again.status_code == 409
    big = {"file": ("huge.bin", b"\x01" * (300 * 1024), "application/octet-stream")}
    refused = await api.http.post(
        api.url("upload"), params={"path": "plugins"}, files=big, headers=api.users["owner"]
    )
    assert refused.status_code == 413
    assert sorted(p.name for p in (api.root / "plugins").iterdir()) == ["plugin.jar"]


async def test_move_mkdir_and_directory_delete(api):
    made = await api.http.post(
        api.url("mkdir"), json={"path": "configs/old"}, headers=api.users["owner"]
    )
    assert made.status_code == 201
    await api.put("configs/a.yml", "a: 1\n")
    moved = await api.http.post(
        api.url("configs/a.yml/move"), json={"to": "configs/old/b.yml"}, headers=api.users["owner"]
    )
    assert moved.status_code == 200, moved.text
    assert (api.root / "configs/old/b.yml").read_text() == "a: 1\n"
    assert [v["action"] for v in await api.history("configs/a.yml")] == ["moved_out", "created"]
    not_empty = await api.http.delete(api.url("configs"), headers=api.users["owner"])
    assert not_empty.status_code == 409
    gone = await api.http.delete(
        api.url("configs"), params={"recursive": "true"}, headers=api.users["owner"]
    )
    assert gone.status_code == 200
    assert not (api.root / "configs").exists()
    assert next(v["action"] for v in await api.history("configs/old/b.yml")) == "deleted"


async def test_limits_and_ownership(api):
    too_big = await api.put("big.txt", "x" * (65 * 1024))
    assert too_big.status_code == 413
    assert not (api.root / "big.txt").exists()
    (api.root / "ops.json").write_text("[]")
    for user in ("other",):
        assert (await api.get("ops.json", user=user)).status_code == 404
        assert (await api.put("ops.json", "[1]", user=user)).status_code == 404
    assert (await api.get("ops.json", user="admin")).status_code == 200
    jar = await api.put("server.jar", "nope")
    assert jar.status_code == 403


async def test_anonymous_requests_are_refused_and_routes_are_documented(api):
    for method, path in (("GET", ""), ("GET", "ops.json"), ("PUT", "ops.json")):
        response = await api.http.request(method, api.url(path))
        assert response.status_code == 401, (method, path)
    spec = (await api.http.get("/openapi.json")).json()
    paths = [p for p in spec["paths"] if p.startswith("/api/v2/servers/{server_id}/files")]
    assert "/api/v2/servers/{server_id}/files/{file_path}/history/{version}/diff" in paths
    assert "/api/v2/servers/{server_id}/files/upload" in paths
    put = spec["paths"]["/api/v2/servers/{server_id}/files/{file_path}"]["put"]
    assert set(put["requestBody"]["content"]) == {"application/json", "text/plain"}
