"""What the servers application needs from the outside world."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, Self

from app.servers.domain.model import Server
from app.shared.domain import DomainEvent


@dataclass(frozen=True, slots=True)
class NodeUsage:
    servers: int = 0
    memory_mb: int = 0


class ServerRepository(Protocol):
    def add(self, server: Server) -> None: ...
    async def get(self, server_id: uuid.UUID) -> Server | None: ...
    async def name_taken(self, owner_id: uuid.UUID, name: str) -> bool: ...
    async def ports_in_use(self, node: str) -> set[int]: ...
    async def remove(self, server: Server) -> None: ...
    async def lock_node(self, node: str) -> None:
        """Hold placement on `node` (its ports, its memory) until the transaction ends."""
        ...

    async def node_usage(self, *among: str) -> dict[str, NodeUsage]:
        """Servers placed on each node (or on the nodes `among` only) and the memory they are
        given."""
        ...

    async def cordoned(self) -> set[str]: ...
    async def set_cordoned(self, node: str, cordoned: bool) -> None: ...


class ServersUnitOfWork(Protocol):
    servers: ServerRepository

    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def commit(self) -> None: ...
    def record_event(self, event: DomainEvent) -> None:
        """Store an event that changes no aggregate state (an audited console command)."""
        ...


class NodeGateway(Protocol):
    """Reaches the worker of a node: lifecycle jobs on its queue, console lines over pub/sub;
    and which nodes are online, with what they advertise."""

    async def nodes(self) -> Sequence[NodeInfo]: ...
    async def is_online(self, node: str) -> bool: ...
    async def enqueue(self, node: str, action: str, server_id: uuid.UUID) -> str: ...
    async def console_listening(self, node: str) -> bool: ...
    async def send_console(self, node: str, server_id: uuid.UUID, command: str) -> None: ...


class PortProbe(Protocol):
    def is_free(self, port: int) -> bool: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionInfo:
    server_type: str
    version: str
    kind: str
    released_at: str | None
    loader_versions: tuple[str, ...] = ()
    """For a mod loader type: the loader versions that fit this Minecraft version, newest first."""
    recommended_loader: str | None = None


class VersionCatalog(Protocol):
    """The installable versions of a server type, from its upstream (502 when it fails)."""

    async def versions(self, server_type: str) -> list[VersionInfo]: ...


class JarStore(Protocol):
    async def store_upload(
        self, node: str, server_id: uuid.UUID, chunks: AsyncIterable[bytes]
    ) -> tuple[str, int]:
        """Check and keep an uploaded jar on the server's node; its SHA-256 and size."""
        ...


class ServerTrees(Protocol):
    """A stopped server's directory (without its jar link and the worker's `.mcdash/`) copied
    from one node to another through their agents, staged there until committed."""

    async def copy(self, server_id: uuid.UUID, *, source: str, target: str) -> str:
        """Stream the tree from `source` into a staging directory on `target`; the digest of
        what `target` received."""
        ...

    async def digest(self, node: str, server_id: uuid.UUID) -> str:
        """The digest of the server's tree as `node` holds it (paths, types, sizes, contents)."""
        ...

    async def copy_jar(self, server_id: uuid.UUID, sha256: str, *, source: str, target: str) -> str:
        """Stream a cached jar from `source` into `target`'s jar cache; the SHA-256 it stored."""
        ...

    async def commit(self, node: str, server_id: uuid.UUID) -> None:
        """Make the staged copy on `node` the server's directory there."""
        ...

    async def discard(self, node: str, server_id: uuid.UUID, *, live: bool) -> None:
        """Remove the staged copy on `node` (and, with `live`, its committed directory)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeInfo:
    """What an online node's worker advertises: its machine and how it confines servers."""

    name: str
    host: str
    pid: int
    last_seen: float
    cpu_count: int | None
    memory_total: int | None
    java: tuple[dict[str, object], ...]
    isolation: dict[str, object]
    url: str | None = None
    version: str | None = None
    disk_free: int | None = None
    memory_committed_mb: int | None = None
    servers_running: int | None = None
    port_range: tuple[int, int] | None = None

    @property
    def memory_total_mb(self) -> int | None:
        return self.memory_total // 2**20 if self.memory_total is not None else None


class NodeDirectory(Protocol):
    async def nodes(self) -> Sequence[NodeInfo]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerRuntime:
    """Live facts the node worker samples: process, resources and players."""

    state: str
    pid: int | None = None
    uptime_seconds: float | None = None
    players_online: int = 0
    players_max: int | None = None
    players: tuple[str, ...] = ()
    cpu_percent: float | None = None
    rss_bytes: int | None = None
    sampled_at: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsoleEntry:
    id: str
    line: str
    at: float


class RuntimeStore(Protocol):
    """Where workers publish a server's live status and console, and the API reads them."""

    async def status(self, server_id: uuid.UUID) -> ServerRuntime | None: ...
    async def console_page(
        self, server_id: uuid.UUID, *, before: str | None, limit: int
    ) -> Sequence[ConsoleEntry]: ...
    async def forget(self, server_id: uuid.UUID) -> None: ...


# The node side: what a node's servers offer the node-side code of other contexts (backups take
# snapshots and restore, groups rewrite ops/whitelist and talk to the console), and the hooks
# those contexts run around a server's lifecycle. One worker per node implements them.


class NotRunningHere(RuntimeError):
    """The server has no running JVM under this node's supervisor."""


class NoAnswer(RuntimeError):
    """The server did not answer a console command in time."""


LaunchHook = Callable[[Server, Path], Awaitable[None]]
AdoptHook = Callable[[uuid.UUID], Awaitable[None]]
SampleHook = Callable[[uuid.UUID, ServerRuntime], None]
Presence = Literal["stopped", "running", "busy"]


@dataclass
class NodeHooks:
    """What other contexts run on a node around the servers' lifecycle.

    before_launch runs after the settings files are written and before the JVM starts (a
    failure there fails the start), with the server's directory; after_adopt runs for each
    running server a restarted worker takes over; after_sample sees each status sample (it
    must be quick: it runs on the sampler's loop, and a failure there is logged and ignored).
    """

    before_launch: list[LaunchHook] = field(default_factory=list)
    after_adopt: list[AdoptHook] = field(default_factory=list)
    after_sample: list[SampleHook] = field(default_factory=list)


class NodeServers(Protocol):
    """This node's servers, as backups and groups see them on the node."""

    @property
    def node(self) -> str: ...

    def path(self, server_id: uuid.UUID) -> Path:
        """The server's directory on this node (it may not exist yet)."""
        ...

    def presence(self, server_id: uuid.UUID) -> Presence:
        """`running` once ready, `busy` while starting or stopping, `stopped` otherwise."""
        ...

    async def converse(
        self, server_id: uuid.UUID, command: str, *, answer: Callable[[str], bool], within: float
    ) -> str:
        """The first console message `answer` accepts after `command` (NotRunningHere, NoAnswer)."""
        ...

    async def send(self, server_id: uuid.UUID, command: str) -> None: ...

    async def start(self, server_id: uuid.UUID) -> None: ...

    async def stop_and_wait(self, server_id: uuid.UUID, *, within: float) -> bool:
        """Stop a running server and wait for its exit (TimeoutError); False if none ran."""
        ...

    async def hand_over(self, server_id: uuid.UUID, tree: Path) -> None:
        """Give a tree about to become the server's directory to the server's own account."""
        ...

    async def mark(self, server_id: uuid.UUID, name: str, content: bytes) -> None:
        """A note in the worker's private directory of the server, out of the server's reach."""
        ...

    async def unmark(self, server_id: uuid.UUID, name: str) -> None: ...

    async def marked(self, server_id: uuid.UUID, name: str) -> bool: ...
