"""Commands and queries of the groups context, and the views its queries return."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from app.groups.domain.access import AccessLists
from app.groups.domain.model import GroupType, Member
from app.shared.bus import Command, Query
from app.shared.domain import Page
from app.shared.security import Principal

LookupMode = Literal["online", "offline"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateGroup(Command[uuid.UUID]):
    actor: Principal
    name: str
    description: str | None
    group_type: GroupType
    op_level: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateGroup(Command[list[str]]):
    actor: Principal
    group_id: uuid.UUID
    name: str | None = None
    description: str | None = None
    op_level: int | None = None
    expected_version: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteGroup(Command[None]):
    actor: Principal
    group_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class AddPlayerToGroup(Command[Member]):
    actor: Principal
    group_id: uuid.UUID
    name: str
    mode: LookupMode = "online"


@dataclass(frozen=True, slots=True, kw_only=True)
class RemovePlayerFromGroup(Command[None]):
    actor: Principal
    group_id: uuid.UUID
    player_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class AttachGroupToServer(Command[None]):
    actor: Principal
    group_id: uuid.UUID
    server_id: uuid.UUID
    priority: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class DetachGroupFromServer(Command[None]):
    actor: Principal
    group_id: uuid.UUID
    server_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class SetServerAccessMode(Command[None]):
    actor: Principal
    server_id: uuid.UUID
    authoritative: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncOutcome:
    """What one sync of a server's lists did, as the node worker reports it."""

    at: datetime
    check_only: bool
    applied_ops: tuple[str, ...]
    applied_whitelist: tuple[str, ...]
    commands: tuple[str, ...]
    failures: tuple[str, ...]
    drift_ops: tuple[str, ...]
    drift_whitelist: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordAccessSync(Command[None]):
    server_id: uuid.UUID
    outcome: SyncOutcome


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupListFilter:
    owner_id: uuid.UUID | None = None
    group_type: str | None = None
    search: str | None = None
    page: int = 1
    limit: int = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupSummary:
    id: uuid.UUID
    name: str
    description: str | None
    group_type: str
    op_level: int | None
    created_at: datetime
    owner_id: uuid.UUID
    owner_username: str | None
    player_count: int
    server_count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayerView:
    id: uuid.UUID
    uuid: uuid.UUID
    name: str
    added_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class AttachmentView:
    server_id: uuid.UUID
    priority: int
    attached_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupDetail:
    id: uuid.UUID
    name: str
    description: str | None
    group_type: str
    op_level: int | None
    owner_id: uuid.UUID
    created_at: datetime
    version: int
    players: tuple[PlayerView, ...]
    servers: tuple[AttachmentView, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AttachedGroup:
    group_id: uuid.UUID
    name: str
    group_type: str
    op_level: int | None
    priority: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessPlan:
    """What the node needs to sync one server: the lists, the mode, what it applied before."""

    server_id: uuid.UUID
    authoritative: bool
    lists: AccessLists
    applied_ops: tuple[str, ...]
    applied_whitelist: tuple[str, ...]
    groups: tuple[AttachedGroup, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerAccess:
    plan: AccessPlan
    last_sync: SyncOutcome | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ListGroups(Query[Page[GroupSummary]]):
    actor: Principal
    filter: GroupListFilter


@dataclass(frozen=True, slots=True, kw_only=True)
class GetGroup(Query[GroupDetail]):
    actor: Principal
    group_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class GetServerAccess(Query[ServerAccess]):
    actor: Principal
    server_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class GetAccessPlan(Query[AccessPlan]):
    """For node workers: no actor, no visibility rule."""

    server_id: uuid.UUID
