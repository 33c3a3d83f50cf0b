"""Server jars: the Mojang and PaperMC catalogues and a verified, content-addressed jar cache.

Both classes take an `httpx.AsyncClient` that the caller builds with
`headers={"User-Agent": settings.download_user_agent}` and
`timeout=settings.download_timeout_seconds`, so every request carries the
descriptive User-Agent PaperMC asks for.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
import zipfile
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from app.servers.domain.errors import DownloadFailed, InvalidJar, UnknownVersion
from app.shared.cache import CacheService

SERVER_TYPES = ("vanilla", "paper")
_PREFERRED_PAPER_CHANNELS = {"STABLE", "RECOMMENDED"}
_SAFE_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_RELEASE_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")
_WEEKLY_SNAPSHOT = re.compile(r"^(\d{2})w(\d{2})[a-z]$")
_SHA1 = re.compile(r"^[0-9a-f]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class JarSpec:
    """Where a server jar comes from and how to verify it."""

    server_type: str
    version: str
    url: str
    size: int
    sha1: str | None
    sha256: str | None
    java_major: int
    file_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionInfo:
    server_type: str
    version: str
    kind: str
    released_at: str | None


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
    ) -> None:
        self._http = http
        self._cache = cache
        self._manifest_url = mojang_manifest_url
        self._paper_url = paper_api_url.rstrip("/")
        self._ttl = cache_ttl

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
        raise _unknown_type(server_type)

    async def resolve(self, server_type: str, version: str) -> JarSpec:
        if server_type == "vanilla":
            return await self._resolve_vanilla(version)
        if server_type == "paper":
            return await self._resolve_paper(version)
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
        self, key: str, url: str, extract: Callable[[Any], Any], *, missing: bool = False
    ) -> Any:
        """What `extract` keeps of the document at `url`, from the cache when it is there."""
        value = await self._cache.get(key)
        if value is None:
            document = await self._get_json(url, missing_ok=missing)
            if document is None:
                return None
            try:
                value = extract(document)
            except (AttributeError, KeyError, TypeError) as exc:
                raise DownloadFailed(f"unexpected answer from {url}", url=url) from exc
            await self._cache.set(key, value, ttl_seconds=self._ttl)
        return value

    async def _get_json(self, url: str, *, missing_ok: bool = False) -> Any:
        """The decoded body; None for a 404 when `missing_ok`, DownloadFailed for other failures."""
        try:
            response = await self._http.get(url)
        except httpx.HTTPError as exc:
            raise DownloadFailed(f"could not fetch {url}: {exc!r}", url=url) from exc
        if missing_ok and response.status_code == 404:
            return None
        if not response.is_success:
            raise _bad_status(url, response.status_code)
        try:
            return response.json()
        except ValueError as exc:
            raise DownloadFailed(f"{url} did not return JSON", url=url) from exc


class JarCache:
    """Jars stored as `<root>/<sha256>.jar`; Mojang's SHA-1s map to them through `<root>/sha1/`."""

    def __init__(self, root: Path, http: httpx.AsyncClient, *, max_upload_bytes: int) -> None:
        self._root = root
        self._http = http
        self._max_upload = max_upload_bytes
        self._locks: dict[str, asyncio.Lock] = {}

    def path_for(self, sha256: str) -> Path | None:
        if not _SHA256.match(sha256):
            return None
        path = self._root / f"{sha256}.jar"
        return path if path.is_file() else None

    async def fetch(self, spec: JarSpec) -> Path:
        """The verified jar for `spec`, downloaded only when it is not cached yet."""
        checksum = _identifying_checksum(spec)
        lock = self._locks.setdefault(checksum, asyncio.Lock())
        async with lock:
            cached = await asyncio.to_thread(self._cached, spec)
            return cached or await self._download(spec)

    async def store_upload(self, chunks: AsyncIterable[bytes]) -> tuple[str, Path]:
        """Store a custom jar after checking its size and that it names a Main-Class."""
        tmp, out = self._open_temp(".upload-")
        try:
            sha256, size = hashlib.sha256(), 0
            async for chunk in chunks:
                size += len(chunk)
                if size > self._max_upload:
                    raise InvalidJar(
                        f"upload exceeds the limit of {self._max_upload} bytes"
                        f" ({self._max_upload / 2**20:.0f} MiB)",
                        limit=self._max_upload,
                    )
                sha256.update(chunk)
                out.write(chunk)
            await asyncio.to_thread(_flush_and_close, out)
            await asyncio.to_thread(_check_runnable_jar, tmp)
            digest = sha256.hexdigest()
            path = self._root / f"{digest}.jar"
            await asyncio.to_thread(os.replace, tmp, path)
        except BaseException:
            _discard(out, tmp)
            raise
        return digest, path

    def _cached(self, spec: JarSpec) -> Path | None:
        sha256 = spec.sha256
        if sha256 is None and spec.sha1:
            index = self._root / "sha1" / spec.sha1
            sha256 = index.read_text().strip() if index.is_file() else None
        path = self.path_for(sha256) if sha256 else None
        return path if path is not None and path.stat().st_size == spec.size else None

    async def _download(self, spec: JarSpec) -> Path:
        tmp, out = self._open_temp(".download-")
        try:
            sha1, sha256, size = hashlib.sha1(usedforsecurity=False), hashlib.sha256(), 0
            try:
                async with self._http.stream("GET", spec.url) as response:
                    if not response.is_success:
                        raise _bad_status(spec.url, response.status_code)
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > spec.size:
                            break
                        sha1.update(chunk)
                        sha256.update(chunk)
                        out.write(chunk)
            except httpx.HTTPError as exc:
                raise DownloadFailed(
                    f"could not download {spec.url}: {exc!r}", url=spec.url
                ) from exc
            if size != spec.size:
                raise DownloadFailed(
                    f"{spec.url}: size mismatch: expected {spec.size} bytes, got"
                    f" {'more' if size > spec.size else size}",
                    url=spec.url,
                )
            _verify(spec, "sha256", spec.sha256, sha256.hexdigest())
            _verify(spec, "sha1", spec.sha1, sha1.hexdigest())
            await asyncio.to_thread(_flush_and_close, out)
            path = self._root / f"{sha256.hexdigest()}.jar"
            await asyncio.to_thread(os.replace, tmp, path)
        except BaseException:
            _discard(out, tmp)
            raise
        if spec.sha256 is None and spec.sha1:
            await asyncio.to_thread(self._index_sha1, spec.sha1, sha256.hexdigest())
        return path

    def _open_temp(self, prefix: str) -> tuple[Path, BinaryIO]:
        self._root.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self._root, prefix=prefix, suffix=".part")
        return Path(name), os.fdopen(fd, "wb")

    def _index_sha1(self, sha1: str, sha256: str) -> None:
        index = self._root / "sha1"
        index.mkdir(exist_ok=True)
        fd, name = tempfile.mkstemp(dir=index, prefix=".index-")
        with os.fdopen(fd, "w") as out:
            out.write(sha256)
        os.replace(name, index / sha1)


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


def _identifying_checksum(spec: JarSpec) -> str:
    """The SHA-256, else the SHA-1, that names the jar; a malformed one could escape the root."""
    if spec.sha256 is not None and _SHA256.match(spec.sha256):
        return spec.sha256
    if spec.sha256 is None and spec.sha1 is not None and _SHA1.match(spec.sha1):
        return spec.sha1
    raise DownloadFailed(f"no valid checksum published for {spec.url}", url=spec.url)


def _verify(spec: JarSpec, algorithm: str, expected: str | None, actual: str) -> None:
    if expected is not None and expected.lower() != actual:
        raise DownloadFailed(
            f"{spec.url}: {algorithm} checksum mismatch: expected {expected}, got {actual}",
            url=spec.url,
        )


def _flush_and_close(out: BinaryIO) -> None:
    out.flush()
    os.fsync(out.fileno())
    out.close()


def _discard(out: BinaryIO, tmp: Path) -> None:
    """Inline rather than in a thread, so it still runs when the task is being cancelled."""
    out.close()
    tmp.unlink(missing_ok=True)


def _check_runnable_jar(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as jar:
            manifest = jar.read("META-INF/MANIFEST.MF").decode("utf-8", errors="replace")
    except zipfile.BadZipFile as exc:
        raise InvalidJar("not a runnable jar: the file is not a zip archive") from exc
    except KeyError as exc:
        raise InvalidJar("not a runnable jar: META-INF/MANIFEST.MF is missing") from exc
    main_section = re.split(r"\r?\n\r?\n", manifest, maxsplit=1)[0]
    if not re.search(r"^Main-Class:[ \t]*\S", main_section, re.MULTILINE):
        raise InvalidJar("not a runnable jar: the manifest names no Main-Class")


def _bad_status(url: str, status: int) -> DownloadFailed:
    return DownloadFailed(f"{url} answered HTTP {status}", url=url, upstream_status=status)


def _unknown_type(server_type: str) -> UnknownVersion:
    return UnknownVersion(
        f"unknown server type {server_type!r} (expected one of {', '.join(SERVER_TYPES)})"
    )
