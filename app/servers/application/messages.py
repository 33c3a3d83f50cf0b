"""Commands and queries of the servers context, and the views its queries return."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypedDict

from app.servers.domain.model import RestartPolicy, Server, ServerType
from app.servers.domain.ports import ConsoleEntry, NodeInfo, ServerRuntime, VersionInfo
from app.shared.bus import Command, Query
from app.shared.domain import Page
from app.shared.security import Principal


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateServer(Command[uuid.UUID]):
    owner: Principal
    name: str
    description: str | None
    server_type: ServerType
    version: str
    memory_mb: int
    loader_version: str | None = None
    port: int | None = None
    max_players: int = 20
    motd: str = "A Minecraft Server"
    online_mode: bool = True
    whitelist: bool = False
    eula_accepted: bool = False
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    node: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateServer(Command[list[str]]):
    actor: Principal
    server_id: uuid.UUID
    description: str | None = None
    port: int | None = None
    version: str | None = None
    memory_mb: int | None = None
    max_players: int | None = None
    motd: str | None = None
    online_mode: bool | None = None
    whitelist: bool | None = None
    eula_accepted: bool | None = None
    restart: RestartPolicy | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadServerJar(Command["StoredJar"]):
    """The jar of a custom server, streamed: checked, kept by checksum, then made the server's."""

    actor: Principal
    server_id: uuid.UUID
    chunks: AsyncIterator[bytes]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredJar:
    sha256: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteServer(Command[None]):
    actor: Principal
    server_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class StartServer(Command["LifecycleResult"]):
    actor: Principal | None  # None: the system (a scheduled task)
    server_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class StopServer(Command["LifecycleResult"]):
    actor: Principal | None  # None: the system (a scheduled task)
    server_id: uuid.UUID
    kill: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartServer(Command["LifecycleResult"]):
    actor: Principal | None  # None: the system (a scheduled task)
    server_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class SendConsoleCommand(Command[str]):
    actor: Principal | None  # None: the system (a scheduled task)
    server_id: uuid.UUID
    command: str
    via: str = "rest"


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleResult:
    server_id: uuid.UUID
    state: str
    job_id: str | None
    node: str
    node_online: bool
    message: str


# Commands sent by the node worker as it observes the JVM.


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordProcessLaunched(Command[None]):
    server_id: uuid.UUID
    pid: int
    process_started_at: float
    java: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordServerReady(Command[None]):
    server_id: uuid.UUID
    detected_by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordStartFailure(Command[None]):
    server_id: uuid.UUID
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordProcessExit(Command[bool]):
    """Returns whether the restart policy asks for a new start."""

    server_id: uuid.UUID
    exit_code: int | None
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordPlayers(Command[None]):
    server_id: uuid.UUID
    players: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpireStaleStarts(Command[list[uuid.UUID]]):
    """Fail starts that no worker picked up within the job lifetime, so none stays `starting`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestAutomaticStart(Command[None]):
    """The restart policy starts a crashed server again."""

    server_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkRestartRequired(Command[bool]):
    """A file of a running server was edited; returns whether the flag was newly set."""

    server_id: uuid.UUID
    changed_file: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestMaintenanceStop(Command[bool]):
    """The node stops a running server for maintenance (a restore); False if it was not running."""

    server_id: uuid.UUID
    reason: str


# Queries


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerListFilter:
    owner_id: uuid.UUID | None = None
    status: str | None = None
    server_type: str | None = None
    search: str | None = None
    page: int = 1
    limit: int = 20


class ServerListItem(TypedDict):
    """A row of the server list as the read model keeps it: a plain mapping, so a page is built
    from its rows and serialized with no object per row in between (the dashboard's hottest
    read)."""

    id: uuid.UUID
    name: str
    description: str | None
    status: str
    status_message: str | None
    port: int
    node: str
    server_type: str
    version: str
    memory_mb: int
    player_count: int
    max_players: int
    restart_required: bool
    created_at: datetime
    owner_id: uuid.UUID
    owner_username: str | None
    backup_count: int
    latest_backup: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class GetServer(Query[Server]):
    actor: Principal | None
    server_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class ListActiveNodeServers(Query[list[Server]]):
    """Servers a node's worker should be watching: starting, running or stopping there."""

    node: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ListServers(Query[Page[ServerListItem]]):
    actor: Principal
    filter: ServerListFilter


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerStatusView:
    server_id: uuid.UUID
    state: str
    status_message: str | None
    restart_required: bool
    runtime: ServerRuntime | None
    started_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class GetServerStatus(Query[ServerStatusView]):
    actor: Principal
    server_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeView:
    """A node as operators see it: what its worker advertises (when online), what the
    database holds about it (servers placed, memory given) and whether it is cordoned."""

    name: str
    online: bool
    cordoned: bool
    server_count: int
    memory_allocated_mb: int
    info: NodeInfo | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ListNodes(Query[Sequence[NodeView]]):
    actor: Principal


@dataclass(frozen=True, slots=True, kw_only=True)
class GetNode(Query[NodeView]):
    actor: Principal
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MoveServer(Command[None]):
    """Copy a stopped server's directory (and its custom jar) to `node`, and run it there."""

    actor: Principal
    server_id: uuid.UUID
    node: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CordonNode(Command[NodeView]):
    """Cordoned, a node takes no new servers (created or moved); its own keep running."""

    actor: Principal
    name: str
    cordoned: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ListVersions(Query[Sequence[VersionInfo]]):
    actor: Principal
    server_type: ServerType
    limit: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GetConsoleLog(Query[Sequence[ConsoleEntry]]):
    actor: Principal
    server_id: uuid.UUID
    before: str | None
    limit: int
