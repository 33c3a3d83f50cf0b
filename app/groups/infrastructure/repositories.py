"""SQL repositories and unit of work of the groups context."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.groups.domain.model import Group, GroupType, Member
from app.groups.infrastructure.tables import group_players, groups, players, server_groups
from app.shared.domain import DomainEvent, new_id
from app.shared.uow import SqlRepository, SqlUnitOfWork


class SqlGroupRepository(SqlRepository[Group]):
    """Writes the group row with its version check, then the membership and attachment rows."""

    table = groups

    def __init__(self, conn: AsyncConnection) -> None:
        super().__init__(conn)
        self._loaded: dict[uuid.UUID, tuple[set[uuid.UUID], set[uuid.UUID]]] = {}
        self._removed_events: list[DomainEvent] = []

    def to_row(self, aggregate: Group) -> dict[str, Any]:
        return {
            "id": aggregate.id,
            "name": aggregate.name,
            "description": aggregate.description,
            "group_type": aggregate.group_type.value,
            "op_level": aggregate.op_level,
            "owner_id": aggregate.owner_id,
            "created_at": aggregate.created_at,
        }

    async def get(self, group_id: uuid.UUID) -> Group | None:
        if group_id in self.seen:
            return self.seen[group_id]
        row = (
            (await self.conn.execute(sa.select(groups).where(groups.c.id == group_id)))
            .mappings()
            .first()
        )
        if row is None:
            return None
        member_rows = await self.conn.execute(
            sa.select(players.c.id, players.c.minecraft_uuid, players.c.username)
            .join(group_players, group_players.c.player_id == players.c.id)
            .where(group_players.c.group_id == group_id)
        )
        members = {
            r.id: Member(player_id=r.id, minecraft_uuid=r.minecraft_uuid, name=r.username)
            for r in member_rows
        }
        attached = await self.conn.execute(
            sa.select(server_groups.c.server_id, server_groups.c.priority).where(
                server_groups.c.group_id == group_id
            )
        )
        group = Group(
            id=row["id"],
            version=row["version"],
            name=row["name"],
            description=row["description"],
            group_type=GroupType(row["group_type"]),
            op_level=row["op_level"],
            owner_id=row["owner_id"],
            created_at=row["created_at"],
            members=members,
            servers={r.server_id: r.priority for r in attached},
        )
        self._loaded[group_id] = (set(group.members), set(group.servers))
        return self.track(group)

    async def name_taken(self, owner_id: uuid.UUID, name: str) -> bool:
        found = await self.conn.scalar(
            sa.select(
                sa.exists().where(
                    groups.c.owner_id == owner_id, sa.func.lower(groups.c.name) == name.lower()
                )
            )
        )
        return bool(found)

    async def remove(self, group: Group) -> None:
        """Delete the row now (memberships and attachments cascade); its events still commit."""
        self.seen.pop(group.id, None)
        self._removed_events.extend(group.collect_events())
        await self.conn.execute(groups.delete().where(groups.c.id == group.id))

    async def flush(self) -> list[DomainEvent]:
        changed = [group for group in self.seen.values() if group.changed]
        events = await super().flush()
        for group in changed:
            await self._write_children(group)
        removed, self._removed_events = self._removed_events, []
        return removed + events

    async def _write_children(self, group: Group) -> None:
        members_before, servers_before = self._loaded.get(group.id, (set(), set()))
        if gone := members_before - set(group.members):
            await self.conn.execute(
                group_players.delete().where(
                    group_players.c.group_id == group.id, group_players.c.player_id.in_(gone)
                )
            )
        if new := set(group.members) - members_before:
            await self.conn.execute(
                group_players.insert(), [{"group_id": group.id, "player_id": p} for p in new]
            )
        if detached := servers_before - set(group.servers):
            await self.conn.execute(
                server_groups.delete().where(
                    server_groups.c.group_id == group.id,
                    server_groups.c.server_id.in_(detached),
                )
            )
        if attached := set(group.servers) - servers_before:
            await self.conn.execute(
                server_groups.insert(),
                [
                    {"group_id": group.id, "server_id": s, "priority": group.servers[s]}
                    for s in attached
                ],
            )
        self._loaded[group.id] = (set(group.members), set(group.servers))


class SqlPlayerRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def save_profile(self, minecraft_uuid: uuid.UUID, name: str) -> Member:
        """Players are keyed by UUID: a known UUID under a new name is a rename."""
        statement = insert(players).values(
            id=new_id(), minecraft_uuid=minecraft_uuid, username=name
        )
        upsert = statement.on_conflict_do_update(
            index_elements=[players.c.minecraft_uuid],
            set_={"username": statement.excluded.username, "updated_at": sa.func.now()},
        ).returning(players.c.id, players.c.minecraft_uuid, players.c.username)
        row = (await self.conn.execute(upsert)).one()
        return Member(player_id=row.id, minecraft_uuid=row.minecraft_uuid, name=row.username)


class SqlGroupsUnitOfWork(SqlUnitOfWork):
    groups: SqlGroupRepository
    players: SqlPlayerRepository

    def start(self, conn: AsyncConnection) -> None:
        self.groups = self.repository(SqlGroupRepository(conn))
        self.players = SqlPlayerRepository(conn)
