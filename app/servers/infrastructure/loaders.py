"""Fabric meta, and Forge's and NeoForge's Maven: loader versions per Minecraft version, the
recommended one, and where the node gets what it installs."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from app.servers.domain.errors import UnknownVersion
from app.servers.domain.ports import VersionInfo

LOADER_TYPES = ("fabric", "forge", "neoforge")
LOADERS_LISTED = 50
"""Loader versions listed per Minecraft version (newest first); older ones still resolve."""
NAMED_IN_ERRORS = 10
FORGE_OLDEST = (1, 17)
"""Older Forge builds start from their own jar, not from `@unix_args.txt`: not offered."""
_MAVEN_VERSION = re.compile(r"<version>\s*([A-Za-z0-9][A-Za-z0-9._+-]{0,99})\s*</version>")
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
_SHA1 = re.compile(r"^[0-9a-fA-F]{40}\b")

Fetch = Callable[..., Awaitable[Any]]
"""VersionCatalog.cached: (key, url, extract, *, text=False) -> what extract kept."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoaderChoice:
    """The loader versions that fit one Minecraft version, newest first, and the recommended."""

    versions: tuple[str, ...]
    recommended: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LoaderSpec:
    """What a node installs for a loader server: Fabric's launcher jar, or an installer."""

    server_type: str
    version: str
    loader_version: str
    url: str
    sha1_url: str | None
    """The Maven `.sha1` beside the installer; None for Fabric, whose launcher is pinned."""
    unix_args: str | None
    """`libraries/.../unix_args.txt` the installer writes (Forge and NeoForge)."""


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version.split("-", 1)[0]))


def neoforge_minecraft(version: str) -> str | None:
    """The Minecraft version a NeoForge version is for: 21.1.77 -> 1.21.1, 21.0.3 -> 1.21,
    26.1.0.5 -> 26.1 (from the year-numbered releases on)."""
    parts = version.split("-", 1)[0].split(".")
    if len(parts) < 3 or not all(part.isdigit() for part in parts[:3]):
        return None
    major, minor, patch = parts[:3]
    if int(major) >= 26:
        return f"{major}.{minor}" if patch == "0" else f"{major}.{minor}.{patch}"
    return f"1.{major}" if minor == "0" else f"1.{major}.{minor}"


def _maven_versions(text: Any) -> list[str]:
    if not isinstance(text, str):
        raise TypeError("maven-metadata.xml is not text")
    return _MAVEN_VERSION.findall(text)


def _fabric_versions(document: Any) -> list[dict[str, Any]]:
    return [{"version": str(e["version"]), "stable": bool(e["stable"])} for e in document]


def _promotions(document: Any) -> dict[str, str]:
    promos = document["promos"]
    if not isinstance(promos, dict):
        raise TypeError("promos is not an object")
    return {str(key): str(value) for key, value in promos.items()}


class LoaderCatalog:
    """Reads the loaders' upstreams through the version catalog's Redis cache."""

    def __init__(
        self,
        fetch: Fetch,
        *,
        fabric_meta_url: str,
        forge_maven_url: str,
        forge_promotions_url: str,
        neoforge_maven_url: str,
    ) -> None:
        self._fetch = fetch
        self._fabric = fabric_meta_url.rstrip("/")
        self._forge = f"{forge_maven_url.rstrip('/')}/net/minecraftforge/forge"
        self._promotions_url = forge_promotions_url
        self._neoforge = f"{neoforge_maven_url.rstrip('/')}/net/neoforged/neoforge"

    async def versions(self, server_type: str) -> list[VersionInfo]:
        """Each Minecraft version the loader supports, newest first, with its loader versions."""
        choices = await self._choices(server_type)
        return [
            VersionInfo(
                server_type=server_type,
                version=version,
                kind=kind,
                released_at=None,
                loader_versions=choice.versions[:LOADERS_LISTED],
                recommended_loader=choice.recommended,
            )
            for version, (kind, choice) in choices.items()
        ]

    async def choose(self, server_type: str, version: str, loader_version: str | None) -> str:
        """The loader version to install: the one asked for when it fits, else the recommended."""
        choices = await self._choices(server_type)
        if version not in choices:
            known = ", ".join(list(choices)[:NAMED_IN_ERRORS]) or "none"
            raise UnknownVersion(
                f"{server_type} has no loader for Minecraft {version} (newest supported: {known})",
                field="version",
            )
        choice = choices[version][1]
        if loader_version is None:
            return choice.recommended
        if loader_version not in choice.versions:
            valid = ", ".join(choice.versions[:NAMED_IN_ERRORS])
            raise UnknownVersion(
                f"{server_type} loader {loader_version!r} does not fit Minecraft {version};"
                f" valid: {valid} (recommended: {choice.recommended})",
                field="loader_version",
            )
        return loader_version

    async def resolve(self, server_type: str, version: str, loader_version: str) -> LoaderSpec:
        chosen = await self.choose(server_type, version, loader_version)
        if server_type == "fabric":
            installers = await self._fetch(
                "catalog:fabric:installer",
                f"{self._fabric}/v2/versions/installer",
                _fabric_versions,
            )
            installer = next((i for i in installers if i["stable"]), installers[0])["version"]
            path = "/".join(quote(part, safe="") for part in (version, chosen, installer))
            return LoaderSpec(
                server_type=server_type,
                version=version,
                loader_version=chosen,
                url=f"{self._fabric}/v2/versions/loader/{path}/server/jar",
                sha1_url=None,
                unix_args=None,
            )
        if server_type == "forge":
            full = f"{version}-{chosen}"
            url = f"{self._forge}/{full}/forge-{full}-installer.jar"
            args = f"libraries/net/minecraftforge/forge/{full}/unix_args.txt"
        else:
            url = f"{self._neoforge}/{chosen}/neoforge-{chosen}-installer.jar"
            args = f"libraries/net/neoforged/neoforge/{chosen}/unix_args.txt"
        return LoaderSpec(
            server_type=server_type,
            version=version,
            loader_version=chosen,
            url=url,
            sha1_url=f"{url}.sha1",
            unix_args=args,
        )

    async def installer_sha1(self, spec: LoaderSpec) -> str:
        """The SHA-1 Maven publishes beside the installer (`<hex>` or `<hex>  <file name>`)."""
        assert spec.sha1_url is not None
        text = await self._fetch(f"catalog:sha1:{spec.sha1_url}", spec.sha1_url, str, text=True)
        match = _SHA1.match(text.strip())
        if match is None:
            raise UnknownVersion(f"{spec.sha1_url} holds no SHA-1")
        return match[0].lower()

    async def _choices(self, server_type: str) -> dict[str, tuple[str, LoaderChoice]]:
        """Minecraft version -> (kind, loader choice), newest Minecraft version first."""
        if server_type == "fabric":
            return await self._fabric_choices()
        if server_type == "forge":
            return await self._forge_choices()
        return await self._neoforge_choices()

    async def _fabric_choices(self) -> dict[str, tuple[str, LoaderChoice]]:
        games = await self._fetch(
            "catalog:fabric:game", f"{self._fabric}/v2/versions/game", _fabric_versions
        )
        loaders = await self._fetch(
            "catalog:fabric:loader", f"{self._fabric}/v2/versions/loader", _fabric_versions
        )
        if not loaders:
            return {}
        names = tuple(loader["version"] for loader in loaders)
        recommended = next((e["version"] for e in loaders if e["stable"]), names[0])
        choice = LoaderChoice(versions=names, recommended=recommended)
        return {
            game["version"]: ("release" if game["stable"] else "snapshot", choice)
            for game in games
            if _SAFE.match(game["version"])
        }

    async def _forge_choices(self) -> dict[str, tuple[str, LoaderChoice]]:
        versions = await self._fetch(
            "catalog:forge:metadata",
            f"{self._forge}/maven-metadata.xml",
            _maven_versions,
            text=True,
        )
        promos = await self._fetch("catalog:forge:promotions", self._promotions_url, _promotions)
        grouped: dict[str, list[str]] = {}
        for entry in versions:
            minecraft, _, forge = entry.partition("-")
            if forge and _version_key(minecraft) >= FORGE_OLDEST:
                grouped.setdefault(minecraft, []).append(forge)
        result: dict[str, tuple[str, LoaderChoice]] = {}
        for minecraft in sorted(grouped, key=_version_key, reverse=True):
            names = tuple(sorted(grouped[minecraft], key=_version_key, reverse=True))
            recommended = next(
                (
                    promos[key]
                    for key in (f"{minecraft}-recommended", f"{minecraft}-latest")
                    if promos.get(key) in names
                ),
                names[0],
            )
            result[minecraft] = ("release", LoaderChoice(versions=names, recommended=recommended))
        return result

    async def _neoforge_choices(self) -> dict[str, tuple[str, LoaderChoice]]:
        versions = await self._fetch(
            "catalog:neoforge:metadata",
            f"{self._neoforge}/maven-metadata.xml",
            _maven_versions,
            text=True,
        )
        grouped: dict[str, list[str]] = {}
        for entry in versions:
            minecraft = neoforge_minecraft(entry)
            if minecraft is not None:
                grouped.setdefault(minecraft, []).append(entry)
        result: dict[str, tuple[str, LoaderChoice]] = {}
        for minecraft in sorted(grouped, key=_version_key, reverse=True):
            names = tuple(sorted(grouped[minecraft], key=_version_key, reverse=True))
            stable = [name for name in names if "-" not in name]
            choice = LoaderChoice(versions=names, recommended=(stable or list(names))[0])
            result[minecraft] = ("release" if stable else "beta", choice)
        return result
