"""In-memory stand-ins for the ports of the users context, for unit tests of handlers."""

from __future__ import annotations

import copy
import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Self

from app.shared.domain import ConcurrencyConflict, DomainEvent, Page
from app.shared.security import Role
from app.users.application.messages import UserView
from app.users.domain.model import RefreshToken, User
from app.users.domain.ports import UserListFilter
from tests.fakes.core import FakeEventLog


class FakeUserRepository:
    """Hands out copies of committed users and writes the changed ones back on flush."""

    def __init__(self, committed: dict[uuid.UUID, User]) -> None:
        self._committed = committed
        self.seen: dict[uuid.UUID, User] = {}

    def _track(self, user: User) -> User:
        return self.seen.setdefault(user.id, copy.deepcopy(user))

    def add(self, user: User) -> None:
        user.changed = True
        self.seen[user.id] = user

    async def get(self, user_id: uuid.UUID) -> User | None:
        if user_id in self.seen:
            return self.seen[user_id]
        stored = self._committed.get(user_id)
        return self._track(stored) if stored else None

    async def get_by_username(self, username: str) -> User | None:
        for user in self._committed.values():
            if user.username.lower() == username.lower():
                return self._track(user)
        return None

    async def username_or_email_taken(self, username: str, email: str) -> str | None:
        committed = self._committed.values()
        if any(user.username.lower() == username.lower() for user in committed):
            return "username"
        if any(user.email == email for user in committed):
            return "email"
        return None

    async def claim_first_user(self) -> bool:
        return not self._committed

    async def count_active_admins(self) -> int:
        """Same rule as the SQL repository: role admin, active and approved."""
        return sum(
            u.role is Role.ADMIN and u.is_active and u.is_approved for u in self._committed.values()
        )

    def flush(self) -> list[DomainEvent]:
        events: list[DomainEvent] = []
        for user in self.seen.values():
            if not user.changed:
                continue
            stored = self._committed.get(user.id)
            if (stored.version if stored else 0) != user.version:
                raise ConcurrencyConflict(f"User {user.id} was changed by someone else")
            user.version += 1
            user.changed = False
            events.extend(user.collect_events())
            self._committed[user.id] = copy.deepcopy(user)
        return events


class FakeRefreshTokenRepository:
    """Works on a private copy of the committed tokens; `apply` makes the copy the truth."""

    def __init__(self, committed: dict[uuid.UUID, RefreshToken]) -> None:
        self._committed = committed
        self._staged = copy.deepcopy(committed)

    async def add(self, token: RefreshToken) -> None:
        self._staged[token.id] = dataclasses.replace(token)

    async def get_for_update(self, token_id: uuid.UUID) -> RefreshToken | None:
        token = self._staged.get(token_id)
        return dataclasses.replace(token) if token else None

    async def mark_replaced(self, token_id: uuid.UUID, replaced_by: uuid.UUID) -> None:
        if token_id in self._staged:
            self._staged[token_id].replaced_by = replaced_by

    def _revoke(self, tokens: list[RefreshToken], now: datetime, reason: str) -> None:
        for token in tokens:
            if token.revoked_at is None:
                token.revoked_at, token.revoke_reason = now, reason

    async def revoke_family(self, family_id: uuid.UUID, *, now: datetime, reason: str) -> None:
        self._revoke([t for t in self._staged.values() if t.family_id == family_id], now, reason)

    async def revoke_all_of_user(
        self,
        user_id: uuid.UUID,
        *,
        now: datetime,
        reason: str,
        keep_family: uuid.UUID | None = None,
    ) -> set[uuid.UUID]:
        tokens = [
            t
            for t in self._staged.values()
            if t.user_id == user_id and t.family_id != keep_family and t.revoked_at is None
        ]
        self._revoke(tokens, now, reason)
        return {t.family_id for t in tokens}

    def apply(self) -> None:
        self._committed.clear()
        self._committed.update(copy.deepcopy(self._staged))


class FakeUsersUnitOfWork:
    """Both the unit of work and its factory: handlers call `uow()` and get this object back.

    `stored_users`, `stored_tokens` and `committed_events` hold what was committed; with an
    event log, committed events also go to the bus's handlers.
    """

    users: FakeUserRepository
    refresh_tokens: FakeRefreshTokenRepository

    def __init__(self, events: FakeEventLog | None = None) -> None:
        self.stored_users: dict[uuid.UUID, User] = {}
        self.stored_tokens: dict[uuid.UUID, RefreshToken] = {}
        self.committed_events: list[DomainEvent] = []
        self.commits = 0
        self.events = events

    def __call__(self) -> Self:
        return self

    async def __aenter__(self) -> Self:
        self.users = FakeUserRepository(self.stored_users)
        self.refresh_tokens = FakeRefreshTokenRepository(self.stored_tokens)
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Drop whatever was not committed."""
        del self.users, self.refresh_tokens

    async def commit(self) -> None:
        events = self.users.flush()
        self.committed_events.extend(events)
        self.refresh_tokens.apply()
        self.commits += 1
        if self.events is not None:
            await self.events.append(events)

    def user_named(self, username: str) -> User:
        return next(u for u in self.stored_users.values() if u.username == username)

    def tokens_of(self, user_id: uuid.UUID) -> list[RefreshToken]:
        return [t for t in self.stored_tokens.values() if t.user_id == user_id]

    def events_of[E: DomainEvent](self, event_type: type[E]) -> list[E]:
        return [e for e in self.committed_events if isinstance(e, event_type)]


class FakeHasher:
    """`hashed:<password>`; a `legacy:<password>` hash verifies and asks to be upgraded."""

    async def hash(self, password: str) -> str:
        return f"hashed:{password}"

    def __init__(self) -> None:
        self.verified: list[tuple[str | None, bool]] = []

    async def verify(
        self, password: str, password_hash: str | None, *, upgrade: bool = True
    ) -> tuple[bool, str | None]:
        self.verified.append((password_hash, upgrade))
        if password_hash == f"legacy:{password}":
            return True, await self.hash(password) if upgrade else None
        return password_hash == f"hashed:{password}", None


class FakeRevocations:
    def __init__(self) -> None:
        self.revoked_sessions: list[uuid.UUID] = []
        self.forgotten_users: list[uuid.UUID] = []

    async def revoke_session(self, session_id: uuid.UUID) -> None:
        self.revoked_sessions.append(session_id)

    async def forget_user(self, user_id: uuid.UUID) -> None:
        self.forgotten_users.append(user_id)


class FakeUserReadModel:
    """Views of the users committed to a fake unit of work."""

    def __init__(self, uow: FakeUsersUnitOfWork) -> None:
        self._uow = uow

    @staticmethod
    def _view(user: User) -> UserView:
        return UserView(
            id=user.id,
            username=user.username,
            email=user.email,
            full_name=user.full_name,
            role=user.role,
            is_active=user.is_active,
            is_approved=user.is_approved,
            created_at=user.created_at,
            last_login_at=user.last_login_at,
        )

    async def get(self, user_id: uuid.UUID) -> UserView | None:
        user = self._uow.stored_users.get(user_id)
        return self._view(user) if user else None

    async def page(self, filter: UserListFilter) -> Page[UserView]:
        search = (filter.search or "").lower()
        matching = [
            self._view(u)
            for u in sorted(self._uow.stored_users.values(), key=lambda u: (u.created_at, u.id))
            if (filter.role is None or u.role is filter.role)
            and (filter.is_approved is None or u.is_approved is filter.is_approved)
            and (filter.is_active is None or u.is_active is filter.is_active)
            and (search in u.username.lower() or search in u.email.lower())
        ]
        start = (filter.page - 1) * filter.limit
        return Page(
            items=matching[start : start + filter.limit],
            total=len(matching),
            page=filter.page,
            limit=filter.limit,
        )


@dataclass(kw_only=True)
class UsersFakes:
    """The users context's adapters, named as its `wire()` names them (tokens stay real)."""

    uow: FakeUsersUnitOfWork
    read_model: FakeUserReadModel
    hasher: FakeHasher = field(default_factory=FakeHasher)
    revocations: FakeRevocations = field(default_factory=FakeRevocations)

    @classmethod
    def build(cls, events: FakeEventLog) -> UsersFakes:
        uow = FakeUsersUnitOfWork(events)
        return cls(uow=uow, read_model=FakeUserReadModel(uow))

    def usernames(self, user_id: uuid.UUID) -> str | None:
        user = self.uow.stored_users.get(user_id)
        return user.username if user else None
