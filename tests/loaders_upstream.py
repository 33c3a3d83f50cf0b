"""Recorded Fabric meta, Forge and NeoForge Maven answers, served by tests.upstream.Upstream.

Paths: Fabric meta under `/fabric`, Forge's Maven under `/forge-maven` (promotions at
`/forge-files/promotions_slim.json`), NeoForge's under `/neoforged/releases`.
"""

from __future__ import annotations

import hashlib

from tests.upstream import Upstream

FABRIC_GAMES = [
    {"version": "1.21.4", "stable": True},
    {"version": "25w02a", "stable": False},
    {"version": "1.20.4", "stable": True},
]
FABRIC_LOADERS = [  # newest first, as Fabric meta lists them; the newest is not stable yet
    {"separator": ".", "build": 11, "maven": "net.fabricmc:fabric-loader:0.16.11",
     "version": "0.16.11", "stable": False},
    {"separator": ".", "build": 10, "maven": "net.fabricmc:fabric-loader:0.16.10",
     "version": "0.16.10", "stable": True},
    {"separator": ".", "build": 9, "maven": "net.fabricmc:fabric-loader:0.16.9",
     "version": "0.16.9", "stable": True},
]  # fmt: skip
FABRIC_INSTALLERS = [
    {"url": "https://maven.fabricmc.net/x.jar", "maven": "net.fabricmc:fabric-installer:1.1.0",
     "version": "1.1.0", "stable": False},
    {"url": "https://maven.fabricmc.net/y.jar", "maven": "net.fabricmc:fabric-installer:1.0.1",
     "version": "1.0.1", "stable": True},
]  # fmt: skip
FORGE_VERSIONS = [
    "1.16.5-36.2.39",
    "1.20.1-47.3.0",
    "1.20.4-49.1.0",
    "1.20.4-49.0.30",
    "1.21.4-54.0.16",
]
FORGE_PROMOS = {
    "1.20.1-recommended": "47.3.0",
    "1.20.1-latest": "47.3.0",
    "1.20.4-recommended": "49.0.30",
    "1.20.4-latest": "49.1.0",
    "1.21.4-latest": "54.0.16",
}
NEOFORGE_VERSIONS = ["20.4.236", "20.4.237", "21.1.77", "21.4.0-beta", "21.4.10-beta"]


def maven_metadata(group: str, artifact: str, versions: list[str]) -> bytes:
    listed = "".join(f"\n      <version>{v}</version>" for v in versions)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<metadata>\n  <groupId>{group}</groupId>\n'
        f"  <artifactId>{artifact}</artifactId>\n  <versioning>\n"
        f"    <latest>{versions[-1]}</latest>\n    <release>{versions[-1]}</release>\n"
        f"    <versions>{listed}\n    </versions>\n  </versioning>\n</metadata>\n"
    ).encode()


def fabric_launcher_path(game: str, loader: str, installer: str = "1.0.1") -> str:
    return f"/fabric/v2/versions/loader/{game}/{loader}/{installer}/server/jar"


def neoforge_installer_path(version: str) -> str:
    return f"/neoforged/releases/net/neoforged/neoforge/{version}/neoforge-{version}-installer.jar"


def forge_installer_path(full: str) -> str:
    return f"/forge-maven/net/minecraftforge/forge/{full}/forge-{full}-installer.jar"


def serve_loader_recordings(upstream: Upstream) -> None:
    upstream.json("/fabric/v2/versions/game", FABRIC_GAMES)
    upstream.json("/fabric/v2/versions/loader", FABRIC_LOADERS)
    upstream.json("/fabric/v2/versions/installer", FABRIC_INSTALLERS)
    upstream.routes["/forge-maven/net/minecraftforge/forge/maven-metadata.xml"] = (
        200,
        maven_metadata("net.minecraftforge", "forge", FORGE_VERSIONS),
    )
    upstream.json(
        "/forge-files/promotions_slim.json",
        {"homepage": "https://files.minecraftforge.net/", "promos": FORGE_PROMOS},
    )
    upstream.routes["/neoforged/releases/net/neoforged/neoforge/maven-metadata.xml"] = (
        200,
        maven_metadata("net.neoforged", "neoforge", NEOFORGE_VERSIONS),
    )


def serve_artifact(upstream: Upstream, path: str, data: bytes, *, sha1: str | None = None) -> None:
    """An artifact and, for a Maven one, its `.sha1` (the right one unless `sha1` is given)."""
    upstream.routes[path] = (200, data)
    if path.endswith("-installer.jar"):
        digest = sha1 or hashlib.sha1(data).hexdigest()
        upstream.routes[f"{path}.sha1"] = (200, digest.encode())


def loader_settings(base: str) -> dict[str, str]:
    """The catalog's upstream settings (as VersionCatalog keywords) for the stand-in."""
    return {
        "fabric_meta_url": f"{base}/fabric",
        "forge_maven_url": f"{base}/forge-maven",
        "forge_promotions_url": f"{base}/forge-files/promotions_slim.json",
        "neoforge_maven_url": f"{base}/neoforged/releases",
    }
