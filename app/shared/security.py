"""Roles, permissions and the authenticated principal, shared by every context."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from typing import Protocol


class Role(enum.StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    USER = "user"


class Permission(enum.StrEnum):
    ADMIN_ALL = "admin:*"
    USER_READ = "user:read"
    USER_WRITE = "user:write"
    SERVER_READ = "server:read"
    SERVER_WRITE = "server:write"
    SERVER_CONSOLE = "server:console"
    # Installing code the game server will run: a custom jar, a .jar into plugins/ or mods/.
    SERVER_CODE = "server:code"
    GROUP_READ = "group:read"
    GROUP_WRITE = "group:write"
    BACKUP_READ = "backup:read"
    BACKUP_WRITE = "backup:write"
    FILE_READ = "file:read"
    FILE_WRITE = "file:write"


_OWNER_PERMISSIONS = frozenset(
    {
        Permission.SERVER_READ,
        Permission.SERVER_WRITE,
        Permission.SERVER_CONSOLE,
        Permission.GROUP_READ,
        Permission.GROUP_WRITE,
        Permission.BACKUP_READ,
        Permission.BACKUP_WRITE,
        Permission.FILE_READ,
        Permission.FILE_WRITE,
    }
)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.USER: _OWNER_PERMISSIONS,
    Role.OPERATOR: _OWNER_PERMISSIONS | {Permission.USER_READ, Permission.SERVER_CODE},
    Role.ADMIN: frozenset(Permission),
}


def role_permissions(role: Role, *, users_install_code: bool = False) -> frozenset[Permission]:
    """A role's permissions; `users_install_code` (a setting) grants server:code to users."""
    granted = ROLE_PERMISSIONS[role]
    if users_install_code and role is Role.USER:
        return granted | {Permission.SERVER_CODE}
    return granted


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """The user behind a request, with the permissions of their current role."""

    user_id: uuid.UUID
    username: str
    role: Role
    session_id: uuid.UUID
    permissions: frozenset[Permission] = frozenset()

    def __post_init__(self) -> None:
        if not self.permissions:
            object.__setattr__(self, "permissions", ROLE_PERMISSIONS[self.role])

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def has(self, permission: Permission) -> bool:
        perms = self.permissions
        return Permission.ADMIN_ALL in perms or permission in perms

    def sees_everything(self) -> bool:
        """Operators and admins act on every owner's resources; users only on their own."""
        return self.role in (Role.ADMIN, Role.OPERATOR)


class Authenticator(Protocol):
    async def authenticate(self, access_token: str, *, fresh: bool = False) -> Principal:
        """`fresh`: ask again, even if this process checked the token a moment ago."""
        ...
