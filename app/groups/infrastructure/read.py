"""Read side of the groups context: the group list view, group details, server access plans."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from app.groups.application.messages import (
    AccessPlan,
    AttachedGroup,
    AttachmentView,
    GroupDetail,
    GroupListFilter,
    GroupSummary,
    PlayerView,
    SyncOutcome,
)
from app.groups.domain.access import Grant, effective_lists
from app.groups.domain.model import GroupType
from app.groups.infrastructure.tables import (
    group_players,
    group_summary,
    groups,
    players,
    server_access,
    server_groups,
)
from app.shared.db import contains_pattern
from app.shared.domain import Page

_SUMMARY_FIELDS = tuple(GroupSummary.__dataclass_fields__)
_NODES = sa.text("SELECT id, node FROM servers WHERE id = ANY(:ids)")
_ATTACHED_NODES = sa.text(
    "SELECT id, node FROM servers s WHERE id = ANY(:ids)"
    " AND EXISTS (SELECT 1 FROM server_groups sg WHERE sg.server_id = s.id)"
)


class SqlGroupsReadModel:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def page(self, filter: GroupListFilter) -> Page[GroupSummary]:
        view = group_summary
        conditions: list[sa.ColumnElement[bool]] = []
        if filter.owner_id is not None:
            conditions.append(view.c.owner_id == filter.owner_id)
        if filter.group_type is not None:
            conditions.append(view.c.group_type == filter.group_type)
        if filter.search:
            conditions.append(view.c.name.ilike(contains_pattern(filter.search)))
        statement = (
            sa.select(*view.c, sa.func.count().over().label("total"))
            .where(*conditions)
            .order_by(view.c.created_at.desc(), view.c.id)
            .limit(filter.limit)
            .offset((filter.page - 1) * filter.limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement)).mappings().all()
            if rows:
                total = int(rows[0]["total"])
            else:
                total = int(
                    await conn.scalar(
                        sa.select(sa.func.count()).select_from(view).where(*conditions)
                    )
                    or 0
                )
        items = [GroupSummary(**{key: row[key] for key in _SUMMARY_FIELDS}) for row in rows]
        return Page(items=items, total=total, page=filter.page, limit=filter.limit)

    async def detail(self, group_id: uuid.UUID) -> GroupDetail | None:
        async with self._engine.connect() as conn:
            row = (
                (await conn.execute(sa.select(groups).where(groups.c.id == group_id)))
                .mappings()
                .first()
            )
            if row is None:
                return None
            members = await conn.execute(
                sa.select(
                    players.c.id,
                    players.c.minecraft_uuid,
                    players.c.username,
                    group_players.c.added_at,
                )
                .join(group_players, group_players.c.player_id == players.c.id)
                .where(group_players.c.group_id == group_id)
                .order_by(sa.func.lower(players.c.username))
            )
            attached = await conn.execute(
                sa.select(server_groups)
                .where(server_groups.c.group_id == group_id)
                .order_by(server_groups.c.attached_at)
            )
            return GroupDetail(
                id=row["id"],
                name=row["name"],
                description=row["description"],
                group_type=row["group_type"],
                op_level=row["op_level"],
                owner_id=row["owner_id"],
                created_at=row["created_at"],
                version=row["version"],
                players=tuple(
                    PlayerView(id=m.id, uuid=m.minecraft_uuid, name=m.username, added_at=m.added_at)
                    for m in members
                ),
                servers=tuple(
                    AttachmentView(
                        server_id=a.server_id, priority=a.priority, attached_at=a.attached_at
                    )
                    for a in attached
                ),
            )

    async def nodes_of(
        self, server_ids: Iterable[uuid.UUID], *, attached_only: bool = False
    ) -> dict[uuid.UUID, str]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                _ATTACHED_NODES if attached_only else _NODES, {"ids": list(server_ids)}
            )
            return {row.id: row.node for row in rows}


class SqlAccessStore:
    """`server_access`: the authoritative switch, what the dashboard applied, the last sync."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def plan(self, server_id: uuid.UUID) -> AccessPlan:
        statement = (
            sa.select(
                groups.c.id,
                groups.c.name,
                groups.c.group_type,
                groups.c.op_level,
                server_groups.c.priority,
                players.c.minecraft_uuid,
                players.c.username,
            )
            .join(groups, groups.c.id == server_groups.c.group_id)
            .outerjoin(group_players, group_players.c.group_id == groups.c.id)
            .outerjoin(players, players.c.id == group_players.c.player_id)
            .where(server_groups.c.server_id == server_id)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
            state = (
                (
                    await conn.execute(
                        sa.select(server_access).where(server_access.c.server_id == server_id)
                    )
                )
                .mappings()
                .first()
            )
        attached: dict[uuid.UUID, AttachedGroup] = {}
        members: dict[uuid.UUID, list[tuple[uuid.UUID, str]]] = {}
        for row in rows:
            attached[row.id] = AttachedGroup(
                group_id=row.id,
                name=row.name,
                group_type=row.group_type,
                op_level=row.op_level,
                priority=row.priority,
            )
            bucket = members.setdefault(row.id, [])
            if row.minecraft_uuid is not None:
                bucket.append((row.minecraft_uuid, row.username))
        grants = [
            Grant(
                group_id=g.group_id,
                group_type=GroupType(g.group_type),
                op_level=g.op_level,
                priority=g.priority,
                players=tuple(members[g.group_id]),
            )
            for g in attached.values()
        ]
        ordered = sorted(attached.values(), key=lambda g: (-g.priority, g.name.lower()))
        return AccessPlan(
            server_id=server_id,
            authoritative=bool(state and state["authoritative"]),
            lists=effective_lists(grants),
            applied_ops=tuple(state["applied_ops"]) if state else (),
            applied_whitelist=tuple(state["applied_whitelist"]) if state else (),
            groups=tuple(ordered),
        )

    async def last_sync(self, server_id: uuid.UUID) -> SyncOutcome | None:
        async with self._engine.connect() as conn:
            data = await conn.scalar(
                sa.select(server_access.c.last_sync).where(server_access.c.server_id == server_id)
            )
        return _outcome(data) if data else None

    async def set_authoritative(self, server_id: uuid.UUID, authoritative: bool) -> bool:
        """Returns whether the mode changed."""
        statement = insert(server_access).values(server_id=server_id, authoritative=authoritative)
        statement = statement.on_conflict_do_update(
            index_elements=[server_access.c.server_id],
            set_={"authoritative": authoritative, "updated_at": sa.func.now()},
            where=server_access.c.authoritative.is_distinct_from(authoritative),
        )
        async with self._engine.begin() as conn:
            return bool((await conn.execute(statement)).rowcount)

    async def record(self, server_id: uuid.UUID, outcome: SyncOutcome) -> None:
        values: dict[str, Any] = {"last_sync": _outcome_json(outcome), "updated_at": outcome.at}
        if not outcome.check_only:
            values |= {
                "applied_ops": list(outcome.applied_ops),
                "applied_whitelist": list(outcome.applied_whitelist),
            }
        statement = insert(server_access).values(server_id=server_id, **values)
        statement = statement.on_conflict_do_update(
            index_elements=[server_access.c.server_id], set_=values
        )
        exists = sa.text("SELECT 1 FROM servers WHERE id = :id FOR KEY SHARE")
        async with self._engine.begin() as conn:
            if (await conn.execute(exists, {"id": server_id})).first() is not None:
                await conn.execute(statement)


def _outcome_json(outcome: SyncOutcome) -> dict[str, Any]:
    return {
        "at": outcome.at.isoformat(),
        "check_only": outcome.check_only,
        "applied_ops": list(outcome.applied_ops),
        "applied_whitelist": list(outcome.applied_whitelist),
        "commands": list(outcome.commands),
        "failures": list(outcome.failures),
        "drift_ops": list(outcome.drift_ops),
        "drift_whitelist": list(outcome.drift_whitelist),
    }


def _outcome(data: dict[str, Any]) -> SyncOutcome:
    return SyncOutcome(
        at=datetime.fromisoformat(data["at"]),
        check_only=bool(data["check_only"]),
        applied_ops=tuple(data["applied_ops"]),
        applied_whitelist=tuple(data["applied_whitelist"]),
        commands=tuple(data["commands"]),
        failures=tuple(data["failures"]),
        drift_ops=tuple(data["drift_ops"]),
        drift_whitelist=tuple(data["drift_whitelist"]),
    )
