"""What the groups application needs from the outside world."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Protocol, Self

from app.groups.domain.model import Group, Member


class GroupRepository(Protocol):
    def add(self, group: Group) -> None: ...
    async def get(self, group_id: uuid.UUID) -> Group | None: ...
    async def name_taken(self, owner_id: uuid.UUID, name: str) -> bool: ...
    async def remove(self, group: Group) -> None: ...


class PlayerRepository(Protocol):
    async def save_profile(self, minecraft_uuid: uuid.UUID, name: str) -> Member:
        """The shared player record of this UUID, created or renamed to `name`."""
        ...


class GroupsUnitOfWork(Protocol):
    groups: GroupRepository
    players: PlayerRepository

    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def commit(self) -> None: ...


class ProfileLookup(Protocol):
    async def lookup(self, name: str) -> tuple[uuid.UUID, str] | None:
        """The account's UUID and canonical name, or None when no account has that name.

        Raises ProfileServiceUnavailable when the service cannot be asked.
        """
        ...


class SyncRequests(Protocol):
    """Asks a server's node to bring its ops.json / whitelist.json in line (coalesced)."""

    async def request(
        self, server_id: uuid.UUID, node: str, *, check_only: bool = False
    ) -> None: ...


class ServerNodes(Protocol):
    async def nodes_of(
        self, server_ids: Iterable[uuid.UUID], *, attached_only: bool = False
    ) -> dict[uuid.UUID, str]:
        """The node of each existing server (only those with attached groups, if asked)."""
        ...
