"""Player groups: op or whitelist lists of players, owned by a user, attached to servers."""

from __future__ import annotations

import enum
import hashlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from app.groups.domain.events import (
    GroupAttachedToServer,
    GroupCreated,
    GroupDeleted,
    GroupDetachedFromServer,
    GroupUpdated,
    PlayerAddedToGroup,
    PlayerRemovedFromGroup,
)
from app.shared.domain import Aggregate, Conflict, DomainError, InvalidInput, NotFound

PLAYER_NAME = re.compile(r"[A-Za-z0-9_]{3,16}")
GROUP_NAME_MAX = 100
DESCRIPTION_MAX = 500
DEFAULT_OP_LEVEL = 4
PRIORITY_RANGE = (0, 1000)


class GroupType(enum.StrEnum):
    OP = "op"
    WHITELIST = "whitelist"


class GroupNotFound(NotFound):
    slug = "group-not-found"


class PlayerNotInGroup(NotFound):
    slug = "player-not-in-group"


class UnknownPlayer(InvalidInput):
    slug = "unknown-player"
    title = "Unknown player"


class ProfileServiceUnavailable(DomainError):
    status = 503
    slug = "profile-service-unavailable"
    title = "Player profile service unavailable"


class VersionMismatch(DomainError):
    status = 412
    slug = "precondition-failed"
    title = "Precondition failed"


def validate_player_name(name: str) -> str:
    if not PLAYER_NAME.fullmatch(name):
        raise InvalidInput(
            "a player name is 3 to 16 characters of letters, digits and _", field="name"
        )
    return name


def validate_group_name(name: str) -> str:
    stripped = name.strip()
    if not stripped or len(stripped) > GROUP_NAME_MAX or not stripped.isprintable():
        raise InvalidInput(
            f"a group name is 1 to {GROUP_NAME_MAX} printable characters", field="name"
        )
    return stripped


def validate_op_level(level: int) -> int:
    if not 1 <= level <= 4:
        raise InvalidInput("an op level is 1, 2, 3 or 4", field="op_level")
    return level


def validate_priority(priority: int) -> int:
    low, high = PRIORITY_RANGE
    if not low <= priority <= high:
        raise InvalidInput(f"a priority is between {low} and {high}", field="priority")
    return priority


def offline_uuid(name: str) -> uuid.UUID:
    """The UUID an offline-mode server gives a player: v3 of "OfflinePlayer:<name>"."""
    return uuid.UUID(bytes=hashlib.md5(f"OfflinePlayer:{name}".encode()).digest(), version=3)  # noqa: S324


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """A player as a group holds it: the shared player record's id, UUID and current name."""

    player_id: uuid.UUID
    minecraft_uuid: uuid.UUID
    name: str


@dataclass(kw_only=True, eq=False)
class Group(Aggregate):
    name: str
    description: str | None
    group_type: GroupType
    op_level: int | None
    owner_id: uuid.UUID
    created_at: datetime
    members: dict[uuid.UUID, Member] = field(default_factory=dict)
    servers: dict[uuid.UUID, int] = field(default_factory=dict)
    deleted: bool = False

    @classmethod
    def create(
        cls,
        *,
        group_id: uuid.UUID,
        name: str,
        description: str | None,
        group_type: GroupType,
        op_level: int | None,
        owner_id: uuid.UUID,
        now: datetime,
    ) -> Group:
        if group_type is GroupType.OP:
            op_level = validate_op_level(DEFAULT_OP_LEVEL if op_level is None else op_level)
        elif op_level is not None:
            raise InvalidInput("only op groups carry an op level", field="op_level")
        group = cls(
            id=group_id,
            name=validate_group_name(name),
            description=_description(description),
            group_type=group_type,
            op_level=op_level,
            owner_id=owner_id,
            created_at=now,
        )
        group.record(
            GroupCreated(
                occurred_at=now,
                group_id=group_id,
                name=group.name,
                group_type=group_type.value,
                op_level=op_level,
                owner_id=owner_id,
            )
        )
        return group

    def update(
        self,
        *,
        now: datetime,
        name: str | None = None,
        description: str | None = None,
        op_level: int | None = None,
    ) -> list[str]:
        changed: list[str] = []
        if name is not None and validate_group_name(name) != self.name:
            self.name = validate_group_name(name)
            changed.append("name")
        if description is not None and _description(description) != self.description:
            self.description = _description(description)
            changed.append("description")
        if op_level is not None:
            if self.group_type is not GroupType.OP:
                raise InvalidInput("only op groups carry an op level", field="op_level")
            if validate_op_level(op_level) != self.op_level:
                self.op_level = op_level
                changed.append("op_level")
        if changed:
            self.record(
                GroupUpdated(occurred_at=now, group_id=self.id, changed_fields=tuple(changed))
            )
        return changed

    def add_player(self, member: Member, *, now: datetime) -> None:
        if member.player_id in self.members:
            raise Conflict(f"{member.name} is already in group {self.name}", field="name")
        self.members[member.player_id] = member
        self.record(
            PlayerAddedToGroup(
                occurred_at=now,
                group_id=self.id,
                player_id=member.player_id,
                minecraft_uuid=member.minecraft_uuid,
                name=member.name,
            )
        )

    def remove_player(self, player_id: uuid.UUID, *, now: datetime) -> Member:
        member = self.members.pop(player_id, None) or next(
            (m for m in self.members.values() if m.minecraft_uuid == player_id), None
        )
        if member is None:
            raise PlayerNotInGroup(f"player {player_id} is not in group {self.name}")
        self.members.pop(member.player_id, None)
        self.record(
            PlayerRemovedFromGroup(
                occurred_at=now,
                group_id=self.id,
                player_id=member.player_id,
                minecraft_uuid=member.minecraft_uuid,
                name=member.name,
            )
        )
        return member

    def attach(self, server_id: uuid.UUID, *, priority: int, now: datetime) -> None:
        validate_priority(priority)
        if server_id in self.servers:
            raise Conflict(f"group {self.name} is already attached to server {server_id}")
        self.servers[server_id] = priority
        self.record(
            GroupAttachedToServer(
                occurred_at=now, group_id=self.id, server_id=server_id, priority=priority
            )
        )

    def detach(self, server_id: uuid.UUID, *, now: datetime) -> None:
        if self.servers.pop(server_id, None) is None:
            raise NotFound(f"group {self.name} is not attached to server {server_id}")
        self.record(GroupDetachedFromServer(occurred_at=now, group_id=self.id, server_id=server_id))

    def delete(self, *, now: datetime) -> tuple[uuid.UUID, ...]:
        """Mark for deletion; returns the servers whose lists lose this group."""
        self.deleted = True
        servers = tuple(self.servers)
        self.record(GroupDeleted(occurred_at=now, group_id=self.id, server_ids=servers))
        return servers


def _description(description: str | None) -> str | None:
    if description is None:
        return None
    if len(description) > DESCRIPTION_MAX:
        raise InvalidInput(
            f"a description is at most {DESCRIPTION_MAX} characters", field="description"
        )
    return description.strip() or None
