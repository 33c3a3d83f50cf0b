"""Mods and plugins from a Modrinth stand-in, through the API and a real node agent, on a paper
server's plugins/ (no JVM): verified downloads, dependencies, updates, disable/remove, faults."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import httpx
import pytest

from app.main import create_app
from tests.agent import in_process
from tests.conftest import admin_owner_other
from tests.modrinth import FakeModrinth, serving

BASE_PORT = 43000 + (uuid.uuid4().int % 400) * 20


@pytest.fixture
def modrinth():
    with serving() as fake:
        fake.project("P-lib", "worldlib")
        fake.project("P-map", "squaremap", client_side="unsupported")
        fake.project("P-chat", "chatmod", server_side="unsupported")
        fake.project("P-bad", "badmod")
        fake.project("P-liar", "liar")
        fake.version("lib-1", "P-lib", "1.0.0")
        fake.version(
            "map-1", "P-map", "1.0.0", deps=[{"project_id": "P-lib", "dependency_type": "required"}]
        )
        fake.version("chat-1", "P-chat", "1.0.0")
        fake.version(
            "bad-1",
            "P-bad",
            "1.0.0",
            deps=[{"project_id": "P-map", "dependency_type": "incompatible"}],
        )
        fake.version("liar-1", "P-liar", "1.0.0", lie_about_hash=True)
        fake.project("P-yin", "yin")
        fake.project("P-yang", "yang")
        fake.version(
            "yin-1",
            "P-yin",
            "1.0.0",
            deps=[{"project_id": "P-yang", "dependency_type": "required"}],
        )
        fake.version(
            "yang-1",
            "P-yang",
            "1.0.0",
            deps=[{"project_id": "P-yin", "dependency_type": "required"}],
        )
        yield fake


@pytest.fixture
async def api(settings, clean, db, modrinth):
    configured = settings.model_copy(
        update={
            "server_port_range_start": BASE_PORT,
            "server_port_range_end": BASE_PORT + 9,
            "modrinth_api_url": modrinth.base,
            "modrinth_user_agent": "mcdash-tests/1 (mods@example.com)",
            "users_install_code": True,
        }
    )
    app = create_app(configured)
    async with in_process(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            users, _ = await admin_owner_other(http)
            sids = {}
            for name, kind in (("plugins", "paper"), ("plain", "vanilla")):
                created = await http.post(
                    "/api/v2/servers/",
                    headers=users["owner"],
                    json={
                        "name": name,
                        "server_type": "custom",
                        "version": "1.21.1",
                        "memory_mb": 512,
                    },
                )
                assert created.status_code == 201, created.text
                sids[kind] = created.json()["id"]
                await db.execute(
                    "UPDATE servers SET configuration = jsonb_set(configuration, '{server_type}',"
                    " $1::jsonb) WHERE id = $2",
                    json.dumps(kind),
                    uuid.UUID(sids[kind]),
                )
            root = configured.resolved_data_dir / "servers" / sids["paper"]
            yield Api(http, users, sids, root, configured.resolved_data_dir, db)


class Api:
    def __init__(self, http, users, sids, root: Path, data: Path, db) -> None:
        self.http, self.users, self.sids, self.root, self.data, self.db = (
            http,
            users,
            sids,
            root,
            data,
            db,
        )
        self.base = f"/api/v2/servers/{sids['paper']}/mods"

    async def call(self, method: str, path: str = "", user: str = "owner", **kw) -> httpx.Response:
        return await self.http.request(method, self.base + path, headers=self.users[user], **kw)

    def plugins(self) -> dict[str, str]:
        folder = self.root / "plugins"
        return {
            p.name: hashlib.sha512(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
        }

    async def events(self, event_type: str) -> list[dict]:
        rows = await self.db.fetch(
            "SELECT event_data FROM domain_events WHERE event_type = $1 ORDER BY position",
            event_type,
        )
        return [json.loads(r["event_data"]) for r in rows]


def problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()


def sha512_of(fake: FakeModrinth, vid: str) -> str:
    return fake.versions[vid]["files"][0]["hashes"]["sha512"]


async def test_install_with_dependency_update_disable_and_remove(api, modrinth) -> None:
    installed = await api.call("POST", json={"project": "squaremap"})
    assert installed.status_code == 201, installed.text
    assert [(v["version_id"], v["dependency_of"]) for v in installed.json()] == [
        ("map-1", None),
        ("lib-1", "P-map"),
    ]
    assert api.plugins() == {
        "squaremap-1.0.0.jar": sha512_of(modrinth, "map-1"),
        "worldlib-1.0.0.jar": sha512_of(modrinth, "lib-1"),
    }
    cached = sorted(p.name for p in (api.data / "mods-cache").iterdir())
    assert cached == sorted(f"{sha512_of(modrinth, v)}.jar" for v in ("map-1", "lib-1"))
    assert modrinth.user_agents >= {"mcdash-tests/1 (mods@example.com)"}

    hand_placed = b"PK\x05\x06" + bytes(18)
    (api.root / "plugins" / "handmade.jar").write_bytes(hand_placed)
    listed = (await api.call("GET")).json()
    by_name = {m["file_name"]: m for m in listed}
    assert by_name["squaremap-1.0.0.jar"]["version_id"] == "map-1"
    assert by_name["handmade.jar"]["identified"] is False
    assert by_name["handmade.jar"]["sha512"] == hashlib.sha512(hand_placed).hexdigest()

    again = await api.call("POST", json={"project": "squaremap"})
    assert problem(again, 409)["detail"].endswith("already installed")

    assert (await api.call("GET", "/updates")).json() == []
    disabled = await api.call("POST", "/jars/squaremap-1.0.0.jar/disable", json={})
    assert disabled.json() == {"file_name": "squaremap-1.0.0.jar.disabled"}
    listed = {m["file_name"]: m for m in (await api.call("GET")).json()}
    assert listed["squaremap-1.0.0.jar"]["enabled"] is False
    modrinth.version(
        "map-2", "P-map", "2.0.0", deps=[{"project_id": "P-lib", "dependency_type": "required"}]
    )
    updates = (await api.call("GET", "/updates")).json()
    assert [(u["from_version_id"], u["to_version_id"]) for u in updates] == [("map-1", "map-2")]
    updated = await api.call("POST", "/update", json={})
    assert updated.status_code == 200, updated.text
    plugins = api.plugins()
    assert "squaremap-1.0.0.jar.disabled" not in plugins
    assert plugins["squaremap-2.0.0.jar.disabled"] == sha512_of(modrinth, "map-2")  # still off
    enabled = await api.call("POST", "/jars/squaremap-2.0.0.jar/enable", json={})
    assert enabled.json() == {"file_name": "squaremap-2.0.0.jar"}
    assert "squaremap-2.0.0.jar" in api.plugins()
    removed = await api.call("DELETE", "/jars/worldlib-1.0.0.jar")
    assert removed.status_code == 200, removed.text
    assert "worldlib-1.0.0.jar" not in api.plugins()

    owner_id = (await api.http.get("/api/v2/users/me", headers=api.users["owner"])).json()["id"]
    assert [e["version_id"] for e in await api.events("ModInstalled")] == ["map-1", "lib-1"]
    assert {e["actor_id"] for e in await api.events("ModInstalled")} == {owner_id}
    assert [e["change"] for e in await api.events("ModUpdated")] == [
        "disabled",
        "version",
        "enabled",
    ]
    assert [e["file_name"] for e in await api.events("ModRemoved")] == ["worldlib-1.0.0.jar"]


async def test_a_running_server_gets_restart_required(api) -> None:
    await api.db.execute(
        "UPDATE servers SET status = 'running' WHERE id = $1", uuid.UUID(api.sids["paper"])
    )
    assert (await api.call("POST", json={"project": "worldlib"})).status_code == 201
    server = await api.http.get(f"/api/v2/servers/{api.sids['paper']}", headers=api.users["owner"])
    assert server.json()["restart_required"] is True


async def test_a_hash_mismatch_installs_and_caches_nothing(api) -> None:
    body = problem(await api.call("POST", json={"project": "liar"}), 422)
    assert body["type"] == "urn:mcdash:problem:mod-hash-mismatch"
    assert not (api.root / "plugins").exists() or api.plugins() == {}
    assert list((api.data / "mods-cache").iterdir()) == []
    assert await api.events("ModInstalled") == []


async def test_an_incompatible_dependency_is_refused_with_its_reason(api) -> None:
    assert (await api.call("POST", json={"project": "squaremap"})).status_code == 201
    body = problem(await api.call("POST", json={"project": "badmod"}), 409)
    assert "incompatible with" in body["detail"]
    assert "badmod-1.0.0.jar" not in api.plugins()


async def test_two_versions_of_one_project_are_refused(api, modrinth) -> None:
    assert (await api.call("POST", json={"project": "squaremap"})).status_code == 201
    modrinth.version("map-2", "P-map", "2.0.0")
    second = await api.call("POST", json={"project": "squaremap", "version_id": "map-2"})
    assert "two versions of one project" in problem(second, 409)["detail"]
    assert sorted(api.plugins()) == ["squaremap-1.0.0.jar", "worldlib-1.0.0.jar"]


async def test_a_dependency_cycle_installs_each_project_once(api) -> None:
    installed = await api.call("POST", json={"project": "yin"})
    assert installed.status_code == 201, installed.text
    assert [v["version_id"] for v in installed.json()] == ["yin-1", "yang-1"]
    assert sorted(api.plugins()) == ["yang-1.0.0.jar", "yin-1.0.0.jar"]


async def test_a_client_only_project_is_flagged_and_refused(api) -> None:
    found = (await api.call("GET", "/search", params={"query": "chat"})).json()
    sides = {hit["slug"]: (hit["side"], hit["installable"]) for hit in found["items"]}
    assert sides["chatmod"] == ("client-only", False)
    assert sides["squaremap"] == ("server-only", True)
    body = problem(await api.call("POST", json={"project": "chatmod"}), 422)
    assert body["type"] == "urn:mcdash:problem:mod-client-only"


async def test_a_version_for_another_minecraft_is_refused(api, modrinth) -> None:
    modrinth.project("P-old", "oldmod")
    modrinth.version("old-1", "P-old", "1.0.0", games=("1.20.1",))
    no_fit = await api.call("POST", json={"project": "oldmod"})
    assert problem(no_fit, 404)["type"] == "urn:mcdash:problem:mod-not-found"
    pinned = await api.call("POST", json={"project": "oldmod", "version_id": "old-1"})
    assert "not 1.21.1" in problem(pinned, 409)["detail"]


async def test_a_rate_limit_or_outage_is_a_503_with_retry_after(api, modrinth) -> None:
    modrinth.rate_limited = True
    limited = await api.call("GET", "/search")
    assert problem(limited, 503)["retry_after"] == 42
    assert limited.headers["Retry-After"] == "42"
    modrinth.rate_limited, modrinth.down = False, True
    down = await api.call("POST", json={"project": "worldlib"})
    assert problem(down, 503)["type"] == "urn:mcdash:problem:modrinth-unavailable"
    assert int(down.headers["Retry-After"]) > 0


async def test_a_server_type_without_mods_is_refused(api) -> None:
    response = await api.http.get(
        f"/api/v2/servers/{api.sids['vanilla']}/mods/search", headers=api.users["owner"]
    )
    assert "takes no mods" in problem(response, 409)["detail"]


async def test_others_see_no_mods_and_users_without_code_cannot_install(api) -> None:
    problem(await api.call("GET", user="other"), 404)
    problem(await api.call("POST", user="other", json={"project": "worldlib"}), 404)


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/search", {"params": {"limit": 0}}),
        ("GET", "/search", {"params": {"limit": 101}}),
        ("GET", "/search", {"params": {"offset": -1}}),
        ("GET", "/search", {"params": {"offset": 10_001}}),
        ("GET", "/search", {"params": {"query": "q" * 101}}),
        ("GET", "/search", {"params": {"query": "bad\nline"}}),
        ("POST", "", {"json": {"project": "../etc"}}),
        ("POST", "", {"json": {"project": "x" * 65}}),
        ("POST", "", {"json": {"project": "ok", "version_id": "a/b"}}),
        ("POST", "", {"json": {"project": "ok", "surprise": 1}}),
        ("POST", "/update", {"json": {"project_ids": ["p"] * 33}}),
        ("POST", "/jars/not-a-jar.txt/disable", {"json": {}}),
    ],
    ids=[
        "limit-zero",
        "limit-too-high",
        "offset-negative",
        "offset-too-high",
        "query-too-long",
        "query-control-character",
        "project-path",
        "project-too-long",
        "version-id-path",
        "unknown-field",
        "too-many-project-ids",
        "file-name-not-jar",
    ],
)
async def test_bad_parameters_are_422(api, method, path, kwargs) -> None:
    response = await api.call(method, path, **kwargs)
    assert problem(response, 422)["status"] == 422


async def test_a_download_is_cached_and_shared_between_servers(api, modrinth) -> None:
    other = api.sids["vanilla"]
    await api.db.execute(
        "UPDATE servers SET configuration = jsonb_set(configuration, '{server_type}', '\"paper\"')"
        " WHERE id = $1",
        uuid.UUID(other),
    )
    assert (await api.call("POST", json={"project": "worldlib"})).status_code == 201
    second = await api.http.post(
        f"/api/v2/servers/{other}/mods", headers=api.users["owner"], json={"project": "worldlib"}
    )
    assert second.status_code == 201, second.text
    blob = next(path for path in modrinth.blobs if "/lib-1/" in path)
    assert modrinth.hits[f"GET {blob}"] == 1
    copy = api.data / "servers" / other / "plugins" / "worldlib-1.0.0.jar"
    assert hashlib.sha512(copy.read_bytes()).hexdigest() == sha512_of(modrinth, "lib-1")
