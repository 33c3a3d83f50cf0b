"""What happens to servers; stored in `domain_events` under aggregate type `server`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import ClassVar

from app.shared.domain import DomainEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerEvent(DomainEvent):
    aggregate_type: ClassVar[str] = "server"

    server_id: uuid.UUID

    @property
    def aggregate_id(self) -> uuid.UUID:
        return self.server_id


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerCreated(ServerEvent):
    name: str
    owner_id: uuid.UUID
    node: str
    port: int
    server_type: str
    version: str
    memory_mb: int
    loader_version: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfigurationUpdated(ServerEvent):
    changed_fields: tuple[str, ...]
    restart_required: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerDeleted(ServerEvent):
    node: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerMoved(ServerEvent):
    """The stopped server's directory was copied to `to_node`, where it now lives on `port`."""

    from_node: str
    to_node: str
    port: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerStartRequested(ServerEvent):
    node: str
    requested_by: uuid.UUID | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerStarting(ServerEvent):
    """The JVM was launched; `pid` and `process_started_at` identify it across worker restarts."""

    pid: int
    process_started_at: float
    java: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerStarted(ServerEvent):
    pid: int
    detected_by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerStartFailed(ServerEvent):
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerStopRequested(ServerEvent):
    node: str
    requested_by: uuid.UUID | None
    kill: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerStopped(ServerEvent):
    exit_code: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerCrashed(ServerEvent):
    exit_code: int | None
    reason: str
    will_restart: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerPlayersChanged(ServerEvent):
    players: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsoleCommandExecuted(ServerEvent):
    command: str
    user_id: uuid.UUID | None  # None: sent by a scheduled task
    via: str


SERVER_EVENTS: tuple[type[ServerEvent], ...] = (
    ServerCreated,
    ServerConfigurationUpdated,
    ServerDeleted,
    ServerMoved,
    ServerStartRequested,
    ServerStarting,
    ServerStarted,
    ServerStartFailed,
    ServerStopRequested,
    ServerStopped,
    ServerCrashed,
    ServerPlayersChanged,
    ConsoleCommandExecuted,
)
