"""The version catalogue and the jar cache against a local stand-in for Mojang and PaperMC."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import struct
import tracemalloc
import zipfile

import httpx
import pytest
from redis.asyncio import Redis

from app.servers.domain.errors import DownloadFailed, InvalidJar, JarTooLarge, UnknownVersion
from app.servers.domain.ports import VersionInfo
from app.servers.infrastructure.catalog import JarSpec, VersionCatalog
from app.servers.infrastructure.jars import MANIFEST_MAX_BYTES, JarCache
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
        await catalog.versions("quilt")


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
    digest, size = await jars.store_upload(chunked(jar, 100))
    assert digest == sha256(jar)
    assert size == len(jar)
    path = tmp_path / "jars" / f"{digest}.jar"
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

    with pytest.raises(JarTooLarge, match="exceeds the limit of 65536 bytes"):
        await jars.store_upload(endless())
    assert consumed == 9
    assert files_under(tmp_path / "jars") == []


def test_path_for_rejects_what_is_not_a_sha256(jars):
    assert jars.path_for("../../etc/passwd") is None
    assert jars.path_for("a" * 64) is None


# ---- hostile jars: the manifest check reads a bounded amount ------------------------------

MANIFEST = "META-INF/MANIFEST.MF"
GOOD_MANIFEST = b"Manifest-Version: 1.0\r\nMain-Class: com.example.Server\r\n\r\n"


def deflated_jar(manifest: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST, manifest)
        archive.writestr("com/example/Server.class", b"\xca\xfe\xba\xbe")
    return buffer.getvalue()


def declaring(jar: bytes, size: int) -> bytes:
    """The jar with the manifest's uncompressed size rewritten in both of its headers."""
    data = bytearray(jar)
    local = zipfile.ZipFile(io.BytesIO(jar)).getinfo(MANIFEST).header_offset
    struct.pack_into("<L", data, local + 22, size)
    central = data.find(b"PK\x01\x02" + bytes(data[local + 4 : local + 6]))
    while data[central + 46 : central + 46 + len(MANIFEST)] != MANIFEST.encode():
        central = data.find(b"PK\x01\x02", central + 4)
    struct.pack_into("<L", data, central + 24, size)
    return bytes(data)


def with_central_directory_size(jar: bytes, size: int, *, zip64: bool = False) -> bytes:
    end = jar.rfind(b"PK\x05\x06")
    if not zip64:
        return jar[: end + 12] + struct.pack("<L", size) + jar[end + 16 :]
    count = struct.unpack_from("<H", jar, end + 10)[0]
    offset = struct.unpack_from("<L", jar, end + 16)[0]
    record = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, end, 1)
    return jar[:end] + record + locator + jar[end:]


async def peak_memory_of_upload(jars, data: bytes) -> tuple[BaseException | None, int]:
    tracemalloc.start()
    try:
        await jars.store_upload(chunked(data))
        error = None
    except InvalidJar as exc:
        error = exc
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return error, peak


async def test_a_manifest_declaring_2gib_is_refused_before_reading(jars, tmp_path):
    error, peak = await peak_memory_of_upload(jars, declaring(deflated_jar(GOOD_MANIFEST), 2**31))

    assert isinstance(error, InvalidJar)
    assert f"declares {2**31} bytes, more than the {MANIFEST_MAX_BYTES} allowed" in str(error)
    assert peak < 2 * 1024 * 1024
    assert files_under(tmp_path / "jars") == []


async def test_a_real_bomb_of_8mib_of_zeros_is_refused_by_its_declared_size(jars, tmp_path):
    bomb = deflated_jar(GOOD_MANIFEST + b"\0" * (8 * 1024 * 1024))
    assert len(bomb) < 64 * 1024

    error, peak = await peak_memory_of_upload(jars, bomb)

    assert isinstance(error, InvalidJar)
    assert f"declares {len(GOOD_MANIFEST) + 8 * 1024 * 1024} bytes" in str(error)
    assert peak < 2 * 1024 * 1024


@pytest.mark.parametrize(
    "declared", [200, MANIFEST_MAX_BYTES], ids=["declares-200-bytes", "declares-64kib"]
)
async def test_a_header_that_lies_about_the_size_does_not_help(jars, tmp_path, declared):
    bomb = declaring(deflated_jar(GOOD_MANIFEST + b"\0" * (8 * 1024 * 1024)), declared)

    error, peak = await peak_memory_of_upload(jars, bomb)

    assert isinstance(error, InvalidJar)
    assert "not a zip archive (Bad CRC-32" in str(error)
    assert peak < 2 * 1024 * 1024
    assert files_under(tmp_path / "jars") == []


@pytest.mark.parametrize("zip64", [False, True], ids=["end-record", "zip64-end-record"])
async def test_a_central_directory_declaring_1gib_is_refused(jars, tmp_path, zip64):
    jar = with_central_directory_size(deflated_jar(GOOD_MANIFEST), 2**30, zip64=zip64)

    error, peak = await peak_memory_of_upload(jars, jar)

    assert isinstance(error, InvalidJar)
    assert f"central directory declares {2**30} bytes" in str(error)
    assert peak < 2 * 1024 * 1024


async def test_a_manifest_of_exactly_64kib_is_read_and_one_byte_more_refused(jars):
    manifest = GOOD_MANIFEST + b"\n" * (MANIFEST_MAX_BYTES - len(GOOD_MANIFEST))

    digest, _ = await jars.store_upload(chunked(deflated_jar(manifest)))

    assert jars.path_for(digest) is not None
    with pytest.raises(InvalidJar, match=f"declares {MANIFEST_MAX_BYTES + 1} bytes"):
        await jars.store_upload(chunked(deflated_jar(manifest + b"\n")))
