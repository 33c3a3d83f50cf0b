"""Mods and plugins of a server: which loader and directory its type takes, what Modrinth says of
a project or version, the jars on the node, the errors of installing them, and their events."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from app.servers.domain.events import ServerEvent
from app.shared.domain import Conflict, DomainError, InvalidInput, NotFound

MOD_LOADERS = {"fabric": "fabric", "forge": "forge", "neoforge": "neoforge", "quilt": "quilt"}
PLUGIN_LOADERS = ("paper", "spigot", "bukkit")
PLUGIN_TYPES = ("paper", "purpur")
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+() \[\]-]{0,150}\.jar$")
DISABLED = ".disabled"
PROJECT_REF = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
SHA512 = re.compile(r"^[0-9a-f]{128}$")
MAX_PLAN = 32
"""Most versions one install may bring in, its dependencies included."""


class ModsNotSupported(Conflict):
    slug = "mods-not-supported"
    title = "Server type takes no mods"


class ModNotFound(NotFound):
    slug = "mod-not-found"
    title = "Mod not found"


class ModIncompatible(Conflict):
    """A version that does not fit the server, or that conflicts with what is installed."""

    slug = "mod-incompatible"
    title = "Mod incompatible"


class ClientOnlyMod(InvalidInput):
    slug = "mod-client-only"
    title = "Client-only mod"


class ModHashMismatch(InvalidInput):
    """The download is not the file Modrinth lists: nothing was installed or cached."""

    slug = "mod-hash-mismatch"
    title = "Mod hash mismatch"


class ModDownloadFailed(Conflict):
    slug = "mod-download-failed"
    title = "Mod download failed"


class ModrinthUnavailable(DomainError):
    """Modrinth is down or rate-limits us; `retry_after` says when to try again."""

    status = 503
    slug = "modrinth-unavailable"
    title = "Modrinth unavailable"


@dataclass(frozen=True, slots=True, kw_only=True)
class ModTarget:
    """Where a server's mods or plugins live and which Modrinth loaders fit it."""

    kind: str
    directory: str
    loaders: tuple[str, ...]


def mod_target(server_type: str) -> ModTarget:
    """`mods/` for Fabric, Forge and NeoForge; `plugins/` for Paper and Purpur; nothing else."""
    if server_type in MOD_LOADERS:
        return ModTarget(kind="mod", directory="mods", loaders=(MOD_LOADERS[server_type],))
    if server_type in PLUGIN_TYPES:
        loaders = ("purpur", *PLUGIN_LOADERS) if server_type == "purpur" else PLUGIN_LOADERS
        return ModTarget(kind="plugin", directory="plugins", loaders=loaders)
    raise ModsNotSupported(
        f"a {server_type} server takes no mods or plugins; mods need fabric, forge or neoforge,"
        " plugins paper or purpur",
        server_type=server_type,
    )


def validate_file_name(name: str) -> str:
    if not FILE_NAME.fullmatch(name.removesuffix(DISABLED)):
        raise InvalidInput(
            "a mod file name is a .jar name of at most 155 letters, digits and ._+()[]- ",
            field="file_name",
        )
    return name


def side_of(client_side: str, server_side: str) -> str:
    """`client-only`, `server-only` or `both`, from Modrinth's required/optional/unsupported."""
    if server_side == "unsupported":
        return "client-only"
    if client_side == "unsupported":
        return "server-only"
    return "both"


@dataclass(frozen=True, slots=True, kw_only=True)
class ModFile:
    url: str
    file_name: str
    size: int
    sha512: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Dependency:
    kind: str
    project_id: str | None
    version_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModVersion:
    id: str
    project_id: str
    name: str
    version_number: str
    loaders: tuple[str, ...]
    game_versions: tuple[str, ...]
    file: ModFile
    dependencies: tuple[Dependency, ...] = ()

    def fits(self, target: ModTarget, game_version: str) -> str | None:
        """Why this version cannot run on the server, or None."""
        if not set(self.loaders) & set(target.loaders):
            return (
                f"{self.name} {self.version_number} is for {', '.join(self.loaders) or 'no'}"
                f" loader, not {'/'.join(target.loaders)}"
            )
        if game_version not in self.game_versions:
            return (
                f"{self.name} {self.version_number} supports Minecraft"
                f" {', '.join(self.game_versions[-5:]) or 'no version'}, not {game_version}"
            )
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModProject:
    id: str
    slug: str
    title: str
    client_side: str
    server_side: str

    @property
    def side(self) -> str:
        return side_of(self.client_side, self.server_side)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeJar:
    """A jar in the server's mods/ or plugins/ as its node sees it."""

    file_name: str
    enabled: bool
    size: int
    sha512: str


class ModCatalog(Protocol):
    """Modrinth, as the handlers need it."""

    async def search(
        self, query: str, target: ModTarget, game_version: str, *, limit: int, offset: int
    ) -> tuple[list[dict[str, object]], int]: ...
    async def project(self, ref: str) -> ModProject: ...
    async def version(self, version_id: str) -> ModVersion: ...
    async def newest_version(
        self, project_id: str, target: ModTarget, game_version: str
    ) -> ModVersion | None: ...
    async def identify(self, hashes: Sequence[str]) -> dict[str, ModVersion]: ...
    async def updates(
        self, hashes: Sequence[str], target: ModTarget, game_version: str
    ) -> dict[str, ModVersion]: ...


class ModFiles(Protocol):
    """The mods/ or plugins/ directory of a server, reached on its node."""

    async def list(self, node: str, server_id: uuid.UUID, directory: str) -> list[NodeJar]: ...
    async def install(
        self,
        node: str,
        server_id: uuid.UUID,
        directory: str,
        files: Sequence[ModFile],
        *,
        replace: Sequence[str] = (),
    ) -> None: ...
    async def change(
        self, node: str, server_id: uuid.UUID, directory: str, file_name: str, action: str
    ) -> str: ...


class SafetyBackups(Protocol):
    async def take(self, actor: object, server_id: uuid.UUID, reason: str) -> uuid.UUID:
        """A completed backup of the server, or Conflict saying why there is none."""
        ...

    async def restore(self, actor: object, server_id: uuid.UUID, backup_id: uuid.UUID) -> str:
        """The id of the restore job the backups context accepted."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ModInstalled(ServerEvent):
    project_id: str
    version_id: str
    file_name: str
    sha512: str
    actor_id: uuid.UUID | None
    dependency_of: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModUpdated(ServerEvent):
    """A mod's version changed (`change` "version"), or it was disabled or enabled."""

    change: str
    file_name: str
    actor_id: uuid.UUID | None
    project_id: str | None = None
    from_version_id: str | None = None
    to_version_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModRemoved(ServerEvent):
    file_name: str
    actor_id: uuid.UUID | None
    project_id: str | None = None


MOD_EVENTS: tuple[type[ServerEvent], ...] = (ModInstalled, ModUpdated, ModRemoved)
