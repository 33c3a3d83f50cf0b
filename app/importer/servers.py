"""V1 servers: their settings, placed on a node (the V1 port kept where it is free), and their
directory copied onto that node with server.properties byte for byte. Everything starts
stopped. The managed keys of server.properties are read from the file itself, so the rewrite
before a start changes no byte of it unless the port had to change."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.importer.run import ImportedServer, Run, file_chunks, from_v1, resolve
from app.importer.source import v1_id
from app.importer.trees import copy_tree
from app.servers.application.placement import place
from app.servers.domain.model import (
    MEMORY_RANGE,
    Server,
    ServerConfig,
    ServerType,
    validate_name,
)
from app.servers.domain.properties import parse_properties
from app.servers.infrastructure.tables import servers as servers_table
from app.shared.domain import DomainError, InvalidInput

TYPES = {"vanilla": ServerType.VANILLA, "paper": ServerType.PAPER, "forge": ServerType.FORGE}
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_-]+")


def directory(run: Run, row: dict[str, Any]) -> Path | None:
    """Where V1 left the server's files: its recorded path, `servers/<name>`, or the archive."""
    root = run.source.root
    found = resolve(root, row.get("directory_path"))
    if found is not None and found.is_dir():
        return found
    if row.get("is_deleted"):
        archived = sorted((root / "servers" / ".archived").glob(f"{row['id']}_*"))
        return archived[-1] if archived else None
    by_name = root / "servers" / str(row["name"])
    return by_name if by_name.is_dir() else None


def _name(raw: str, row_id: object) -> str:
    """V1 allowed any name up to 100 characters; mcdash wants 3-50 of [A-Za-z0-9_-]."""
    cleaned = _NOT_IN_NAME.sub("-", raw).strip("-")[:50]
    return cleaned if len(cleaned) >= 3 else f"v1-server-{row_id}"


def _properties(path: Path | None) -> dict[str, str]:
    if path is None or not (path / "server.properties").is_file():
        return {}
    return parse_properties((path / "server.properties").read_text("utf-8", "replace"))


def _config(run: Run, row: dict[str, Any], props: dict[str, str]) -> ServerConfig:
    v1_type = str(row["server_type"]).lower()
    if v1_type not in TYPES:
        raise InvalidInput(f"unknown V1 server type {row['server_type']!r}")
    server_type = ServerType.CUSTOM if run.options.keep_jars else TYPES[v1_type]
    memory = int(row["max_memory"] or 1024)
    if not MEMORY_RANGE[0] <= memory <= MEMORY_RANGE[1]:
        clamped = min(max(memory, MEMORY_RANGE[0]), MEMORY_RANGE[1])
        run.report.note(f"V1 server {row['id']}: max_memory {memory} MB became {clamped} MB")
        memory = clamped
    return ServerConfig(
        server_type=server_type,
        version=str(row["minecraft_version"]),
        memory_mb=memory,
        max_players=int(props.get("max-players") or row["max_players"] or 20),
        motd=props.get("motd", "A Minecraft Server"),
        online_mode=props.get("online-mode", "true") != "false",
        whitelist=props.get("white-list", "false") == "true",
    )


async def import_servers(run: Run) -> None:
    rows = sorted(run.source.rows("servers"), key=lambda row: row["id"])
    ids = {row["id"]: v1_id("servers", row["id"]) for row in rows}
    present = await run.existing(servers_table, list(ids.values()))
    for row in rows:
        if row.get("is_deleted") and not run.options.include_deleted:
            run.report.skip("servers", row["id"], "deleted in V1 (--include-deleted imports it)")
            continue
        owner = run.users.get(row["owner_id"])
        if owner is None:
            run.report.skip("servers", row["id"], f"orphan foreign key owner_id={row['owner_id']}")
            continue
        path = await asyncio.to_thread(directory, run, row)
        try:
            server = await _server(run, row, path, ids[row["id"]], owner, ids[row["id"]] in present)
        except (DomainError, ValueError) as exc:
            detail = exc.detail if isinstance(exc, DomainError) else str(exc)
            run.report.skip("servers", row["id"], detail)
            continue
        run.servers[row["id"]] = ImportedServer(server.id, server.node)
        run.report.imported("servers", existed=ids[row["id"]] in present)
        if not run.dry_run and path is not None:
            await _files(run, row, path, server)


async def _server(
    run: Run,
    row: dict[str, Any],
    path: Path | None,
    server_id: uuid.UUID,
    owner: uuid.UUID,
    existed: bool,
) -> Server:
    uow = run.deps("servers")["uow"]
    props = await asyncio.to_thread(_properties, path)
    if existed:
        _report_configurations(run, row, props, existed=True)
        async with uow() as work:
            found: Server = await work.servers.get(server_id)
            return found
    config = _config(run, row, props)
    name = _name(str(row["name"]), row["id"])
    if name != row["name"]:
        run.report.note(f"V1 server {row['id']} {row['name']!r} is named {name!r}")
    if row.get("is_deleted"):
        run.report.note(f"V1 server {row['id']} was deleted in V1; imported stopped")
    if path is None:
        run.report.note(
            f"V1 server {row['id']} {row['name']!r}: its directory is missing; imported "
            "without files (restore one of its backups)"
        )
    settings = run.container.settings
    nodes = await run.deps("servers")["nodes"].nodes()
    policy = run.deps("servers")["policy"]
    with from_v1("servers", row["id"]):
        async with uow() as work:
            if await work.servers.name_taken(owner, name):
                taken, name = name, f"{name[:40]}-v1-{row['id']}"[:50]
                run.report.note(
                    f"V1 server {row['id']}: its owner already has a server named {taken!r}; "
                    f"imported as {name!r}"
                )
            placed = await place(
                work.servers,
                nodes,
                policy.placement,
                memory_mb=config.memory_mb,
                node=run.options.node or (settings.node_name if not nodes else None),
                port=None,
                check_port_range=False,
                prefer_port=int(row["port"]),
            )
            if placed.port != int(row["port"]):
                run.report.note(
                    f"V1 server {row['id']}: port {row['port']} clashes with an existing "
                    f"mcdash server on node {placed.node} (or is outside its range); given "
                    f"port {placed.port}"
                )
            eula = path is not None and "eula=true" in await asyncio.to_thread(
                _read, path / "eula.txt"
            )
            server = Server.create(
                server_id=server_id,
                name=validate_name(name),
                description=str(row["description"])[:500] if row.get("description") else None,
                owner_id=owner,
                node=placed.node,
                port=placed.port,
                config=config,
                eula_accepted=eula,
                now=run.source.when(row.get("created_at")) or datetime.now(UTC),
            )
            work.servers.add(server)
            if not run.dry_run:
                await work.commit()
    _report_configurations(run, row, props, existed=False)
    return server


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8", "replace")
    except OSError:
        return ""


def _report_configurations(
    run: Run, row: dict[str, Any], props: dict[str, str], *, existed: bool
) -> None:
    """V1's server_configurations rows: server.properties wins; a differing value is said."""
    for item in run.source.rows("server_configurations"):
        if item["server_id"] != row["id"]:
            continue
        key, value = str(item["configuration_key"]), str(item["configuration_value"])
        if props.get(key) != value:
            run.report.skip(
                "server_configurations",
                f"{row['id']}:{key}",
                f"{key}={value!r} differs from server.properties, which is kept as it is",
            )
        else:
            run.report.imported("server_configurations", existed=existed)


async def _files(run: Run, row: dict[str, Any], path: Path, server: Server) -> None:
    """The directory onto the node, and with --keep-jars V1's server.jar as its custom jar."""
    if await copy_tree(run, server.node, server.id, path, str(row["name"])):
        run.report.imported("server directories")
    else:
        run.report.imported("server directories", existed=True)
    jar = path / "server.jar"
    if not run.options.keep_jars or server.config.jar_sha256 or not jar.is_file():
        return
    with run.copies.copy(f"jar {row['name']}", jar.stat().st_size) as bar:
        sha256, _ = await run.deps("servers")["jars"].store_upload(
            server.node, server.id, file_chunks(jar, bar)
        )
    with from_v1("servers", row["id"]):
        async with run.deps("servers")["uow"]() as work:
            fresh = await work.servers.get(server.id)
            fresh.update(now=datetime.now(UTC), config=replace(fresh.config, jar_sha256=sha256))
            await work.commit()
