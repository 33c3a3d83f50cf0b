"""Mojang's manifest and Paper's Fill v3 API: which versions exist, and can a node run them.

Build the httpx client with a descriptive User-Agent (Paper requires one), for example
`httpx.AsyncClient(headers={"User-Agent": settings.download_user_agent})`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from app.servers.domain.errors import DownloadFailed, JavaRuntimeMissing, UnknownVersion
from app.servers.domain.model import ServerType
from app.servers.domain.ports import VersionInfo
from app.servers.infrastructure.loaders import LOADER_TYPES, LoaderCatalog
from app.servers.infrastructure.runtime import RedisNodeGateway
from app.shared.cache import CacheService

SERVER_TYPES = ("vanilla", "paper", *LOADER_TYPES)
_PREFERRED_PAPER_CHANNELS = {"STABLE", "RECOMMENDED"}
_SAFE_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_RELEASE_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")
_WEEKLY_SNAPSHOT = re.compile(r"^(\d{2})w(\d{2})[a-z]$")
ARTIFACT_MAX_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class JarSpec:
    """Where a server jar comes from and how to verify it."""

    server_type: str
    version: str
    url: str
    size: int | None
    """None when upstream publishes none (loader artifacts): bounded by ARTIFACT_MAX_BYTES."""
    sha1: str | None
    sha256: str | None
    java_major: int
    file_name: str


def required_java_major(version: str) -> int:
    """The Java major a Minecraft version needs, for when the manifest does not say."""
    if match := _WEEKLY_SNAPSHOT.match(version):
        week = (int(match[1]), int(match[2]))
        if week >= (24, 14):
            return 21
        if week >= (21, 44):
            return 17
        return 16 if week >= (21, 19) else 8
    match = _RELEASE_VERSION.match(version)
    if match is None:
        return 21
    major, minor, patch = int(match[1]), int(match[2]), int(match[3] or 0)
    if major > 1 or (minor, patch) >= (20, 5):
        return 21
    if minor >= 18:
        return 17
    return 16 if minor == 17 else 8


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


class VersionCatalog:
    """Lists and resolves server versions, caching upstream answers in Redis."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        cache: CacheService,
        *,
        mojang_manifest_url: str,
        paper_api_url: str,
        cache_ttl: int,
        fabric_meta_url: str = "https://meta.fabricmc.net",
        forge_maven_url: str = "https://maven.minecraftforge.net",
        forge_promotions_url: str = (
            "https://files.minecraftforge.net/net/minecraftforge/forge/promotions_slim.json"
        ),
        neoforge_maven_url: str = "https://maven.neoforged.net/releases",
    ) -> None:
        self._http = http
        self._cache = cache
        self._manifest_url = mojang_manifest_url
        self._paper_url = paper_api_url.rstrip("/")
        self._ttl = cache_ttl
        self.loaders = LoaderCatalog(
            self._cached,
            fabric_meta_url=fabric_meta_url,
            forge_maven_url=forge_maven_url,
            forge_promotions_url=forge_promotions_url,
            neoforge_maven_url=neoforge_maven_url,
        )

    async def versions(self, server_type: str) -> list[VersionInfo]:
        if server_type == "vanilla":
            entries = await self._mojang_manifest()
            releases = [e for e in entries if e["type"] == "release"]
            others = [e for e in entries if e["type"] != "release"]
            return [
                VersionInfo(
                    server_type="vanilla",
                    version=e["id"],
                    kind=e["type"],
                    released_at=e["released_at"],
                )
                for e in releases + others
            ]
        if server_type == "paper":
            families = await self._paper_families()
            ordered = sorted(families.items(), key=lambda item: _version_key(item[0]), reverse=True)
            return [
                VersionInfo(
                    server_type="paper",
                    version=version,
                    kind="release" if _RELEASE_VERSION.fullmatch(version) else "experimental",
                    released_at=None,
                )
                for _, versions in ordered
                for version in versions
            ]
        if server_type in LOADER_TYPES:
            return await self.loaders.versions(server_type)
        raise _unknown_type(server_type)

    async def resolve(self, server_type: str, version: str) -> JarSpec:
        if server_type == "vanilla":
            return await self._resolve_vanilla(version)
        if server_type == "paper":
            return await self._resolve_paper(version)
        if server_type == "fabric":
            return await self._resolve_vanilla(version)  # the launcher runs the vanilla jar
        raise _unknown_type(server_type)

    async def _resolve_vanilla(self, version: str) -> JarSpec:
        entry = next((e for e in await self._mojang_manifest() if e["id"] == version), None)
        if entry is None:
            raise UnknownVersion(f"Minecraft {version} is not in Mojang's version manifest")
        details = await self._cached(f"catalog:mojang:version:{version}", entry["url"], _server)
        if not details["server"]:
            raise UnknownVersion(f"Minecraft {version} has no server download")
        server = details["server"]
        return JarSpec(
            server_type="vanilla",
            version=version,
            url=server["url"],
            size=int(server["size"]),
            sha1=server["sha1"].lower(),
            sha256=None,
            java_major=details["java_major"] or required_java_major(version),
            file_name=f"minecraft_server.{version}.jar",
        )

    async def _resolve_paper(self, version: str) -> JarSpec:
        if not _SAFE_VERSION.match(version):
            raise UnknownVersion(f"Paper has no version {version!r}")
        url = f"{self._paper_url}/projects/paper/versions/{version}/builds"
        builds = await self._cached(f"catalog:paper:builds:{version}", url, _builds, missing=True)
        if not builds:
            raise UnknownVersion(f"Paper has no builds for Minecraft {version}")
        preferred = [b for b in builds if b["channel"] in _PREFERRED_PAPER_CHANNELS]
        download = (preferred or builds)[0]["download"]
        return JarSpec(
            server_type="paper",
            version=version,
            url=download["url"],
            size=int(download["size"]),
            sha1=None,
            sha256=download["checksums"]["sha256"].lower(),
            java_major=required_java_major(version),
            file_name=download["name"],
        )

    async def _mojang_manifest(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = await self._cached(
            "catalog:mojang:manifest", self._manifest_url, _manifest_entries
        )
        return entries

    async def _paper_families(self) -> dict[str, list[str]]:
        url = f"{self._paper_url}/projects/paper"
        families: dict[str, list[str]] = await self._cached("catalog:paper:project", url, _families)
        return families

    async def _cached(
        self,
        key: str,
        url: str,
        extract: Callable[[Any], Any],
        *,
        missing: bool = False,
        text: bool = False,
    ) -> Any:
        """What `extract` keeps of the document at `url`, from the cache when it is there."""
        value = await self._cache.get(key)
        if value is None:
            document = await self._get_json(url, missing_ok=missing, text=text)
            if document is None:
                return None
            try:
                value = extract(document)
            except (AttributeError, KeyError, TypeError) as exc:
                raise DownloadFailed(f"unexpected answer from {url}", url=url) from exc
            await self._cache.set(key, value, ttl_seconds=self._ttl)
        return value

    async def _get_json(self, url: str, *, missing_ok: bool = False, text: bool = False) -> Any:
        """The decoded body; None for a 404 when `missing_ok`, DownloadFailed for other failures."""
        try:
            response = await self._http.get(url)
        except httpx.HTTPError as exc:
            raise DownloadFailed(f"could not fetch {url}: {exc!r}", url=url) from exc
        if missing_ok and response.status_code == 404:
            return None
        if not response.is_success:
            raise bad_status(url, response.status_code)
        if text:
            return response.text
        try:
            return response.json()
        except ValueError as exc:
            raise DownloadFailed(f"{url} did not return JSON", url=url) from exc


def _manifest_entries(document: Any) -> list[dict[str, Any]]:
    return [
        {"id": v["id"], "type": v["type"], "url": v["url"], "released_at": v.get("releaseTime")}
        for v in document["versions"]
    ]


def _server(document: Any) -> dict[str, Any]:
    server = document.get("downloads", {}).get("server")
    return {
        "server": server and {key: server[key] for key in ("url", "size", "sha1")},
        "java_major": document.get("javaVersion", {}).get("majorVersion"),
    }


def _builds(document: Any) -> list[dict[str, Any]]:
    return [
        {"id": b["id"], "channel": b["channel"], "download": b["downloads"]["server:default"]}
        for b in document
    ]


def _families(document: Any) -> dict[str, list[str]]:
    families = document["versions"]
    if not isinstance(families, dict):
        raise TypeError("versions is not an object")
    return families


def bad_status(url: str, status: int) -> DownloadFailed:
    return DownloadFailed(f"{url} answered HTTP {status}", url=url, upstream_status=status)


def _unknown_type(server_type: str) -> UnknownVersion:
    return UnknownVersion(
        f"unknown server type {server_type!r} (expected one of {', '.join(SERVER_TYPES)})"
    )


class NodeRecordCapacity:
    """The machine's memory as the node's worker advertises it in its heartbeat record."""

    def __init__(self, nodes: RedisNodeGateway) -> None:
        self._nodes = nodes

    async def memory_total_mb(self, node: str) -> int | None:
        info = await self._nodes.node_info(node)
        try:
            return int(info["memory_total"]) // 2**20 if info and "memory_total" in info else None
        except (TypeError, ValueError):
            return None


class CatalogReleaseCheck:
    def __init__(self, catalog: VersionCatalog, nodes: RedisNodeGateway) -> None:
        self._catalog = catalog
        self._nodes = nodes

    async def check_version(self, server_type: ServerType, version: str) -> None:
        if server_type.value in LOADER_TYPES and server_type is not ServerType.FABRIC:
            return  # the installer brings the game; check_loader checks the version
        await self._catalog.resolve(server_type.value, version)

    async def check_loader(
        self, server_type: ServerType, version: str, loader_version: str | None
    ) -> str:
        """The loader version a new server gets: the one asked for, or the recommended."""
        return await self._catalog.loaders.choose(server_type.value, version, loader_version)

    async def check_java(self, node: str, version: str) -> None:
        """Compare with the runtimes the node's worker advertises; unknown when it is offline."""
        info = await self._nodes.node_info(node)
        if not info or "java" not in info:
            return
        required = required_java_major(version)
        runtimes = json.loads(info["java"])
        if any(runtime["major"] >= required for runtime in runtimes):
            return
        installed = ", ".join(f"Java {r['major']} ({r['path']})" for r in runtimes) or "none"
        raise JavaRuntimeMissing(
            f"Minecraft {version} needs Java {required}; node {node} has: {installed}",
            required_java=required,
            installed=[runtime["major"] for runtime in runtimes],
        )
