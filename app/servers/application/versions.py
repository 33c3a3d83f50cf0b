"""Version changes of a stopped server: checked like a create, after a safety backup, and
rolled back in one call (the old configuration, and the backup restored)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Protocol

from app.servers.application.handlers import ReleaseCheck, UowFactory, visible
from app.servers.domain.model import LOADER_TYPES, ServerConfig, ServerType
from app.servers.domain.mods import SafetyBackups
from app.servers.domain.ports import NodeGateway
from app.servers.domain.versions import (
    ServerVersionChanged,
    VersionDowngrade,
    change_version,
    downgrade_reasons,
    ensure_stopped,
    roll_back,
    target_config,
)
from app.shared.bus import Command
from app.shared.domain import Clock, Conflict, InvalidInput
from app.shared.security import Principal


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeServerVersion(Command["VersionChange"]):
    actor: Principal
    server_id: uuid.UUID
    server_type: ServerType | None = None
    version: str | None = None
    loader_version: str | None = None
    allow_downgrade: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RollBackServerVersion(Command["VersionRollback"]):
    actor: Principal
    server_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionChange:
    backup_id: uuid.UUID
    previous: ServerConfig
    current: ServerConfig
    downgrade_reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionRollback:
    backup_id: uuid.UUID
    restore_job_id: str
    restored: ServerConfig


class VersionHistory(Protocol):
    async def last_change(self, server_id: uuid.UUID) -> ServerVersionChanged | None:
        """The server's last version change, unless it was rolled back since."""
        ...


async def handle_change_server_version(
    cmd: ChangeServerVersion,
    *,
    uow: UowFactory,
    clock: Clock,
    releases: ReleaseCheck,
    nodes: NodeGateway,
    safety_backups: SafetyBackups,
) -> VersionChange:
    async with uow() as work:
        server = visible(await work.servers.get(cmd.server_id), cmd.actor, cmd.server_id)
    ensure_stopped(server, "change its version")
    before = server.config
    target = target_config(
        before,
        server_type=cmd.server_type,
        version=cmd.version,
        loader_version=cmd.loader_version,
    )
    if target.server_type in LOADER_TYPES:
        keep = cmd.loader_version or (
            before.loader_version
            if (target.server_type, target.version) == (before.server_type, before.version)
            else None
        )
        loader = await releases.check_loader(target.server_type, target.version, keep)
        target = replace(target, loader_version=loader)
    if (target.server_type, target.version, target.loader_version) == (
        before.server_type,
        before.version,
        before.loader_version,
    ):
        raise InvalidInput(
            f"the server already runs {_describe(before)}; name another type or version",
            field="version",
        )
    reasons = downgrade_reasons(before, target)
    if reasons and not cmd.allow_downgrade:
        raise VersionDowngrade(
            f"{_describe(before)} -> {_describe(target)} can damage the world: "
            + "; ".join(reasons)
            + '. Send {"allow_downgrade": true} to change it anyway (a backup is taken first)',
            reasons=reasons,
        )
    await releases.check_version(target.server_type, target.version)
    backup_id = await safety_backups.take(
        cmd.actor, server.id, f"before {_describe(before)} -> {_describe(target)}"
    )
    async with uow() as work:
        server = visible(await work.servers.get(cmd.server_id), cmd.actor, cmd.server_id)
        if server.config != before:
            raise Conflict(
                "the server's configuration changed while its safety backup was taken; nothing"
                " was changed, try again",
                backup_id=str(backup_id),
            )
        change_version(
            server,
            target,
            backup_id=backup_id,
            actor_id=cmd.actor.user_id,
            downgrade=bool(reasons),
            now=clock.now(),
        )
        await work.commit()
    await nodes.enqueue(server.node, "sync_files", server.id)
    return VersionChange(
        backup_id=backup_id, previous=before, current=target, downgrade_reasons=tuple(reasons)
    )


async def handle_roll_back_server_version(
    cmd: RollBackServerVersion,
    *,
    uow: UowFactory,
    clock: Clock,
    nodes: NodeGateway,
    safety_backups: SafetyBackups,
    version_history: VersionHistory,
) -> VersionRollback:
    async with uow() as work:
        server = visible(await work.servers.get(cmd.server_id), cmd.actor, cmd.server_id)
    ensure_stopped(server, "roll back its version change")
    change = await version_history.last_change(server.id)
    if change is None:
        raise Conflict(
            f"server {server.name} has no version change to roll back", reason="no-version-change"
        )
    # The restore is accepted (and the server locked for it) before the configuration goes
    # back, so a refused restore changes nothing.
    job_id = await safety_backups.restore(cmd.actor, server.id, change.backup_id)
    async with uow() as work:
        server = visible(await work.servers.get(cmd.server_id), cmd.actor, cmd.server_id)
        roll_back(server, change, actor_id=cmd.actor.user_id, now=clock.now())
        await work.commit()
    await nodes.enqueue(server.node, "sync_files", server.id)
    return VersionRollback(
        backup_id=change.backup_id, restore_job_id=job_id, restored=server.config
    )


def _describe(config: ServerConfig) -> str:
    loader = f" (loader {config.loader_version})" if config.loader_version else ""
    return f"{config.server_type.value} {config.version}{loader}"
