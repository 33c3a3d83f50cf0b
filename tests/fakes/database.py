"""The one in-memory database the fakes of servers, groups and files share, as their SQL
adapters share PostgreSQL: a server's deletion cascades to its attachments, access and history."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.files.domain.model import FileVersion
from app.groups.application.messages import SyncOutcome
from app.groups.domain.model import Group, Member
from app.servers.domain.model import Server


@dataclass(kw_only=True)
class AccessRow:
    """A row of `server_access`: the authoritative switch, what was applied, the last sync."""

    authoritative: bool = False
    applied_ops: tuple[str, ...] = ()
    applied_whitelist: tuple[str, ...] = ()
    last_sync: SyncOutcome | None = None


@dataclass(kw_only=True)
class FakeDatabase:
    servers: dict[uuid.UUID, Server] = field(default_factory=dict)
    groups: dict[uuid.UUID, Group] = field(default_factory=dict)
    players: dict[uuid.UUID, Member] = field(default_factory=dict)
    """The shared player records, by Minecraft UUID."""
    joined_at: dict[tuple[uuid.UUID, uuid.UUID], datetime] = field(default_factory=dict)
    """When a player joined a group, or a group was attached to a server (group id first)."""
    server_access: dict[uuid.UUID, AccessRow] = field(default_factory=dict)
    file_versions: list[FileVersion] = field(default_factory=list)
    usernames: Callable[[uuid.UUID], str | None] = lambda user_id: None
    """Owner names for the list views (the users fake's, once the app is built)."""
    cordoned: set[str] = field(default_factory=set)
    """The `nodes` table's cordoned nodes."""
    before_commit: list[Callable[[Any], None]] = field(default_factory=list)
    """Run at the start of every commit of servers, groups and files: a concurrent writer."""

    def player(self, player_id: uuid.UUID) -> Member | None:
        return next((p for p in self.players.values() if p.player_id == player_id), None)

    def forget_server(self, server_id: uuid.UUID) -> None:
        """ON DELETE CASCADE of server_groups, server_access and file_versions."""
        for group in self.groups.values():
            group.servers.pop(server_id, None)
        self.server_access.pop(server_id, None)
        self.file_versions[:] = [v for v in self.file_versions if v.server_id != server_id]

    def versions_of(self, server_id: uuid.UUID, path: str) -> list[FileVersion]:
        return sorted(
            (v for v in self.file_versions if v.server_id == server_id and v.path == path),
            key=lambda v: v.version,
        )
