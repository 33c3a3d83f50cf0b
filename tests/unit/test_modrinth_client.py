"""The Modrinth client's mapping of answers and faults: the primary file and its SHA-512, a 429
with X-Ratelimit-Reset or a silent Modrinth as a 503 with the time to retry."""

from __future__ import annotations

import json

import httpx
import pytest

from app.servers.domain.mods import ModNotFound, ModrinthUnavailable, mod_target
from app.servers.infrastructure.modrinth import ModrinthCatalog, parse_version

SHA = "a" * 128


def version_body(**files: bool) -> dict:
    return {
        "id": "v1",
        "project_id": "p1",
        "name": "Mod 1",
        "version_number": "1.0",
        "loaders": ["fabric"],
        "game_versions": ["1.21.1"],
        "dependencies": [{"project_id": "p2", "dependency_type": "required"}],
        "files": [
            {
                "url": f"https://cdn/{name}",
                "filename": name,
                "primary": primary,
                "size": 3,
                "hashes": {"sha512": SHA if primary else "b" * 128},
            }
            for name, primary in files.items()
        ],
    }


def catalog(handler) -> ModrinthCatalog:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ModrinthCatalog(http, base_url="http://modrinth/v2/", user_agent="ua-test")


def test_the_primary_file_is_the_one_installed() -> None:
    parsed = parse_version(version_body(**{"sources.jar": False, "mod.jar": True}))
    assert (parsed.file.file_name, parsed.file.sha512) == ("mod.jar", SHA)
    assert parsed.dependencies[0].kind == "required"


def test_a_version_without_a_sha512_is_not_installable() -> None:
    body = version_body(**{"mod.jar": True})
    body["files"][0]["hashes"] = {"sha1": "c" * 40}
    with pytest.raises(ModNotFound, match="SHA-512"):
        parse_version(body)


async def test_a_rate_limit_is_unavailable_with_its_reset() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["User-Agent"] == "ua-test"
        return httpx.Response(429, headers={"X-Ratelimit-Reset": "17"})

    with pytest.raises(ModrinthUnavailable) as raised:
        await catalog(handler).search("x", mod_target("fabric"), "1.21.1", limit=5, offset=0)
    assert raised.value.extra["retry_after"] == 17


async def test_a_silent_modrinth_is_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(ModrinthUnavailable) as raised:
        await catalog(handler).project("sodium")
    assert raised.value.extra["retry_after"] == 30


async def test_search_facets_name_the_loaders_and_version() -> None:
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(request.url.params)
        return httpx.Response(200, json={"hits": [], "total_hits": 0})

    await catalog(handler).search("map", mod_target("paper"), "1.21.1", limit=5, offset=10)
    assert json.loads(seen["facets"]) == [
        ["categories:paper", "categories:spigot", "categories:bukkit"],
        ["versions:1.21.1"],
        ["project_type!=modpack"],
    ]
    assert (seen["limit"], seen["offset"]) == ("5", "10")


async def test_a_missing_project_is_not_found() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": "not_found"})

    with pytest.raises(ModNotFound):
        await catalog(handler).project("nothing")
