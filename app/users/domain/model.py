"""The user aggregate, its value rules, and refresh-token sessions."""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from email_validator import EmailNotValidError
from email_validator import validate_email as check_email_syntax

from app.shared.domain import Aggregate, Conflict, Forbidden, InvalidInput
from app.shared.security import Role
from app.users.domain.events import (
    UserApproved,
    UserDeactivated,
    UserLoggedIn,
    UserLoggedOut,
    UserProfileUpdated,
    UserReactivated,
    UserRegistered,
    UserRoleChanged,
    UserSessionsRevoked,
)

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{2,49}")
PASSWORD_MIN, PASSWORD_MAX = 10, 128
FULL_NAME_MAX = 255
COMMON_PASSWORDS = frozenset(
    {
        "password", "password1", "password12", "password123", "passw0rd", "qwerty", "qwertyuiop",
        "1234567890", "12345678", "123456789", "letmein", "welcome", "welcome1", "iloveyou",
        "admin", "administrator", "minecraft", "minecraft1", "changeme", "abc123",
    }
)  # fmt: skip


def validate_username(username: str) -> str:
    if not USERNAME_PATTERN.fullmatch(username):
        raise InvalidInput(
            "username must be 3-50 characters: ASCII letters, digits, '_', '.' or '-', "
            "starting with a letter or digit",
            field="username",
        )
    return username


def validate_email(email: str) -> str:
    """Syntax-check an address (no DNS lookups) and normalize it for uniqueness."""
    if len(email) > 255:
        raise InvalidInput("email must be at most 255 characters", field="email")
    try:
        checked = check_email_syntax(email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(f"email is not valid: {exc}", field="email") from exc
    return checked.normalized.lower()


def validate_password(password: str, *, username: str) -> str:
    """A password policy that refuses short, huge, one-class or obvious passwords."""
    if len(password) < PASSWORD_MIN:
        raise InvalidInput(f"password must be at least {PASSWORD_MIN} characters", field="password")
    if len(password) > PASSWORD_MAX:
        raise InvalidInput(f"password must be at most {PASSWORD_MAX} characters", field="password")
    if "\x00" in password:
        raise InvalidInput("password must not contain NUL characters", field="password")
    classes = sum(
        (
            any(ch.islower() for ch in password),
            any(ch.isupper() for ch in password),
            any(ch.isdigit() for ch in password),
            any(not ch.isalnum() for ch in password),
        )
    )
    if classes < 2:
        raise InvalidInput(
            "password must mix at least two of: lower case, upper case, digits, symbols",
            field="password",
        )
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS or username.lower() in lowered:
        raise InvalidInput("password is too easy to guess", field="password")
    return password


def validate_full_name(full_name: str | None) -> str | None:
    if full_name is None:
        return None
    full_name = full_name.strip()
    if len(full_name) > FULL_NAME_MAX:
        raise InvalidInput(
            f"full_name must be at most {FULL_NAME_MAX} characters", field="full_name"
        )
    if any(unicodedata.category(ch) == "Cc" for ch in full_name):
        raise InvalidInput("full_name must not contain control characters", field="full_name")
    return full_name or None


@dataclass(kw_only=True, eq=False)
class User(Aggregate):
    username: str
    email: str
    password_hash: str
    full_name: str | None
    role: Role
    is_active: bool
    is_approved: bool
    created_at: datetime
    last_login_at: datetime | None = None

    @classmethod
    def register(
        cls,
        *,
        user_id: uuid.UUID,
        username: str,
        email: str,
        password_hash: str,
        full_name: str | None,
        first_user: bool,
        now: datetime,
    ) -> User:
        """The first user becomes an approved admin; later ones wait for approval."""
        user = cls(
            id=user_id,
            username=username,
            email=email,
            password_hash=password_hash,
            full_name=full_name,
            role=Role.ADMIN if first_user else Role.USER,
            is_active=True,
            is_approved=first_user,
            created_at=now,
        )
        user.record(
            UserRegistered(
                occurred_at=now,
                user_id=user_id,
                username=username,
                email=email,
                role=user.role,
                is_approved=user.is_approved,
            )
        )
        return user

    @property
    def can_log_in(self) -> bool:
        return self.is_active and self.is_approved

    def ensure_can_log_in(self) -> None:
        if not self.is_active:
            raise Forbidden("this account is deactivated", reason="deactivated")
        if not self.is_approved:
            raise Forbidden(
                "this account is waiting for an administrator's approval", reason="unapproved"
            )

    def approve(self, *, by: uuid.UUID, now: datetime) -> None:
        if by == self.id:
            raise Forbidden("you cannot approve your own account")
        if self.is_approved:
            raise Conflict(f"user {self.username} is already approved")
        self.is_approved = True
        self.record(UserApproved(occurred_at=now, user_id=self.id, approved_by=by))

    def change_role(self, role: Role, *, by: uuid.UUID, now: datetime) -> None:
        if role is self.role:
            raise Conflict(f"user {self.username} already has role {role.value}")
        old, self.role = self.role, role
        self.record(
            UserRoleChanged(
                occurred_at=now, user_id=self.id, old_role=old, new_role=role, changed_by=by
            )
        )

    def deactivate(self, *, by: uuid.UUID, now: datetime) -> None:
        if by == self.id:
            raise Forbidden("you cannot deactivate your own account")
        if not self.is_active:
            raise Conflict(f"user {self.username} is already deactivated")
        self.is_active = False
        self.record(UserDeactivated(occurred_at=now, user_id=self.id, deactivated_by=by))

    def reactivate(self, *, by: uuid.UUID, now: datetime) -> None:
        if self.is_active:
            raise Conflict(f"user {self.username} is already active")
        self.is_active = True
        self.record(UserReactivated(occurred_at=now, user_id=self.id, reactivated_by=by))

    def update_profile(
        self, *, email: str | None, full_name: str | None, password_hash: str | None, now: datetime
    ) -> None:
        changed: list[str] = []
        if email is not None and email != self.email:
            self.email = email
            changed.append("email")
        if full_name is not None and full_name != self.full_name:
            self.full_name = full_name
            changed.append("full_name")
        if password_hash is not None:
            self.password_hash = password_hash
            changed.append("password")
        if changed:
            self.record(
                UserProfileUpdated(occurred_at=now, user_id=self.id, changed_fields=tuple(changed))
            )

    def logged_in(self, *, session_id: uuid.UUID, now: datetime) -> None:
        self.last_login_at = now
        self.record(UserLoggedIn(occurred_at=now, user_id=self.id, session_id=session_id))

    def sessions_revoked(self, *, session_id: uuid.UUID, reason: str, now: datetime) -> None:
        self.record(
            UserSessionsRevoked(
                occurred_at=now, user_id=self.id, session_id=session_id, reason=reason
            )
        )

    def logged_out(self, *, session_id: uuid.UUID, now: datetime) -> None:
        self.record(UserLoggedOut(occurred_at=now, user_id=self.id, session_id=session_id))


@dataclass(kw_only=True)
class RefreshToken:
    """One issued refresh token; tokens of one login share a family that reuse revokes whole."""

    id: uuid.UUID
    user_id: uuid.UUID
    family_id: uuid.UUID
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    replaced_by: uuid.UUID | None = None
    revoke_reason: str | None = field(default=None)
