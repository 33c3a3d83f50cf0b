"""In-memory stand-ins for the ports of the groups context: groups and players in the shared
fake database, the read side (list, details, server nodes, access plans), Mojang and sync jobs."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

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
from app.groups.domain.events import GroupAttachedToServer, PlayerAddedToGroup
from app.groups.domain.model import Group, Member, ProfileServiceUnavailable
from app.shared.domain import DomainEvent, Page, new_id
from tests.fakes.core import FakeEventLog, FakeRepository, FakeUnitOfWork, conflict
from tests.fakes.database import AccessRow, FakeDatabase


class FakeGroupRepository(FakeRepository[Group]):
    """Members carry the shared player record's current name, as the SQL join does."""

    collect_on_remove = True

    def __init__(self, db: FakeDatabase) -> None:
        super().__init__(db.groups)
        self._db = db

    def load(self, stored: Group) -> Group:
        group = copy.deepcopy(stored)
        group.members = {pid: self._db.player(pid) or m for pid, m in group.members.items()}
        return group

    async def name_taken(self, owner_id: uuid.UUID, name: str) -> bool:
        return any(
            g.owner_id == owner_id and g.name.lower() == name.lower() for g in self.committed()
        )


class FakePlayerRepository:
    """`players` keyed by Minecraft UUID: a known UUID under a new name is a rename."""

    def __init__(self, db: FakeDatabase) -> None:
        self._db = db
        self.staged: dict[uuid.UUID, Member] = {}

    async def save_profile(self, minecraft_uuid: uuid.UUID, name: str) -> Member:
        known = self.staged.get(minecraft_uuid) or self._db.players.get(minecraft_uuid)
        member = Member(
            player_id=known.player_id if known else new_id(),
            minecraft_uuid=minecraft_uuid,
            name=name,
        )
        self.staged[minecraft_uuid] = member
        return member


class FakeGroupsUnitOfWork(FakeUnitOfWork):
    """Group names are unique per owner (case-insensitive); attachments need the server."""

    groups: FakeGroupRepository
    players: FakePlayerRepository

    def __init__(self, db: FakeDatabase, events: FakeEventLog) -> None:
        super().__init__(events, before_commit=db.before_commit)
        self.db = db

    def start(self) -> None:
        self.groups = self.repository(FakeGroupRepository(self.db))
        self.players = FakePlayerRepository(self.db)

    def check(self) -> None:
        names: set[tuple[uuid.UUID, str]] = set()
        for group in self.groups.staged().values():
            if (group.owner_id, group.name.lower()) in names:
                raise conflict("ix_groups_owner_name_lower")
            names.add((group.owner_id, group.name.lower()))
            if any(server_id not in self.db.servers for server_id in group.servers):
                raise conflict("server_groups_server_id_fkey")

    def write(self, events: Sequence[DomainEvent]) -> None:
        self.db.players.update(self.players.staged)
        self.players.staged = {}
        for event in events:
            if isinstance(event, PlayerAddedToGroup):
                self.db.joined_at[event.group_id, event.player_id] = event.occurred_at
            elif isinstance(event, GroupAttachedToServer):
                self.db.joined_at[event.group_id, event.server_id] = event.occurred_at


class FakeGroupsReadModel:
    """The group list view, group details and server nodes, read straight from the tables."""

    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    async def page(self, filter: GroupListFilter) -> Page[GroupSummary]:
        search = (filter.search or "").lower()
        matching = sorted(
            (
                g
                for g in self._db.groups.values()
                if filter.owner_id in (None, g.owner_id)
                and filter.group_type in (None, g.group_type.value)
                and search in g.name.lower()
            ),
            key=lambda g: (-g.created_at.timestamp(), str(g.id)),
        )
        start = (filter.page - 1) * filter.limit
        items = [
            GroupSummary(
                id=g.id,
                name=g.name,
                description=g.description,
                group_type=g.group_type.value,
                op_level=g.op_level,
                created_at=g.created_at,
                owner_id=g.owner_id,
                owner_username=self._db.usernames(g.owner_id),
                player_count=len(g.members),
                server_count=len(g.servers),
            )
            for g in matching[start : start + filter.limit]
        ]
        return Page(items=items, total=len(matching), page=filter.page, limit=filter.limit)

    async def detail(self, group_id: uuid.UUID) -> GroupDetail | None:
        group = self._db.groups.get(group_id)
        if group is None:
            return None
        members = [self._db.player(pid) or m for pid, m in group.members.items()]
        return GroupDetail(
            id=group.id,
            name=group.name,
            description=group.description,
            group_type=group.group_type.value,
            op_level=group.op_level,
            owner_id=group.owner_id,
            created_at=group.created_at,
            version=group.version,
            players=tuple(
                PlayerView(
                    id=m.player_id,
                    uuid=m.minecraft_uuid,
                    name=m.name,
                    added_at=self._db.joined_at[group.id, m.player_id],
                )
                for m in sorted(members, key=lambda m: m.name.lower())
            ),
            servers=tuple(
                sorted(
                    (
                        AttachmentView(
                            server_id=s, priority=p, attached_at=self._db.joined_at[group.id, s]
                        )
                        for s, p in group.servers.items()
                    ),
                    key=lambda a: a.attached_at,
                )
            ),
        )

    async def nodes_of(
        self, server_ids: Iterable[uuid.UUID], *, attached_only: bool = False
    ) -> dict[uuid.UUID, str]:
        attached = {s for g in self._db.groups.values() for s in g.servers}
        return {
            server_id: self._db.servers[server_id].node
            for server_id in server_ids
            if server_id in self._db.servers and (not attached_only or server_id in attached)
        }


class FakeAccessStore:
    """`server_access` and the plan of a server's lists, from the groups attached to it."""

    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    async def plan(self, server_id: uuid.UUID) -> AccessPlan:
        attached = [g for g in self._db.groups.values() if server_id in g.servers]
        grants = [
            Grant(
                group_id=g.id,
                group_type=g.group_type,
                op_level=g.op_level,
                priority=g.servers[server_id],
                players=tuple(
                    (m.minecraft_uuid, m.name)
                    for m in (self._db.player(pid) or m for pid, m in g.members.items())
                ),
            )
            for g in attached
        ]
        row = self._db.server_access.get(server_id) or AccessRow()
        return AccessPlan(
            server_id=server_id,
            authoritative=row.authoritative,
            lists=effective_lists(grants),
            applied_ops=row.applied_ops,
            applied_whitelist=row.applied_whitelist,
            groups=tuple(
                AttachedGroup(
                    group_id=g.id,
                    name=g.name,
                    group_type=g.group_type.value,
                    op_level=g.op_level,
                    priority=g.servers[server_id],
                )
                for g in sorted(attached, key=lambda g: (-g.servers[server_id], g.name.lower()))
            ),
        )

    async def last_sync(self, server_id: uuid.UUID) -> SyncOutcome | None:
        row = self._db.server_access.get(server_id)
        return row.last_sync if row else None

    async def set_authoritative(self, server_id: uuid.UUID, authoritative: bool) -> bool:
        """Like the upsert: a new row, or a changed one, counts as a change."""
        row = self._db.server_access.get(server_id)
        if row is not None and row.authoritative == authoritative:
            return False
        self._db.server_access[server_id] = replace(row or AccessRow(), authoritative=authoritative)
        return True

    async def record(self, server_id: uuid.UUID, outcome: SyncOutcome) -> None:
        """Nothing is kept for a server deleted meanwhile."""
        if server_id not in self._db.servers:
            return
        row = self._db.server_access.setdefault(server_id, AccessRow())
        row.last_sync = outcome
        if not outcome.check_only:
            row.applied_ops, row.applied_whitelist = outcome.applied_ops, outcome.applied_whitelist


class FakeProfiles:
    """Mojang's accounts, by name in any case; `unavailable` makes every lookup fail."""

    def __init__(self) -> None:
        self.accounts: dict[str, tuple[uuid.UUID, str]] = {}
        self.unavailable = False
        self.lookups: list[str] = []

    def add(self, name: str) -> uuid.UUID:
        account = uuid.uuid4()
        self.accounts[name.lower()] = (account, name)
        return account

    async def lookup(self, name: str) -> tuple[uuid.UUID, str] | None:
        self.lookups.append(name)
        if self.unavailable:
            raise ProfileServiceUnavailable("Mojang's profile service cannot be reached")
        return self.accounts.get(name.lower())


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncRequest:
    server_id: uuid.UUID
    node: str
    check_only: bool


class FakeSyncRequests:
    def __init__(self) -> None:
        self.requests: list[SyncRequest] = []

    async def request(self, server_id: uuid.UUID, node: str, *, check_only: bool = False) -> None:
        self.requests.append(SyncRequest(server_id=server_id, node=node, check_only=check_only))

    def servers(self, *, check_only: bool = False) -> list[uuid.UUID]:
        return [r.server_id for r in self.requests if r.check_only is check_only]


@dataclass(kw_only=True)
class GroupsFakes:
    """The groups context's adapters, named as its `wire()` names them."""

    uow: Any
    read_model: FakeGroupsReadModel
    server_nodes: FakeGroupsReadModel
    access: FakeAccessStore
    profiles: FakeProfiles = field(default_factory=FakeProfiles)
    access_sync: FakeSyncRequests = field(default_factory=FakeSyncRequests)

    @classmethod
    def build(cls, db: FakeDatabase, events: FakeEventLog) -> GroupsFakes:
        read_model = FakeGroupsReadModel(db)
        return cls(
            uow=lambda: FakeGroupsUnitOfWork(db, events),
            read_model=read_model,
            server_nodes=read_model,
            access=FakeAccessStore(db),
        )
