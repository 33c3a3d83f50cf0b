"""Commands and queries of the users context, and the views its queries return."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from app.shared.bus import Command, Query
from app.shared.domain import Page
from app.shared.security import Role
from app.users.domain.ports import IssuedTokens, UserListFilter


@dataclass(frozen=True, slots=True, kw_only=True)
class UserView:
    id: uuid.UUID
    username: str
    email: str
    full_name: str | None
    role: Role
    is_active: bool
    is_approved: bool
    created_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterUser(Command[uuid.UUID]):
    username: str
    email: str
    password: str
    full_name: str | None = None
    as_admin: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LogIn(Command[IssuedTokens]):
    username: str
    password: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshSession(Command[IssuedTokens]):
    refresh_token: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LogOut(Command[None]):
    user_id: uuid.UUID
    session_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateProfile(Command[None]):
    """Email and password changes need the current password; a new password ends other sessions."""

    user_id: uuid.UUID
    session_id: uuid.UUID | None = None
    email: str | None = None
    full_name: str | None = None
    current_password: str | None = None
    new_password: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ApproveUser(Command[None]):
    user_id: uuid.UUID
    approved_by: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeUserRole(Command[None]):
    user_id: uuid.UUID
    role: Role
    changed_by: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class DeactivateUser(Command[None]):
    user_id: uuid.UUID
    deactivated_by: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class ReactivateUser(Command[None]):
    user_id: uuid.UUID
    reactivated_by: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class GetUser(Query[UserView]):
    user_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class ListUsers(Query[Page[UserView]]):
    filter: UserListFilter
