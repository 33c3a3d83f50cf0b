"""The version catalogue and the jar cache against a local stand-in for Mojang and PaperMC."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import zipfile

import httpx
import pytest
from redis.asyncio import Redis

from app.servers.domain.errors import DownloadFailed, InvalidJar, UnknownVersion
from app.servers.infrastructure.catalog import JarSpec, VersionCatalog, VersionInfo
from app.servers.infrastructure.jars import JarCache
from app.shared.cache import CacheService
from tests.upstream import (
    ALPHA_JAR,
    OLD_JAR,
    PAPER_JAR,
    VANILLA_JAR,
    build_jar,
    serve_upstream,
    sha1,
    sha256,
)

USER_AGENT = "mcdash-tests/1.0 (integration tests; test@example.com)"


@pytest.fixture
def upstream():
    with serve_upstream() as served:
        yield served


@pytest.fixture
async def http():
    async with httpx.AsyncClient(headers={"User-Agent": USER_AGENT}, timeout=10) as client:
        yield client


@pytest.fixture
async def cache(redis_url, clean):
    redis = Redis.from_url(redis_url, decode_responses=True)
    yield CacheService(redis)
    await redis.aclose()


@pytest.fixture
def catalog(http, cache, upstream):
    return make_catalog(http, cache, upstream)


def make_catalog(http, cache, upstream):
    return VersionCatalog(
        http,
        cache,
        mojang_manifest_url=f"{upstream.base}/mc/game/version_manifest_v2.json",
        paper_api_url=f"{upstream.base}/v3/",
        cache_ttl=60,
    )


@pytest.fixture
def jars(tmp_path, http):
    return JarCache(tmp_path / "jars", http, max_upload_bytes=64 * 1024)


def files_under(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


async def test_vanilla_versions_list_releases_first(catalog, upstream):
    assert await catalog.versions("vanilla") == [
        VersionInfo(
            server_type="vanilla",
            version="1.21.4",
            kind="release",
            released_at="2024-12-03T10:12:57+00:00",
        ),
        VersionInfo(
            server_type="vanilla",
            version="1.20.4",
            kind="release",
            released_at="2023-12-07T08:29:20+00:00",
        ),
        VersionInfo(
            server_type="vanilla",
            version="25w02a",
            kind="snapshot",
            released_at="2025-01-08T13:24:49+00:00",
        ),
    ]
    assert upstream.user_agents == {USER_AGENT}


async def test_paper_versions_newest_family_first(catalog):
    versions = await catalog.versions("paper")
    assert [v.version for v in versions] == ["1.21.4", "1.21.3", "1.20.6", "1.20.4"]
    assert {(v.server_type, v.kind) for v in versions} == {("paper", "release")}


async def test_resolve_vanilla_takes_the_server_download_and_java_major(catalog, upstream):
    assert await catalog.resolve("vanilla", "1.21.4") == JarSpec(
        server_type="vanilla",
        version="1.21.4",
        url=f"{upstream.base}/v1/objects/1.21.4/server.jar",
        size=len(VANILLA_JAR),
        sha1=sha1(VANILLA_JAR),
        sha256=None,
        java_major=21,
        file_name="minecraft_server.1.21.4.jar",
    )
    assert (await catalog.resolve("vanilla", "1.20.4")).java_major == 17


async def test_resolve_paper_prefers_the_newest_stable_build(catalog, upstream):
    spec = await catalog.resolve("paper", "1.21.4")
    assert spec == JarSpec(
        server_type="paper",
        version="1.21.4",
        url=f"{upstream.base}/paper/{sha256(PAPER_JAR)}.jar",
        size=len(PAPER_JAR),
        sha1=None,
        sha256=sha256(PAPER_JAR),
        java_major=21,
        file_name="paper-1.21.4-230.jar",
    )
    beta_only = await catalog.resolve("paper", "1.21.3")
    assert beta_only.file_name == "paper-1.21.3-83.jar"


@pytest.mark.parametrize(
    ("server_type", "version", "message"),
    [
        ("vanilla", "1.2.3", "not in Mojang's version manifest"),
        ("vanilla", "25w02a", "has no server download"),
        ("paper", "9.9.9", "no builds"),
        ("paper", "1.20.4", "no builds"),
        ("paper", "../../etc", "no version"),
        ("forge", "1.21.4", "unknown server type 'forge'"),
    ],
)
async def test_unknown_versions_and_types(catalog, server_type, version, message):
    with pytest.raises(UnknownVersion, match=message):
        await catalog.resolve(server_type, version)


async def test_unknown_type_has_no_version_list(catalog):
    with pytest.raises(UnknownVersion, match="unknown server type"):
        await catalog.versions("fabric")


async def test_catalogue_answers_come_from_the_cache(http, cache, upstream):
    first = make_catalog(http, cache, upstream)
    await first.versions("vanilla")
    await first.versions("paper")
    await first.resolve("vanilla", "1.21.4")
    await first.resolve("paper", "1.21.4")
    requests_made = sum(upstream.hits.values())
    assert requests_made == 4

    again = make_catalog(http, cache, upstream)
    assert (await again.versions("vanilla"))[0].version == "1.21.4"
    assert len(await again.versions("paper")) == 4
    assert (await again.resolve("vanilla", "1.21.4")).java_major == 21
    assert (await again.resolve("paper", "1.21.4")).file_name == "paper-1.21.4-230.jar"
    assert sum(upstream.hits.values()) == requests_made
    assert await cache.get("catalog:mojang:manifest") is not None
    assert await cache.get("catalog:paper:builds:1.21.4") is not None


async def test_upstream_errors_are_download_failures(catalog, upstream):
    upstream.routes["/mc/game/version_manifest_v2.json"] = (503, b"maintenance")
    with pytest.raises(DownloadFailed, match=r"version_manifest_v2\.json answered HTTP 503"):
        await catalog.versions("vanilla")
    upstream.routes["/v3/projects/paper/versions/1.21.4/builds"] = (500, b"oops")
    with pytest.raises(DownloadFailed, match="answered HTTP 500"):
        await catalog.resolve("paper", "1.21.4")
    upstream.routes["/v3/projects/paper"] = (200, b"<html>not json</html>")
    with pytest.raises(DownloadFailed, match="did not return JSON"):
        await catalog.versions("paper")
    upstream.json("/v3/projects/paper", {"project": {"id": "paper"}, "versions": ["1.21.4"]})
    with pytest.raises(DownloadFailed, match="unexpected answer from"):
        await catalog.versions("paper")


async def test_unreachable_upstream_is_a_download_failure(http, cache):
    catalog = VersionCatalog(
        http,
        cache,
        mojang_manifest_url="http://127.0.0.1:9/manifest.json",
        paper_api_url="http://127.0.0.1:9/v3",
        cache_ttl=60,
    )
    with pytest.raises(DownloadFailed, match=r"could not fetch http://127\.0\.0\.1:9/manifest"):
        await catalog.versions("vanilla")


async def test_fetch_verifies_and_caches_the_vanilla_jar(catalog, jars, tmp_path, http, upstream):
    spec = await catalog.resolve("vanilla", "1.21.4")
    path = await jars.fetch(spec)
    assert path == tmp_path / "jars" / f"{sha256(VANILLA_JAR)}.jar"
    assert path.read_bytes() == VANILLA_JAR
    assert await jars.fetch(spec) == path

    restarted = JarCache(tmp_path / "jars", http, max_upload_bytes=1024)
    assert await restarted.fetch(spec) == path
    assert upstream.hits["/v1/objects/1.21.4/server.jar"] == 1
    assert files_under(tmp_path / "jars") == sorted(
        [f"{sha256(VANILLA_JAR)}.jar", f"sha1/{sha1(VANILLA_JAR)}"]
    )
    assert jars.path_for(sha256(VANILLA_JAR)) == path


async def test_fetch_verifies_and_caches_the_paper_jar(catalog, jars, upstream):
    spec = await catalog.resolve("paper", "1.21.4")
    first, second = await asyncio.gather(jars.fetch(spec), jars.fetch(spec))
    assert first == second == jars.path_for(sha256(PAPER_JAR))
    assert first.read_bytes() == PAPER_JAR
    assert await jars.fetch(spec) == first
    assert upstream.hits[f"/paper/{sha256(PAPER_JAR)}.jar"] == 1


async def test_a_corrupted_download_is_refused_and_not_kept(catalog, jars, tmp_path):
    spec = await catalog.resolve("vanilla", "1.20.4")
    with pytest.raises(DownloadFailed) as caught:
        await jars.fetch(spec)
    assert caught.value.detail == (
        f"{spec.url}: sha1 checksum mismatch: expected "
        f"0123456789abcdef0123456789abcdef01234567, got {sha1(OLD_JAR)}"
    )
    assert files_under(tmp_path / "jars") == []


async def test_a_paper_sha256_mismatch_is_refused(catalog, jars, tmp_path):
    spec = await catalog.resolve("paper", "1.21.4")
    tampered = dataclasses.replace(spec, sha256=sha256(ALPHA_JAR))
    with pytest.raises(DownloadFailed, match="sha256 checksum mismatch"):
        await jars.fetch(tampered)
    assert files_under(tmp_path / "jars") == []


@pytest.mark.parametrize("delta", [-1, 1])
async def test_a_size_mismatch_is_refused(catalog, jars, tmp_path, delta):
    spec = await catalog.resolve("vanilla", "1.21.4")
    with pytest.raises(DownloadFailed, match="size mismatch"):
        await jars.fetch(dataclasses.replace(spec, size=spec.size + delta))
    assert files_under(tmp_path / "jars") == []


async def test_an_upstream_error_while_downloading(catalog, jars, tmp_path, upstream):
    spec = await catalog.resolve("vanilla", "1.21.4")
    broken = dataclasses.replace(spec, url=f"{upstream.base}/v1/objects/broken/server.jar")
    with pytest.raises(DownloadFailed, match=r"broken/server\.jar answered HTTP 500") as caught:
        await jars.fetch(broken)
    assert caught.value.extra["upstream_status"] == 500
    assert files_under(tmp_path / "jars") == []


async def test_an_unreachable_download(catalog, jars, tmp_path):
    spec = await catalog.resolve("vanilla", "1.21.4")
    with pytest.raises(DownloadFailed, match=r"could not download http://127\.0\.0\.1:9/"):
        await jars.fetch(dataclasses.replace(spec, url="http://127.0.0.1:9/server.jar"))
    assert files_under(tmp_path / "jars") == []


async def test_a_jar_without_a_valid_checksum_is_refused(catalog, jars):
    spec = await catalog.resolve("vanilla", "1.21.4")
    with pytest.raises(DownloadFailed, match="no valid checksum"):
        await jars.fetch(dataclasses.replace(spec, sha1="../../etc/passwd"))


async def chunked(data: bytes, size: int = 4096):
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_store_upload_keeps_a_runnable_jar(jars, tmp_path):
    jar = build_jar("com.example.Server")
    digest, path = await jars.store_upload(chunked(jar, 100))
    assert digest == sha256(jar)
    assert path == tmp_path / "jars" / f"{digest}.jar"
    assert path.read_bytes() == jar
    assert jars.path_for(digest) == path
    assert files_under(tmp_path / "jars") == [f"{digest}.jar"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"#!/bin/sh\necho not a jar\n", "not a zip archive"),
        (b"", "not a zip archive"),
        (build_jar(main_class=None), "names no Main-Class"),
    ],
)
async def test_store_upload_refuses_what_is_not_a_runnable_jar(jars, tmp_path, data, reason):
    with pytest.raises(InvalidJar, match=f"not a runnable jar: .*{reason}"):
        await jars.store_upload(chunked(data))
    assert files_under(tmp_path / "jars") == []


async def test_store_upload_refuses_a_jar_without_a_manifest(jars, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("Main.class", b"\xca\xfe\xba\xbe")
    with pytest.raises(InvalidJar, match=r"MANIFEST\.MF is missing"):
        await jars.store_upload(chunked(buffer.getvalue()))
    assert files_under(tmp_path / "jars") == []


async def test_store_upload_refuses_an_oversized_upload(jars, tmp_path):
    consumed = 0

    async def endless():
        nonlocal consumed
        while True:
            consumed += 1
            yield b"x" * 8192

    with pytest.raises(InvalidJar, match="exceeds the limit of 65536 bytes"):
        await jars.store_upload(endless())
    assert consumed == 9
    assert files_under(tmp_path / "jars") == []


def test_path_for_rejects_what_is_not_a_sha256(jars):
    assert jars.path_for("../../etc/passwd") is None
    assert jars.path_for("a" * 64) is None
