"""V1 groups with their players (deduplicated by UUID) and their server attachments with their
priorities; the attached servers' ops.json / whitelist.json are brought in line afterwards."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from app.groups.domain.model import (
    PRIORITY_RANGE,
    Group,
    GroupType,
    validate_player_name,
)
from app.groups.infrastructure.tables import groups as groups_table
from app.importer.run import Run, from_v1
from app.importer.source import v1_id
from app.shared.domain import DomainError


def _players(run: Run, row: dict[str, Any]) -> list[tuple[uuid.UUID, str]]:
    seen: dict[uuid.UUID, str] = {}
    for player in row["players"]:
        try:
            minecraft_uuid = uuid.UUID(str(player.get("uuid")))
            name = validate_player_name(str(player.get("username")))
        except (ValueError, DomainError):
            run.report.skip(
                "group players", f"{row['id']}:{player.get('username')}", "not a player"
            )
            continue
        if minecraft_uuid in seen:
            run.report.note(f"V1 group {row['id']}: player {name} listed twice, kept once")
            continue
        seen[minecraft_uuid] = name
    return list(seen.items())


def _attachments(run: Run, group_id: int) -> list[tuple[uuid.UUID, str, int]]:
    found = []
    for link in run.source.rows("server_groups"):
        if link["group_id"] != group_id:
            continue
        server = run.servers.get(link["server_id"])
        if server is None:
            run.report.skip(
                "server_groups",
                f"{link['server_id']}:{group_id}",
                f"orphan foreign key server_id={link['server_id']} (server not imported)",
            )
            continue
        low, high = PRIORITY_RANGE
        priority = int(link.get("priority") or 0)
        if not low <= priority <= high:
            run.report.note(f"V1 group {group_id}: priority {priority} became within {low}-{high}")
            priority = min(max(priority, low), high)
        found.append((server.id, server.node, priority))
    return found


async def import_groups(run: Run) -> None:
    rows = sorted(run.source.rows("groups"), key=lambda row: row["id"])
    ids = {row["id"]: v1_id("groups", row["id"]) for row in rows}
    present = await run.existing(groups_table, list(ids.values()))
    to_sync: dict[uuid.UUID, str] = {}
    for row in rows:
        if ids[row["id"]] in present:
            run.report.imported("groups", existed=True)
            run.report.present["server_groups"] += len(_attachments(run, row["id"]))
            continue
        owner = run.users.get(row["owner_id"])
        if owner is None:
            run.report.skip("groups", row["id"], f"orphan foreign key owner_id={row['owner_id']}")
            continue
        try:
            group_type = GroupType(str(row["type"]).lower())
        except ValueError:
            run.report.skip("groups", row["id"], f"unknown V1 group type {row['type']!r}")
            continue
        now = run.source.when(row.get("created_at")) or datetime.now(UTC)
        players = _players(run, row)
        attachments = _attachments(run, row["id"])
        with from_v1("groups", row["id"]):
            async with run.deps("groups")["uow"]() as work:
                group = Group.create(
                    group_id=ids[row["id"]],
                    name=str(row["name"]),
                    description=(str(row["description"])[:500] if row.get("description") else None),
                    group_type=group_type,
                    op_level=None,
                    owner_id=owner,
                    now=now,
                )
                for minecraft_uuid, name in players:
                    group.add_player(await work.players.save_profile(minecraft_uuid, name), now=now)
                for server_id, node, priority in attachments:
                    group.attach(server_id, priority=priority, now=now)
                    to_sync[server_id] = node
                work.groups.add(group)
                if not run.dry_run:
                    await work.commit()
        run.report.imported("groups")
        run.report.new["group players"] += len(players)
        run.report.new["server_groups"] += len(attachments)
    if not run.dry_run:
        sync = run.deps("groups")["access_sync"]
        for server_id, node in to_sync.items():
            await sync.request(server_id, node)
