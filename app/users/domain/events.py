"""What happens to users; stored in `domain_events` under aggregate type `user`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import ClassVar

from app.shared.domain import DomainEvent
from app.shared.security import Role


@dataclass(frozen=True, slots=True, kw_only=True)
class UserEvent(DomainEvent):
    aggregate_type: ClassVar[str] = "user"

    user_id: uuid.UUID

    @property
    def aggregate_id(self) -> uuid.UUID:
        return self.user_id


@dataclass(frozen=True, slots=True, kw_only=True)
class UserRegistered(UserEvent):
    username: str
    email: str
    role: Role
    is_approved: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class UserApproved(UserEvent):
    approved_by: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class UserRoleChanged(UserEvent):
    old_role: Role
    new_role: Role
    changed_by: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class UserDeactivated(UserEvent):
    deactivated_by: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class UserReactivated(UserEvent):
    reactivated_by: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class UserProfileUpdated(UserEvent):
    changed_fields: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class UserLoggedIn(UserEvent):
    session_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class UserLoggedOut(UserEvent):
    session_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class UserSessionsRevoked(UserEvent):
    """A refresh token was reused after rotation, so its whole session family was revoked."""

    session_id: uuid.UUID
    reason: str


USER_EVENTS: tuple[type[UserEvent], ...] = (
    UserRegistered,
    UserApproved,
    UserRoleChanged,
    UserDeactivated,
    UserReactivated,
    UserProfileUpdated,
    UserLoggedIn,
    UserLoggedOut,
    UserSessionsRevoked,
)
