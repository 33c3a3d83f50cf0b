"""What the users application needs from the outside world."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, Self

from app.shared.security import Role
from app.users.domain.model import RefreshToken, User


class UserRepository(Protocol):
    def add(self, user: User) -> None: ...
    async def get(self, user_id: uuid.UUID) -> User | None: ...
    async def get_by_username(self, username: str) -> User | None: ...
    async def username_or_email_taken(self, username: str, email: str) -> str | None: ...
    async def claim_first_user(self) -> bool:
        """Serialize registrations and tell whether no user exists yet."""
        ...

    async def count_active_admins(self) -> int:
        """Count admins under a lock, so two demotions cannot remove the last one."""
        ...


class RefreshTokenRepository(Protocol):
    async def add(self, token: RefreshToken) -> None: ...
    async def get_for_update(self, token_id: uuid.UUID) -> RefreshToken | None: ...
    async def mark_replaced(self, token_id: uuid.UUID, replaced_by: uuid.UUID) -> None: ...
    async def revoke_family(self, family_id: uuid.UUID, *, now: datetime, reason: str) -> None: ...
    async def revoke_all_of_user(
        self,
        user_id: uuid.UUID,
        *,
        now: datetime,
        reason: str,
        keep_family: uuid.UUID | None = None,
    ) -> set[uuid.UUID]:
        """Revoke every live token of the user but `keep_family`'s; returns the revoked families."""
        ...


class UsersUnitOfWork(Protocol):
    users: UserRepository
    refresh_tokens: RefreshTokenRepository

    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def commit(self) -> None: ...


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...
    async def verify(
        self, password: str, password_hash: str | None, *, upgrade: bool = True
    ) -> tuple[bool, str | None]:
        """Whether it matches, and (if `upgrade`) a new hash when the stored one is outdated.

        No hash (an unknown user) costs as much as a wrong password.
        """
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshClaims:
    token_id: uuid.UUID
    user_id: uuid.UUID
    family_id: uuid.UUID


class TokenService(Protocol):
    def issue_access(self, user: User, *, session_id: uuid.UUID, now: datetime) -> str: ...
    def issue_refresh(
        self, *, token_id: uuid.UUID, user_id: uuid.UUID, family_id: uuid.UUID, now: datetime
    ) -> str: ...
    def decode_refresh(self, token: str) -> RefreshClaims: ...
    @property
    def access_ttl(self) -> int: ...
    @property
    def refresh_ttl(self) -> int: ...


class SessionRevocations(Protocol):
    """Make revoked sessions and changed users take effect before their tokens expire."""

    async def revoke_session(self, session_id: uuid.UUID) -> None: ...
    async def forget_user(self, user_id: uuid.UUID) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class UserListFilter:
    role: Role | None = None
    is_approved: bool | None = None
    is_active: bool | None = None
    search: str | None = None
    page: int = 1
    limit: int = 20
