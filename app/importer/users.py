"""V1 users: kept with their bcrypt hash (verified, then upgraded to argon2 at their first login),
role, approval and activity. mcdash usernames are unique regardless of case: a V1 name that
clashes gets a suffix, and the report says so."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from app.importer.run import Run, from_v1
from app.importer.source import NAMESPACE, v1_id
from app.shared.domain import InvalidInput
from app.shared.security import Role
from app.users.domain.events import UserRegistered
from app.users.domain.model import User, validate_email, validate_username
from app.users.infrastructure.tables import users

IMPORTER = uuid.uuid5(NAMESPACE, "mcdash import-v1")
"""Who deactivated a V1 user that was inactive there."""
ROLES = {"admin": Role.ADMIN, "operator": Role.OPERATOR, "user": Role.USER}


async def _taken(run: Run) -> tuple[dict[str, uuid.UUID], dict[str, uuid.UUID]]:
    """mcdash's users now, by lower-case username and by email."""
    async with run.engine.connect() as conn:
        rows = (await conn.execute(sa.select(users.c.id, users.c.username, users.c.email))).all()
    return {row.username.lower(): row.id for row in rows}, {row.email: row.id for row in rows}


def _free_name(name: str, taken: dict[str, uuid.UUID], row_id: object) -> str:
    for suffix in ("_v1", *(f"_v1_{row_id}_{n}" for n in range(100))):
        candidate = f"{name[: 50 - len(suffix)]}{suffix}"
        if candidate.lower() not in taken:
            return candidate
    raise InvalidInput(f"no free username for V1 user {name}")


async def import_users(run: Run) -> None:
    rows = sorted(run.source.rows("users"), key=lambda row: row["id"])
    ids = {row["id"]: v1_id("users", row["id"]) for row in rows}
    present = await run.existing(users, list(ids.values()))
    by_name, by_email = await _taken(run)
    for row in rows:
        user_id = ids[row["id"]]
        if user_id in present:
            run.users[row["id"]] = user_id
            run.report.imported("users", existed=True)
            continue
        try:
            user = _user(run, row, user_id, by_name, by_email)
        except InvalidInput as exc:
            run.report.skip("users", row["id"], exc.detail)
            continue
        if user is None:
            continue
        by_name[user.username.lower()] = user.id
        by_email[user.email] = user.id
        run.users[row["id"]] = user.id
        if not run.dry_run:
            with from_v1("users", row["id"]):
                async with run.deps("users")["uow"]() as work:
                    work.users.add(user)
                    await work.commit()
        run.report.imported("users")


def _user(
    run: Run,
    row: dict[str, Any],
    user_id: uuid.UUID,
    by_name: dict[str, uuid.UUID],
    by_email: dict[str, uuid.UUID],
) -> User | None:
    v1_name = str(row["username"])
    email = validate_email(str(row["email"]))
    if email in by_email:
        holder = by_email[email]
        if by_name.get(v1_name.lower()) == holder:
            run.users[row["id"]] = holder
            run.report.skip(
                "users",
                row["id"],
                f"username {v1_name} already exists in mcdash with the same email; what V1 "
                "user owned goes to that account",
            )
        else:
            run.report.skip("users", row["id"], f"email {email} is another mcdash user's")
        return None
    name = validate_username(v1_name)
    if name.lower() in by_name:
        name = _free_name(name, by_name, row["id"])
        run.report.note(
            f"V1 user {row['id']} {v1_name!r}: username already exists (usernames are "
            f"case-insensitive in mcdash); imported as {name!r}"
        )
    role = ROLES.get(str(row["role"]).lower())
    if role is None:
        raise InvalidInput(f"unknown V1 role {row['role']!r}")
    hashed = str(row["hashed_password"] or "")
    if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
        raise InvalidInput("its password hash is not a bcrypt hash")
    created = run.source.when(row.get("created_at")) or datetime.now(UTC)
    approved, active = bool(row["is_approved"]), bool(row["is_active"])
    user = User(
        id=user_id,
        username=name,
        email=email,
        password_hash=hashed,
        full_name=None,
        role=role,
        is_active=True,
        is_approved=approved,
        created_at=created,
    )
    user.record(
        UserRegistered(
            occurred_at=created,
            user_id=user_id,
            username=name,
            email=email,
            role=role,
            is_approved=approved,
        )
    )
    if not active:
        user.deactivate(by=IMPORTER, now=run.source.when(row.get("updated_at")) or created)
    return user
