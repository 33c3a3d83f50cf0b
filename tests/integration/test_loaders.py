"""Fabric, Forge and NeoForge: their catalogs from recorded upstream answers, and the node's
install (Fabric's pinned launcher, a stand-in installer run in staging) against a real JVM."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from app.servers.domain.errors import DownloadFailed, UnknownVersion
from app.servers.domain.model import ServerConfig, ServerType
from app.servers.infrastructure.catalog import VersionCatalog
from app.servers.infrastructure.files import ServerDirectory
from app.servers.infrastructure.installer import (
    FABRIC_LAUNCHER,
    INSTALLED_MARKER,
    InstallFailed,
    fetch_artifacts,
    install,
)
from app.servers.infrastructure.jars import JarCache
from app.servers.infrastructure.loaders import neoforge_minecraft
from app.shared.cache import CacheService
from tests.fake_server.build import build_fake_installer
from tests.loaders_upstream import (
    fabric_launcher_path,
    forge_installer_path,
    loader_settings,
    neoforge_installer_path,
    serve_artifact,
    serve_loader_recordings,
)
from tests.upstream import VANILLA_JAR, build_jar, serve_upstream

USER_AGENT = "mcdash-tests/1.0 (integration tests; test@example.com)"
NEO_ARGS = "libraries/net/neoforged/neoforge/21.1.77/unix_args.txt"
JAVA = Path(shutil.which("java") or "/usr/bin/java")


@pytest.fixture
def upstream():
    with serve_upstream() as served:
        serve_loader_recordings(served)
        yield served


@pytest.fixture
async def catalog(redis_url, clean, upstream):
    redis = Redis.from_url(redis_url, decode_responses=True)
    async with httpx.AsyncClient(headers={"User-Agent": USER_AGENT}, timeout=10) as http:
        yield VersionCatalog(
            http,
            CacheService(redis),
            mojang_manifest_url=f"{upstream.base}/mc/game/version_manifest_v2.json",
            paper_api_url=f"{upstream.base}/v3/",
            cache_ttl=60,
            **loader_settings(upstream.base),
        )
    await redis.aclose()


@pytest.fixture
async def jars(tmp_path):
    async with httpx.AsyncClient(timeout=10) as http:
        yield JarCache(tmp_path / "jars", http, max_upload_bytes=64 * 1024)


@pytest.fixture(scope="module")
def installers(tmp_path_factory):
    out = tmp_path_factory.mktemp("installers")
    return {
        fail: build_fake_installer(out, unix_args=NEO_ARGS, minecraft="1.21.1", fail=fail)
        for fail in (False, True)
    }


def config(server_type: ServerType, version: str, loader: str | None) -> ServerConfig:
    return ServerConfig(
        server_type=server_type, version=version, memory_mb=512, loader_version=loader
    )


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".mcdash" not in p.parts
    }


async def test_fabric_lists_game_versions_with_the_newest_stable_loader_recommended(catalog):
    versions = await catalog.versions("fabric")
    assert [(v.version, v.kind) for v in versions] == [
        ("1.21.4", "release"),
        ("25w02a", "snapshot"),
        ("1.20.4", "release"),
    ]
    assert versions[0].loader_versions == ("0.16.11", "0.16.10", "0.16.9")
    assert {v.recommended_loader for v in versions} == {"0.16.10"}


async def test_forge_recommends_the_promoted_build_else_the_latest(catalog):
    versions = {v.version: v for v in await catalog.versions("forge")}
    assert list(versions) == ["1.21.4", "1.20.4", "1.20.1"]
    assert versions["1.20.4"].loader_versions == ("49.1.0", "49.0.30")
    assert versions["1.20.4"].recommended_loader == "49.0.30"
    assert versions["1.21.4"].recommended_loader == "54.0.16"


async def test_neoforge_maps_its_versions_to_minecraft_and_prefers_stable(catalog):
    versions = {v.version: v for v in await catalog.versions("neoforge")}
    assert list(versions) == ["1.21.4", "1.21.1", "1.20.4"]
    assert versions["1.20.4"].recommended_loader == "20.4.237"
    assert (versions["1.21.4"].kind, versions["1.21.4"].recommended_loader) == (
        "beta",
        "21.4.10-beta",
    )
    assert [neoforge_minecraft(v) for v in ("21.0.3", "21.1.77", "26.1.0.5", "x")] == [
        "1.21",
        "1.21.1",
        "26.1",
        None,
    ]


async def test_choose_defaults_to_the_recommended_and_keeps_a_fitting_one(catalog):
    assert await catalog.loaders.choose("fabric", "1.21.4", None) == "0.16.10"
    assert await catalog.loaders.choose("forge", "1.20.4", "49.1.0") == "49.1.0"


@pytest.mark.parametrize(
    ("server_type", "version", "loader", "named"),
    [
        ("forge", "1.20.4", "54.0.16", "49.1.0, 49.0.30"),  # a build of another Minecraft
        ("neoforge", "1.21.1", "21.4.10-beta", "21.1.77"),
        ("fabric", "1.21.4", "9.9.9", "0.16.11, 0.16.10, 0.16.9"),
        ("neoforge", "1.19.2", None, "1.21.4, 1.21.1, 1.20.4"),  # no loader for that game
        ("forge", "1.16.5", None, "1.21.4, 1.20.4, 1.20.1"),  # starts from its own jar
    ],
    ids=["forge-build-of-another-mc", "neoforge-beta-of-another-mc", "fabric-unknown-loader",
         "neoforge-unsupported-mc", "forge-before-1.17"],
)  # fmt: skip
async def test_a_loader_that_does_not_fit_is_refused_naming_the_valid_ones(
    catalog, server_type, version, loader, named
):
    with pytest.raises(UnknownVersion) as refused:
        await catalog.loaders.choose(server_type, version, loader)
    assert refused.value.status == 422
    assert named in refused.value.detail


async def test_fabric_installs_the_pinned_launcher_beside_the_vanilla_jar(
    catalog, jars, upstream, tmp_path
):
    launcher = build_jar("net.fabricmc.installer.ServerLauncher")
    serve_artifact(upstream, fabric_launcher_path("1.21.4", "0.16.10"), launcher)
    artifacts = await fetch_artifacts(
        config(ServerType.FABRIC, "1.21.4", "0.16.10"), catalog=catalog, jars=jars
    )
    assert artifacts.server_jar is not None
    assert artifacts.server_jar.read_bytes() == VANILLA_JAR
    assert artifacts.arguments() == ["-jar", FABRIC_LAUNCHER, "nogui"]
    directory = ServerDirectory(tmp_path / "servers" / "fabric")
    directory.path.mkdir(parents=True)
    install(directory, artifacts, java=JAVA, timeout=60)
    assert (directory.path / FABRIC_LAUNCHER).read_bytes() == launcher
    assert (directory.path / "fabric-server-launcher.properties").read_text() == (
        "serverJar=server.jar\n"
    )
    pins = list((tmp_path / "jars" / "pins").iterdir())
    assert [p.read_text() for p in pins] == [hashlib.sha256(launcher).hexdigest()]

    # The cached launcher is gone and upstream now serves other bytes: the pin refuses them.
    assert artifacts.launcher is not None
    artifacts.launcher.unlink()
    serve_artifact(upstream, fabric_launcher_path("1.21.4", "0.16.10"), build_jar("Evil"))
    with pytest.raises(DownloadFailed, match=r"sha256 checksum mismatch.*pinned at its first"):
        await fetch_artifacts(
            config(ServerType.FABRIC, "1.21.4", "0.16.10"), catalog=catalog, jars=jars
        )


async def test_neoforge_installer_runs_in_staging_and_installs_once(
    catalog, jars, upstream, installers, tmp_path
):
    serve_artifact(upstream, neoforge_installer_path("21.1.77"), installers[False].read_bytes())
    artifacts = await fetch_artifacts(
        config(ServerType.NEOFORGE, "1.21.1", "21.1.77"), catalog=catalog, jars=jars
    )
    assert artifacts.server_jar is None
    assert artifacts.java_major == 21
    assert artifacts.arguments() == ["@user_jvm_args.txt", f"@{NEO_ARGS}", "nogui"]
    directory = ServerDirectory(tmp_path / "servers" / "neo")
    (directory.path / "world").mkdir(parents=True)
    (directory.path / "world" / "level.dat").write_bytes(b"kept")
    install(directory, artifacts, java=JAVA, timeout=60)
    files = tree(directory.path)
    assert files["world/level.dat"] == b"kept"
    assert files[NEO_ARGS].decode().split() == [
        "-Dfake.logStyle=neoforge",
        "-cp",
        "libraries/net/neoforged/neoforge/21.1.77/server.jar",
        "FakeServer",
    ]
    assert {"user_jvm_args.txt", "run.sh"} <= set(files)
    assert "installer.jar" not in files
    assert not (tmp_path / "installs" / "neo").exists(), "staging is removed"
    assert (tmp_path / "installs").is_dir()
    assert directory.read_private(INSTALLED_MARKER, limit=100) == b"neoforge 21.1.77 1.21.1"
    console = directory.read_private("console.log", limit=1 << 20).decode()
    assert "[installer] Downloading libraries" in console

    (directory.path / "user_jvm_args.txt").write_text("-XX:+UseG1GC\n")
    upstream.hits.clear()
    install(directory, artifacts, java=JAVA, timeout=60)
    assert (directory.path / "user_jvm_args.txt").read_text() == "-XX:+UseG1GC\n"
    assert directory.private_size("console.log") == len(console.encode()), "not run again"


async def test_forge_installs_its_recommended_build_for_the_unix_args_launch(
    catalog, jars, upstream, tmp_path
):
    args = "libraries/net/minecraftforge/forge/1.20.4-49.0.30/unix_args.txt"
    installer = build_fake_installer(tmp_path, unix_args=args, minecraft="1.20.4", fail=False)
    serve_artifact(upstream, forge_installer_path("1.20.4-49.0.30"), installer.read_bytes())
    artifacts = await fetch_artifacts(
        config(ServerType.FORGE, "1.20.4", "49.0.30"), catalog=catalog, jars=jars
    )
    assert artifacts.java_major == 17
    assert artifacts.arguments() == ["@user_jvm_args.txt", f"@{args}", "nogui"]
    directory = ServerDirectory(tmp_path / "servers" / "forge")
    directory.path.mkdir(parents=True)
    install(directory, artifacts, java=JAVA, timeout=60)
    assert (directory.path / args).is_file()
    assert directory.read_private(INSTALLED_MARKER, limit=100) == b"forge 49.0.30 1.20.4"


async def test_an_installer_failing_half_way_leaves_the_directory_as_it_was(
    catalog, jars, upstream, installers, tmp_path
):
    serve_artifact(upstream, neoforge_installer_path("21.1.77"), installers[True].read_bytes())
    artifacts = await fetch_artifacts(
        config(ServerType.NEOFORGE, "1.21.1", "21.1.77"), catalog=catalog, jars=jars
    )
    directory = ServerDirectory(tmp_path / "servers" / "neo")
    (directory.path / "world").mkdir(parents=True)
    (directory.path / "world" / "level.dat").write_bytes(b"kept")
    (directory.path / "server.properties").write_text("motd=old\n")
    before = tree(directory.path)
    with pytest.raises(InstallFailed) as failed:
        install(directory, artifacts, java=JAVA, timeout=60)
    assert "exit code 1" in failed.value.detail
    assert "Failed to download net.minecraft:server" in failed.value.detail
    assert tree(directory.path) == before
    assert not directory.has_private(INSTALLED_MARKER)


async def test_an_installer_whose_sha1_does_not_match_is_refused_and_not_cached(
    catalog, jars, upstream, installers, tmp_path
):
    serve_artifact(
        upstream, neoforge_installer_path("21.1.77"), installers[False].read_bytes(), sha1="0" * 40
    )
    with pytest.raises(DownloadFailed, match="sha1 checksum mismatch"):
        await fetch_artifacts(
            config(ServerType.NEOFORGE, "1.21.1", "21.1.77"), catalog=catalog, jars=jars
        )
    cached = [p for p in (tmp_path / "jars").rglob("*") if p.is_file()]
    assert cached == []
