"""Handlers of a server's mods and plugins: Modrinth says what a jar is and what it needs, the
server's node downloads, verifies and places the files; the API never touches its disk."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from app.servers.application.handlers import UowFactory
from app.servers.application.mod_queries import installed_jars, server_of, update_view, updates_of
from app.servers.application.mods import (
    ChangeMod,
    InstallMod,
    ModUpdate,
    PlannedVersion,
    UpdateMods,
    installed_by_project,
    resolve,
    root_version,
)
from app.servers.domain.events import ServerEvent
from app.servers.domain.mods import (
    DISABLED,
    ClientOnlyMod,
    ModCatalog,
    ModFiles,
    ModIncompatible,
    ModInstalled,
    ModNotFound,
    ModRemoved,
    ModrinthUnavailable,
    ModUpdated,
    NodeJar,
    SafetyBackups,
    mod_target,
    validate_file_name,
)
from app.shared.domain import Clock, Conflict, retried


def _installed(
    server_id: uuid.UUID, planned: PlannedVersion, *, actor_id: uuid.UUID, now: datetime
) -> ModInstalled:
    version = planned.version
    return ModInstalled(
        occurred_at=now,
        server_id=server_id,
        project_id=version.project_id,
        version_id=version.id,
        file_name=version.file.file_name,
        sha512=version.file.sha512,
        actor_id=actor_id,
        dependency_of=planned.dependency_of,
    )


async def _record(
    uow: UowFactory, server_id: uuid.UUID, events: Sequence[ServerEvent], changed: str
) -> None:
    """Store the events; a running server now needs a restart. Retried when the server races."""

    async def once() -> None:
        async with uow() as work:
            server = await work.servers.get(server_id)
            if server is not None and events:
                server.mark_restart_required(changed_file=changed, now=events[0].occurred_at)
            for event in events:
                work.record_event(event)
            await work.commit()

    await retried(once)


async def handle_install_mod(
    cmd: InstallMod,
    *,
    uow: UowFactory,
    clock: Clock,
    mod_catalog: ModCatalog,
    mod_files: ModFiles,
    safety_backups: SafetyBackups,
) -> list[PlannedVersion]:
    server = await server_of(uow, cmd.actor, cmd.server_id)
    target = mod_target(server.config.server_type.value)
    game = server.config.version
    project = await mod_catalog.project(cmd.project)
    if project.side == "client-only":
        raise ClientOnlyMod(
            f"{project.title} runs only on the client (server_side unsupported); it does nothing"
            " on a server",
            project_id=project.id,
        )
    if cmd.version_id is not None:
        root = await mod_catalog.version(cmd.version_id)
        if root.project_id != project.id:
            raise ModNotFound(f"version {cmd.version_id} is not a version of {project.title}")
    else:
        root = root_version(
            await mod_catalog.newest_version(project.id, target, game), project.slug
        )
    _, identified = await installed_jars(server, target, mod_files, mod_catalog)
    installed = installed_by_project(identified)
    if project.id in installed:
        have = installed[project.id]
        if have.id == root.id:
            raise Conflict(f"{project.title} {have.version_number} is already installed")
        raise ModIncompatible(
            f"{project.title} {have.version_number} is installed; two versions of one project"
            " cannot be: update it instead",
            project_id=project.id,
        )
    plan = await resolve(mod_catalog, root, target=target, game_version=game, installed=installed)
    if cmd.backup:
        await safety_backups.take(cmd.actor, server.id, f"before installing {project.slug}")
    await mod_files.install(
        server.node, server.id, target.directory, [p.version.file for p in plan]
    )
    now = clock.now()
    await _record(
        uow,
        server.id,
        [_installed(server.id, p, actor_id=cmd.actor.user_id, now=now) for p in plan],
        f"{target.directory}/{root.file.file_name}",
    )
    return plan


async def handle_update_mods(
    cmd: UpdateMods,
    *,
    uow: UowFactory,
    clock: Clock,
    mod_catalog: ModCatalog,
    mod_files: ModFiles,
    safety_backups: SafetyBackups,
) -> list[ModUpdate]:
    server = await server_of(uow, cmd.actor, cmd.server_id)
    target = mod_target(server.config.server_type.value)
    found, identified = await updates_of(server, target, mod_files, mod_catalog)
    if cmd.project_ids is not None:
        found = [f for f in found if f[1].project_id in cmd.project_ids]
    if not found:
        return []
    if cmd.backup:
        await safety_backups.take(cmd.actor, server.id, "before updating mods")
    done = []
    for jar, old, new in found:
        installed = installed_by_project(identified, but=old.project_id)
        plan = await resolve(
            mod_catalog, new, target=target, game_version=server.config.version, installed=installed
        )
        await mod_files.install(
            server.node,
            server.id,
            target.directory,
            [p.version.file for p in plan],
            replace=[jar.file_name + ("" if jar.enabled else DISABLED)],
        )
        if not jar.enabled:  # an update keeps a disabled mod disabled
            await mod_files.change(
                server.node, server.id, target.directory, new.file.file_name, "disable"
            )
        now = clock.now()
        events: list[ServerEvent] = [
            ModUpdated(
                occurred_at=now,
                server_id=server.id,
                change="version",
                file_name=new.file.file_name,
                actor_id=cmd.actor.user_id,
                project_id=old.project_id,
                from_version_id=old.id,
                to_version_id=new.id,
            ),
            *(_installed(server.id, p, actor_id=cmd.actor.user_id, now=now) for p in plan[1:]),
        ]
        await _record(uow, server.id, events, f"{target.directory}/{new.file.file_name}")
        identified = {**identified, new.file.sha512: new}
        done.append(update_view(jar, old, new))
    return done


async def _project_of(catalog: ModCatalog, jar: NodeJar) -> str | None:
    """Which project a jar is, for its event; disabling or removing does not wait for Modrinth."""
    try:
        found = await catalog.identify([jar.sha512])
    except ModrinthUnavailable:
        return None
    version = found.get(jar.sha512)
    return version.project_id if version else None


async def handle_change_mod(
    cmd: ChangeMod,
    *,
    uow: UowFactory,
    clock: Clock,
    mod_catalog: ModCatalog,
    mod_files: ModFiles,
    safety_backups: SafetyBackups,
) -> str:
    server = await server_of(uow, cmd.actor, cmd.server_id)
    target = mod_target(server.config.server_type.value)
    name = validate_file_name(cmd.file_name).removesuffix(DISABLED)
    jars = await mod_files.list(server.node, server.id, target.directory)
    jar = next((j for j in jars if j.file_name == name), None)
    if jar is None:
        raise ModNotFound(f"{target.directory}/ holds no {name}", file_name=name)
    project_id = await _project_of(mod_catalog, jar)
    if cmd.backup:
        await safety_backups.take(cmd.actor, server.id, f"before {cmd.action} {name}")
    result = await mod_files.change(server.node, server.id, target.directory, name, cmd.action)
    now = clock.now()
    event: ServerEvent
    if cmd.action == "remove":
        event = ModRemoved(
            occurred_at=now,
            server_id=server.id,
            file_name=name,
            actor_id=cmd.actor.user_id,
            project_id=project_id,
        )
    else:
        event = ModUpdated(
            occurred_at=now,
            server_id=server.id,
            change=f"{cmd.action}d",
            file_name=name,
            actor_id=cmd.actor.user_id,
            project_id=project_id,
        )
    await _record(uow, server.id, [event], f"{target.directory}/{name}")
    return result
