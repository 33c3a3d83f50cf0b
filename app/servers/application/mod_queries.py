"""Queries of a server's mods and plugins: Modrinth search for its loader and version, and the
jars on its node identified by hash, with the updates Modrinth knows for them."""

from __future__ import annotations

import uuid

from app.servers.application.handlers import UowFactory, visible
from app.servers.application.mods import (
    CheckModUpdates,
    InstalledMod,
    ListMods,
    ModUpdate,
    SearchHit,
    SearchMods,
    SearchPage,
)
from app.servers.domain.model import Server
from app.servers.domain.mods import (
    ModCatalog,
    ModFiles,
    ModTarget,
    ModVersion,
    NodeJar,
    mod_target,
    side_of,
)
from app.shared.security import Principal


async def server_of(uow: UowFactory, actor: Principal, server_id: uuid.UUID) -> Server:
    async with uow() as work:
        return visible(await work.servers.get(server_id), actor, server_id)


async def installed_jars(
    server: Server, target: ModTarget, files: ModFiles, catalog: ModCatalog
) -> tuple[list[NodeJar], dict[str, ModVersion]]:
    jars = await files.list(server.node, server.id, target.directory)
    identified = await catalog.identify([jar.sha512 for jar in jars]) if jars else {}
    return jars, identified


async def handle_search_mods(
    query: SearchMods, *, uow: UowFactory, mod_catalog: ModCatalog
) -> SearchPage:
    server = await server_of(uow, query.actor, query.server_id)
    target = mod_target(server.config.server_type.value)
    hits, total = await mod_catalog.search(
        query.query, target, server.config.version, limit=query.limit, offset=query.offset
    )
    items = []
    for hit in hits:
        side = side_of(str(hit.get("client_side", "")), str(hit.get("server_side", "")))
        items.append(
            SearchHit(
                project_id=str(hit.get("project_id", "")),
                slug=str(hit.get("slug", "")),
                title=str(hit.get("title", "")),
                description=str(hit.get("description", "")),
                downloads=int(str(hit.get("downloads", 0))),
                side=side,
                installable=side != "client-only",
            )
        )
    return SearchPage(items=items, total=total, limit=query.limit, offset=query.offset)


async def handle_list_mods(
    query: ListMods, *, uow: UowFactory, mod_catalog: ModCatalog, mod_files: ModFiles
) -> list[InstalledMod]:
    server = await server_of(uow, query.actor, query.server_id)
    target = mod_target(server.config.server_type.value)
    jars, identified = await installed_jars(server, target, mod_files, mod_catalog)
    listed = []
    for jar in jars:
        version = identified.get(jar.sha512)
        listed.append(
            InstalledMod(
                file_name=jar.file_name,
                enabled=jar.enabled,
                size=jar.size,
                sha512=jar.sha512,
                project_id=version.project_id if version else None,
                version_id=version.id if version else None,
                name=version.name if version else None,
                version_number=version.version_number if version else None,
            )
        )
    return listed


async def updates_of(
    server: Server, target: ModTarget, files: ModFiles, catalog: ModCatalog
) -> tuple[list[tuple[NodeJar, ModVersion, ModVersion]], dict[str, ModVersion]]:
    jars, identified = await installed_jars(server, target, files, catalog)
    known = [jar for jar in jars if jar.sha512 in identified]
    newer = (
        await catalog.updates([j.sha512 for j in known], target, server.config.version)
        if known
        else {}
    )
    found = [
        (jar, identified[jar.sha512], newer[jar.sha512])
        for jar in known
        if jar.sha512 in newer and newer[jar.sha512].id != identified[jar.sha512].id
    ]
    return found, identified


def update_view(jar: NodeJar, old: ModVersion, new: ModVersion) -> ModUpdate:
    return ModUpdate(
        file_name=jar.file_name,
        project_id=old.project_id,
        from_version_id=old.id,
        from_version_number=old.version_number,
        to_version_id=new.id,
        to_version_number=new.version_number,
    )


async def handle_check_mod_updates(
    query: CheckModUpdates, *, uow: UowFactory, mod_catalog: ModCatalog, mod_files: ModFiles
) -> list[ModUpdate]:
    server = await server_of(uow, query.actor, query.server_id)
    target = mod_target(server.config.server_type.value)
    found, _ = await updates_of(server, target, mod_files, mod_catalog)
    return [update_view(jar, old, new) for jar, old, new in found]
