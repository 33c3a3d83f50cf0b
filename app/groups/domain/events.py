"""What happens to player groups; stored in `domain_events` under aggregate type `group`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import ClassVar

from app.shared.domain import DomainEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupEvent(DomainEvent):
    aggregate_type: ClassVar[str] = "group"

    group_id: uuid.UUID

    @property
    def aggregate_id(self) -> uuid.UUID:
        return self.group_id


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupCreated(GroupEvent):
    name: str
    group_type: str
    op_level: int | None
    owner_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupUpdated(GroupEvent):
    changed_fields: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupDeleted(GroupEvent):
    server_ids: tuple[uuid.UUID, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayerAddedToGroup(GroupEvent):
    player_id: uuid.UUID
    minecraft_uuid: uuid.UUID
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayerRemovedFromGroup(GroupEvent):
    player_id: uuid.UUID
    minecraft_uuid: uuid.UUID
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupAttachedToServer(GroupEvent):
    server_id: uuid.UUID
    priority: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupDetachedFromServer(GroupEvent):
    server_id: uuid.UUID


GROUP_EVENTS: tuple[type[GroupEvent], ...] = (
    GroupCreated,
    GroupUpdated,
    GroupDeleted,
    PlayerAddedToGroup,
    PlayerRemovedFromGroup,
    GroupAttachedToServer,
    GroupDetachedFromServer,
)
