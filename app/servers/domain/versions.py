"""Changing a stopped server's Minecraft version or type, and rolling the change back.

A change is taken after a safety backup, whose id its event keeps with what the server ran
before, so one call can put both the world and the configuration back. Going down a version,
or leaving a mod loader, can destroy parts of a world, so it needs the owner's explicit word.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from app.servers.domain.errors import InvalidTransition
from app.servers.domain.events import ServerEvent
from app.servers.domain.model import LOADER_TYPES, Server, ServerConfig, ServerType
from app.shared.domain import Conflict, InvalidInput


class VersionDowngrade(Conflict):
    slug = "version-downgrade"
    title = "Version downgrade"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerVersionChanged(ServerEvent):
    """The server runs `to_*` from its next start; `backup_id` holds the world from before."""

    from_type: str
    from_version: str
    from_loader_version: str | None
    to_type: str
    to_version: str
    to_loader_version: str | None
    backup_id: uuid.UUID
    actor_id: uuid.UUID | None
    downgrade: bool = False
    from_jar_sha256: str | None = None  # a custom server's uploaded jar, kept for a rollback


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerVersionRolledBack(ServerEvent):
    """The change `backup_id` was taken for was undone: old configuration, backup restored."""

    backup_id: uuid.UUID
    to_type: str
    to_version: str
    to_loader_version: str | None
    actor_id: uuid.UUID | None


VERSION_EVENTS: tuple[type[ServerEvent], ...] = (ServerVersionChanged, ServerVersionRolledBack)


def release_key(version: str) -> tuple[int, ...]:
    """1.20.4 -> (1, 20, 4); 1.21 is 1.21.0. Server versions are always numeric releases."""
    parts = tuple(int(part) for part in version.split("."))
    return parts + (0,) * (3 - len(parts))


def target_config(
    current: ServerConfig,
    *,
    server_type: ServerType | None,
    version: str | None,
    loader_version: str | None,
) -> ServerConfig:
    """What the server runs after the change (the loader build is chosen by the caller)."""
    kind = server_type or current.server_type
    if kind is ServerType.CUSTOM:
        raise InvalidInput(
            "a custom server runs an uploaded jar: create it as custom and upload the jar"
            " (PUT /api/v2/servers/{id}/jar) instead",
            field="server_type",
        )
    if loader_version is not None and kind not in LOADER_TYPES:
        raise InvalidInput(f"a {kind.value} server has no loader version", field="loader_version")
    return replace(
        current,
        server_type=kind,
        version=version or current.version,
        loader_version=None,
        jar_sha256=None,
    )


def downgrade_reasons(current: ServerConfig, target: ServerConfig) -> list[str]:
    """Why the change can damage the world; empty when it cannot (that we know of)."""
    reasons = []
    if release_key(target.version) < release_key(current.version):
        reasons.append(
            f"{target.version} is older than {current.version}: Minecraft upgrades chunks and"
            " player data when it loads them and cannot read them back, so an older version"
            " may fail to load the world or reset what it does not understand"
        )
    if current.server_type in LOADER_TYPES and target.server_type is not current.server_type:
        reasons.append(
            f"leaving {current.server_type.value} drops every block, item and entity its mods"
            " added from the world the first time it loads"
        )
    return reasons


def change_version(
    server: Server,
    target: ServerConfig,
    *,
    backup_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    downgrade: bool,
    now: datetime,
) -> None:
    """Record the change on a stopped server, after its safety backup completed."""
    ensure_stopped(server, "change its version")
    before = server.config
    server.update(now=now, config=target)
    server.record(
        ServerVersionChanged(
            occurred_at=now,
            server_id=server.id,
            from_type=before.server_type.value,
            from_version=before.version,
            from_loader_version=before.loader_version,
            to_type=target.server_type.value,
            to_version=target.version,
            to_loader_version=target.loader_version,
            backup_id=backup_id,
            actor_id=actor_id,
            downgrade=downgrade,
            from_jar_sha256=before.jar_sha256,
        )
    )


def roll_back(
    server: Server, change: ServerVersionChanged, *, actor_id: uuid.UUID | None, now: datetime
) -> None:
    """Put back the configuration from before `change`; its backup is restored beside this."""
    ensure_stopped(server, "roll back its version change")
    restored = replace(
        server.config,
        server_type=ServerType(change.from_type),
        version=change.from_version,
        loader_version=change.from_loader_version,
        jar_sha256=change.from_jar_sha256,
    )
    server.update(now=now, config=restored)
    server.record(
        ServerVersionRolledBack(
            occurred_at=now,
            server_id=server.id,
            backup_id=change.backup_id,
            to_type=change.from_type,
            to_version=change.from_version,
            to_loader_version=change.from_loader_version,
            actor_id=actor_id,
        )
    )


def ensure_stopped(server: Server, what: str) -> None:
    if server.is_active:
        raise InvalidTransition(
            f"server {server.name} is {server.state.value}; stop it to {what}",
            state=server.state.value,
        )
