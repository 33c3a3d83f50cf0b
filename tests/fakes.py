"""In-memory stand-ins for the ports of the users context, for unit tests of handlers."""

from __future__ import annotations

import copy
import dataclasses
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Self

from app.shared.domain import ConcurrencyConflict, DomainEvent, Page
from app.shared.realtime import Subscription
from app.shared.security import Principal, Role
from app.users.application.messages import UserView
from app.users.domain.model import RefreshToken, User
from app.users.domain.ports import UserListFilter


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

    `stored_users`, `stored_tokens` and `committed_events` hold what was committed.
    """

    users: FakeUserRepository
    refresh_tokens: FakeRefreshTokenRepository

    def __init__(self) -> None:
        self.stored_users: dict[uuid.UUID, User] = {}
        self.stored_tokens: dict[uuid.UUID, RefreshToken] = {}
        self.committed_events: list[DomainEvent] = []
        self.commits = 0

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
        self.committed_events.extend(self.users.flush())
        self.refresh_tokens.apply()
        self.commits += 1

    def user_named(self, username: str) -> User:
        return next(u for u in self.stored_users.values() if u.username == username)

    def tokens_of(self, user_id: uuid.UUID) -> list[RefreshToken]:
        return [t for t in self.stored_tokens.values() if t.user_id == user_id]

    def events_of[E: DomainEvent](self, event_type: type[E]) -> list[E]:
        return [e for e in self.committed_events if isinstance(e, event_type)]


class FakeClock:
    """A UTC clock that only moves when told; starts at the real time so JWTs stay valid."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


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


# Backups context


class FakeBackupsUnitOfWork:
    """Backups, schedules and activity locks in memory; a deep copy per unit of work."""

    def __init__(self) -> None:
        self.stored_backups: dict[uuid.UUID, object] = {}
        self.stored_schedules: dict[uuid.UUID, object] = {}
        self.stored_locks: dict[uuid.UUID, tuple[str, uuid.UUID]] = {}
        self.committed_events: list[DomainEvent] = []

    def __call__(self) -> Self:
        return self

    async def __aenter__(self) -> Self:
        self.backups = _FakeAggregates(copy.deepcopy(self.stored_backups))
        self.schedules = _FakeAggregates(copy.deepcopy(self.stored_schedules))
        self.locks = _FakeLocks(dict(self.stored_locks))
        return self

    async def __aexit__(self, *exc: object) -> None:
        del self.backups, self.schedules, self.locks

    def record_event(self, event: DomainEvent) -> None:
        self.committed_events.append(event)

    async def commit(self) -> None:
        for repository, stored in (
            (self.backups, self.stored_backups),
            (self.schedules, self.stored_schedules),
        ):
            for item in [*repository.items.values(), *repository.removed]:
                self.committed_events.extend(item.collect_events())
            repository.removed.clear()
            stored.clear()
            stored.update(copy.deepcopy(repository.items))
        self.stored_locks = dict(self.locks.rows)

    def events_of[E: DomainEvent](self, event_type: type[E]) -> list[E]:
        return [e for e in self.committed_events if isinstance(e, event_type)]


class _FakeAggregates:
    def __init__(self, items: dict[uuid.UUID, object]) -> None:
        self.items = items
        self.removed: list[object] = []

    async def get(self, item_id: uuid.UUID, *, lock: bool = False) -> object:
        return self.items.get(item_id)

    def add(self, item: object) -> None:
        self.items[item.id] = item

    async def remove(self, item: object) -> None:
        self.removed.append(self.items.pop(item.id))

    async def unfinished(self, *, node: str | None = None) -> list[object]:
        return [b for b in self.items.values() if not b.finished and node in (None, b.node)]

    async def scheduled_completed(self, schedule_id: uuid.UUID) -> list[tuple[uuid.UUID, datetime]]:
        return [
            (b.id, b.created_at)
            for b in self.items.values()
            if b.schedule_id == schedule_id
            and b.status.value == "completed"
            and b.backup_type.value == "scheduled"
        ]

    async def due(self, now: datetime) -> list[object]:
        return [s for s in self.items.values() if s.is_active and s.next_run and s.next_run <= now]


class _FakeLocks:
    def __init__(self, rows: dict[uuid.UUID, tuple[str, uuid.UUID]]) -> None:
        self.rows = rows
        self.acquired_at: dict[uuid.UUID, datetime] = {}

    async def acquire(
        self, server_id: uuid.UUID, *, operation: str, backup_id: uuid.UUID, node: str
    ) -> None:
        from app.backups.domain.errors import BackupBusy

        if server_id in self.rows:
            raise BackupBusy(f"a {self.rows[server_id][0]} of this server is in progress")
        self.rows[server_id] = (operation, backup_id)

    async def release(self, server_id: uuid.UUID, *, backup_id: uuid.UUID | None = None) -> None:
        if server_id in self.rows and backup_id in (None, self.rows[server_id][1]):
            del self.rows[server_id]

    async def holder(self, server_id: uuid.UUID) -> tuple[str, uuid.UUID] | None:
        return self.rows.get(server_id)

    async def restores_before(self, cutoff: datetime) -> list[tuple[uuid.UUID, uuid.UUID]]:
        return []


class FakeServerLookup:
    """Servers by id; `owner_only` makes other actors get NotFound like the real query."""

    def __init__(self) -> None:
        self.servers: dict[uuid.UUID, object] = {}

    def add(self, *, running: bool = True, node: str = "local") -> uuid.UUID:
        from app.backups.domain.ports import ServerRef

        server_id = uuid.uuid4()
        self.servers[server_id] = ServerRef(
            id=server_id,
            name=f"s-{server_id.hex[:4]}",
            owner_id=uuid.uuid4(),
            node=node,
            running=running,
        )
        return server_id

    async def find(self, actor: object, server_id: uuid.UUID) -> object:
        from app.shared.domain import NotFound

        server = self.servers.get(server_id)
        if server is None or (
            actor is not None and not actor.sees_everything() and actor.user_id != server.owner_id
        ):
            raise NotFound(f"server {server_id} not found")
        return server


class FakeBackupJobs:
    def __init__(self, *, online: bool = True) -> None:
        self.queued: list[tuple[str, ...]] = []
        self.online = online

    async def backup(self, node: str, backup_id: uuid.UUID) -> str:
        self.queued.append(("backup", node, str(backup_id)))
        return f"job-{len(self.queued)}"

    async def restore(
        self, node: str, backup_id: uuid.UUID, target_server_id: uuid.UUID, by: uuid.UUID | None
    ) -> str:
        self.queued.append(("restore", node, str(backup_id), str(target_server_id)))
        return f"job-{len(self.queued)}"

    async def is_online(self, node: str) -> bool:
        return self.online


class FakeHeartbeats:
    def __init__(self) -> None:
        self.alive: set[uuid.UUID] = set()

    async def is_alive(self, kind: str, operation_id: uuid.UUID) -> bool:
        return operation_id in self.alive


class FakeBackupStorage:
    name = "memory"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)


class FakePubSubHub:
    """The PubSubHub's interface over plain subscriptions: a test offers messages itself."""

    def __init__(self) -> None:
        self.subscriptions: list[Subscription] = []
        self.failing_subscribes = 0

    async def subscribe(self, channel: str, *, size: int, kind: str) -> Subscription:
        if self.failing_subscribes:
            self.failing_subscribes -= 1
            raise ConnectionError("redis is away")
        subscription = Subscription(channel, size)
        self.subscriptions.append(subscription)
        return subscription

    async def unsubscribe(self, subscription: Subscription, *, kind: str) -> None:
        self.subscriptions.remove(subscription)

    def publish(self, data: str) -> None:
        for subscription in self.subscriptions:
            subscription.offer(data)


class FakeSocketAuthenticator:
    """Tokens mapped to who they are now: a Principal, or the DomainError authenticating raises."""

    def __init__(self, *, ttl: float = 900.0) -> None:
        self.current: dict[str, Principal | Exception] = {}
        self.calls: list[str] = []
        self.ttl = ttl

    async def authenticate(self, access_token: str) -> Principal:
        self.calls.append(access_token)
        outcome = self.current[access_token]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def expires_at(self, access_token: str) -> float:
        return time.time() + self.ttl
