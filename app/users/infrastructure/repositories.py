"""SQL repositories, unit of work and read model of the users context."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.shared.db import contains_pattern
from app.shared.domain import Page
from app.shared.security import Role
from app.shared.uow import SqlRepository, SqlUnitOfWork
from app.users.application.messages import UserView
from app.users.domain.model import RefreshToken, User
from app.users.domain.ports import UserListFilter
from app.users.infrastructure.tables import refresh_tokens, users

_REGISTRATION_LOCK = 0x6D63_0001
_ADMIN_LOCK = 0x6D63_0002


def _user_from_row(row: RowMapping) -> User:
    return User(
        id=row["id"],
        version=row["version"],
        username=row["username"],
        email=row["email"],
        password_hash=row["password_hash"],
        full_name=row["full_name"],
        role=Role(row["role"]),
        is_active=row["is_active"],
        is_approved=row["is_approved"],
        created_at=row["created_at"],
        last_login_at=row["last_login_at"],
    )


class SqlUserRepository(SqlRepository[User]):
    table = users

    def to_row(self, aggregate: User) -> dict[str, Any]:
        return {
            "id": aggregate.id,
            "username": aggregate.username,
            "email": aggregate.email,
            "password_hash": aggregate.password_hash,
            "full_name": aggregate.full_name,
            "role": aggregate.role.value,
            "is_active": aggregate.is_active,
            "is_approved": aggregate.is_approved,
            "created_at": aggregate.created_at,
            "last_login_at": aggregate.last_login_at,
        }

    async def _one(self, condition: sa.ColumnElement[bool]) -> User | None:
        row = (await self.conn.execute(sa.select(users).where(condition))).mappings().first()
        return self.track(_user_from_row(row)) if row else None

    async def get(self, user_id: uuid.UUID) -> User | None:
        if user_id in self.seen:
            return self.seen[user_id]
        return await self._one(users.c.id == user_id)

    async def get_by_username(self, username: str) -> User | None:
        return await self._one(sa.func.lower(users.c.username) == username.lower())

    async def username_or_email_taken(self, username: str, email: str) -> str | None:
        row = (
            await self.conn.execute(
                sa.select(
                    sa.func.bool_or(sa.func.lower(users.c.username) == username.lower()),
                    sa.func.bool_or(users.c.email == email),
                )
            )
        ).one()
        if row[0]:
            return "username"
        if row[1]:
            return "email"
        return None

    async def claim_first_user(self) -> bool:
        """Whether this registration is the first. Once any user exists (committed, so it
        stays) none can be, and registrations run side by side; only while there is none do
        they take the lock, so exactly one of them becomes the first."""
        if await self.conn.scalar(sa.select(sa.exists().select_from(users))):
            return False
        await self.conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_REGISTRATION_LOCK)))
        return not (await self.conn.scalar(sa.select(sa.exists().select_from(users))))

    async def count_active_admins(self) -> int:
        await self.conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_ADMIN_LOCK)))
        count = await self.conn.scalar(
            sa.select(sa.func.count())
            .select_from(users)
            .where(users.c.role == Role.ADMIN.value, users.c.is_active, users.c.is_approved)
        )
        return int(count or 0)


class SqlRefreshTokenRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def add(self, token: RefreshToken) -> None:
        await self.conn.execute(
            refresh_tokens.insert().values(
                id=token.id,
                user_id=token.user_id,
                family_id=token.family_id,
                issued_at=token.issued_at,
                expires_at=token.expires_at,
            )
        )

    async def get_for_update(self, token_id: uuid.UUID) -> RefreshToken | None:
        row = (
            (
                await self.conn.execute(
                    sa.select(refresh_tokens)
                    .where(refresh_tokens.c.id == token_id)
                    .with_for_update()
                )
            )
            .mappings()
            .first()
        )
        return RefreshToken(**row) if row else None

    async def mark_replaced(self, token_id: uuid.UUID, replaced_by: uuid.UUID) -> None:
        await self.conn.execute(
            refresh_tokens.update()
            .where(refresh_tokens.c.id == token_id)
            .values(replaced_by=replaced_by)
        )

    async def _revoke(
        self, condition: sa.ColumnElement[bool], now: datetime, reason: str
    ) -> set[uuid.UUID]:
        rows = await self.conn.execute(
            refresh_tokens.update()
            .where(condition, refresh_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now, revoke_reason=reason)
            .returning(refresh_tokens.c.family_id)
        )
        return {row[0] for row in rows}

    async def revoke_family(self, family_id: uuid.UUID, *, now: datetime, reason: str) -> None:
        await self._revoke(refresh_tokens.c.family_id == family_id, now, reason)

    async def revoke_all_of_user(
        self,
        user_id: uuid.UUID,
        *,
        now: datetime,
        reason: str,
        keep_family: uuid.UUID | None = None,
    ) -> set[uuid.UUID]:
        condition = refresh_tokens.c.user_id == user_id
        if keep_family is not None:
            condition = condition & (refresh_tokens.c.family_id != keep_family)
        return await self._revoke(condition, now, reason)


class SqlUsersUnitOfWork(SqlUnitOfWork):
    users: SqlUserRepository
    refresh_tokens: SqlRefreshTokenRepository

    def start(self, conn: AsyncConnection) -> None:
        self.users = self.repository(SqlUserRepository(conn))
        self.refresh_tokens = SqlRefreshTokenRepository(conn)


_VIEW_COLUMNS = (
    users.c.id,
    users.c.username,
    users.c.email,
    users.c.full_name,
    users.c.role,
    users.c.is_active,
    users.c.is_approved,
    users.c.created_at,
    users.c.last_login_at,
)


def _view(row: RowMapping) -> UserView:
    return UserView(
        id=row["id"],
        username=row["username"],
        email=row["email"],
        full_name=row["full_name"],
        role=Role(row["role"]),
        is_active=row["is_active"],
        is_approved=row["is_approved"],
        created_at=row["created_at"],
        last_login_at=row["last_login_at"],
    )


class SqlUserReadModel:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, user_id: uuid.UUID) -> UserView | None:
        async with self._engine.connect() as conn:
            row = (
                (await conn.execute(sa.select(*_VIEW_COLUMNS).where(users.c.id == user_id)))
                .mappings()
                .first()
            )
        return _view(row) if row else None

    async def page(self, filter: UserListFilter) -> Page[UserView]:
        conditions: list[sa.ColumnElement[bool]] = []
        if filter.role is not None:
            conditions.append(users.c.role == filter.role.value)
        if filter.is_approved is not None:
            conditions.append(users.c.is_approved.is_(filter.is_approved))
        if filter.is_active is not None:
            conditions.append(users.c.is_active.is_(filter.is_active))
        if filter.search:
            pattern = contains_pattern(filter.search)
            conditions.append(sa.or_(users.c.username.ilike(pattern), users.c.email.ilike(pattern)))
        query = (
            sa.select(*_VIEW_COLUMNS, sa.func.count().over().label("total"))
            .where(*conditions)
            .order_by(users.c.created_at, users.c.id)
            .limit(filter.limit)
            .offset((filter.page - 1) * filter.limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        total = rows[0]["total"] if rows else await self._count(conditions)
        items = [_view(row) for row in rows]
        return Page(items=items, total=total, page=filter.page, limit=filter.limit)

    async def _count(self, conditions: list[sa.ColumnElement[bool]]) -> int:
        async with self._engine.connect() as conn:
            count = await conn.scalar(
                sa.select(sa.func.count()).select_from(users).where(*conditions)
            )
        return int(count or 0)
