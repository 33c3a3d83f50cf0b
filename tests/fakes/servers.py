"""In-memory stand-ins for the ports of the servers context: its unit of work and read model
over the shared fake database, and the nodes, runtime, ports, catalog and jars it talks to."""

from __future__ import annotations

import copy
import hashlib
import io
import re
import uuid
import zipfile
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from app.servers.application.messages import ServerListFilter, ServerListItem
from app.servers.domain.errors import InvalidJar, JarTooLarge, JavaRuntimeMissing, UnknownVersion
from app.servers.domain.model import ACTIVE_STATES, Server, ServerState, ServerType
from app.servers.domain.ports import (
    ConsoleEntry,
    NodeInfo,
    NodeUsage,
    NotRunningHere,
    Presence,
    ServerRuntime,
    VersionInfo,
)
from app.servers.domain.versions import ServerVersionChanged, ServerVersionRolledBack
from app.servers.infrastructure.catalog import required_java_major
from app.shared.domain import Conflict, DomainError, DomainEvent, NotFound, Page
from tests.fakes.core import FakeEventLog, FakeRepository, FakeUnitOfWork, conflict
from tests.fakes.database import FakeDatabase


class FakeServerRepository(FakeRepository[Server]):
    async def name_taken(self, owner_id: uuid.UUID, name: str) -> bool:
        return any(
            s.owner_id == owner_id and s.name.lower() == name.lower() for s in self.committed()
        )

    def __init__(self, table: dict[uuid.UUID, Server], cordons: set[str]) -> None:
        super().__init__(table)
        self.cordons = cordons
        self.locked: list[str] = []

    async def ports_in_use(self, node: str) -> set[int]:
        return {s.port for s in self.committed() if s.node == node}

    async def lock_node(self, node: str) -> None:
        self.locked.append(node)

    async def node_usage(self, *among: str) -> dict[str, NodeUsage]:
        usage: dict[str, NodeUsage] = {}
        for server in self.committed():
            if not among or server.node in among:
                seen = usage.get(server.node, NodeUsage())
                usage[server.node] = NodeUsage(
                    seen.servers + 1, seen.memory_mb + server.config.memory_mb
                )
        return usage

    async def cordoned(self) -> set[str]:
        return set(self.cordons)

    async def set_cordoned(self, node: str, cordoned: bool) -> None:
        (self.cordons.add if cordoned else self.cordons.discard)(node)


class FakeServersUnitOfWork(FakeUnitOfWork):
    """The `servers` table: unique ports, names unique per owner (case-insensitive)."""

    servers: FakeServerRepository

    def __init__(self, db: FakeDatabase, events: FakeEventLog) -> None:
        super().__init__(events, before_commit=db.before_commit)
        self.db = db

    def start(self) -> None:
        self.servers = self.repository(FakeServerRepository(self.db.servers, self.db.cordoned))

    def check(self) -> None:
        ports: set[tuple[str, int]] = set()
        names: set[tuple[uuid.UUID, str]] = set()
        for server in self.servers.staged().values():
            if (server.node, server.port) in ports:
                raise conflict("uq_servers_node_port")
            if (server.owner_id, server.name.lower()) in names:
                raise conflict("ix_servers_owner_name_lower")
            ports.add((server.node, server.port))
            names.add((server.owner_id, server.name.lower()))

    def write(self, events: Sequence[DomainEvent]) -> None:
        for server_id in self.servers.removed:
            self.db.forget_server(server_id)


def servers_uow(db: FakeDatabase, events: FakeEventLog) -> Any:
    """The factory the handlers call for each unit of work."""
    return lambda: FakeServersUnitOfWork(db, events)


class FakeServerListReadModel:
    """`server_list` and the server snapshots, read straight from the tables."""

    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    async def get(self, server_id: uuid.UUID) -> Server | None:
        stored = self._db.servers.get(server_id)
        return copy.deepcopy(stored) if stored else None

    async def active_on_node(self, node: str) -> list[Server]:
        return [
            copy.deepcopy(s)
            for s in self._db.servers.values()
            if s.node == node and s.state in ACTIVE_STATES
        ]

    async def unclaimed_starts(self, requested_before: datetime) -> list[uuid.UUID]:
        return [
            s.id
            for s in self._db.servers.values()
            if s.state is ServerState.STARTING
            and s.pid is None
            and s.state_changed_at is not None
            and s.state_changed_at < requested_before
        ]

    async def page(self, filter: ServerListFilter) -> Page[ServerListItem]:
        search = (filter.search or "").lower()
        matching = sorted(
            (
                s
                for s in self._db.servers.values()
                if filter.owner_id in (None, s.owner_id)
                and filter.status in (None, s.state.value)
                and filter.server_type in (None, s.config.server_type.value)
                and search in s.name.lower()
            ),
            key=lambda s: (-s.created_at.timestamp(), str(s.id)),
        )
        start = (filter.page - 1) * filter.limit
        return Page(
            items=[self._item(s) for s in matching[start : start + filter.limit]],
            total=len(matching),
            page=filter.page,
            limit=filter.limit,
        )

    def _item(self, server: Server) -> ServerListItem:
        return ServerListItem(
            id=server.id,
            name=server.name,
            description=server.description,
            status=server.state.value,
            status_message=server.status_message,
            port=server.port,
            node=server.node,
            server_type=server.config.server_type.value,
            version=server.config.version,
            memory_mb=server.config.memory_mb,
            player_count=len(server.players),
            max_players=server.config.max_players,
            restart_required=server.restart_required,
            created_at=server.created_at,
            owner_id=server.owner_id,
            owner_username=self._db.usernames(server.owner_id),
            backup_count=0,
            latest_backup=None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedJob:
    node: str
    job_id: str
    action: str
    """A lifecycle action (`start`, `stop`...) or the dotted function of another context's job."""
    args: tuple[str, ...]
    priority: str


class FakeNodeGateway:
    """The node workers as the API sees them: who is online, which supervisor listens for
    console lines, the jobs queued on each node and the console lines sent."""

    def __init__(self, *, online: Sequence[str] = ("local",)) -> None:
        self.online: set[str] = set(online)
        self.listening: set[str] = set(online)
        self.jobs: list[QueuedJob] = []
        self.console: list[tuple[str, uuid.UUID, str]] = []
        self.records: dict[str, NodeInfo] = {}

    async def is_online(self, node: str) -> bool:
        return node in self.online

    async def enqueue(self, node: str, action: str, server_id: uuid.UUID) -> str:
        priority = "low" if action in ("sync_files", "delete_files") else "high"
        return self._queue(node, action, (str(server_id),), priority)

    async def enqueue_job(
        self,
        node: str,
        function: str,
        *args: str,
        priority: str,
        description: str,
        job_timeout: int | None = None,
        job_id: str | None = None,
    ) -> str:
        return self._queue(node, function, args, priority, job_id=job_id)

    def _queue(
        self,
        node: str,
        action: str,
        args: tuple[str, ...],
        priority: str,
        job_id: str | None = None,
    ) -> str:
        job = QueuedJob(
            node=node,
            job_id=job_id or f"job-{len(self.jobs) + 1}",
            action=action,
            args=args,
            priority=priority,
        )
        self.jobs.append(job)
        return job.job_id

    def actions(self, server_id: uuid.UUID | None = None) -> list[str]:
        """The lifecycle actions queued, in order (for one server if given)."""
        return [j.action for j in self.jobs if server_id is None or j.args[:1] == (str(server_id),)]

    async def console_listening(self, node: str) -> bool:
        return node in self.listening

    async def send_console(self, node: str, server_id: uuid.UUID, command: str) -> None:
        self.console.append((node, server_id, command))

    async def nodes(self) -> list[NodeInfo]:
        """Online nodes, with what their `records` say (a bare record when there is none)."""
        return [self.records.get(name) or _bare_record(name) for name in sorted(self.online)]


def node_record(
    name: str, *, memory_mb: int | None = None, ports: tuple[int, int] | None = None
) -> NodeInfo:
    """What a node's worker advertises: its memory and port range when given."""
    return NodeInfo(
        name=name,
        host="fake",
        pid=1,
        last_seen=0.0,
        cpu_count=2,
        memory_total=memory_mb * 2**20 if memory_mb is not None else None,
        java=(),
        isolation={},
        url=f"http://{name}.fake:8765",
        port_range=ports,
    )


def _bare_record(name: str) -> NodeInfo:
    return node_record(name)


class FakeRuntimeStore:
    """Live status and console lines as node workers would publish them."""

    def __init__(self) -> None:
        self.statuses: dict[uuid.UUID, ServerRuntime] = {}
        self.lines: dict[uuid.UUID, list[ConsoleEntry]] = {}
        self.forgotten: list[uuid.UUID] = []

    def say(self, server_id: uuid.UUID, *lines: str) -> None:
        """Append console lines, with stream ids that grow like a Redis stream's."""
        entries = self.lines.setdefault(server_id, [])
        for line in lines:
            entries.append(ConsoleEntry(id=f"{1000 + len(entries)}-0", line=line, at=0.0))

    async def status(self, server_id: uuid.UUID) -> ServerRuntime | None:
        return self.statuses.get(server_id)

    async def console_page(
        self, server_id: uuid.UUID, *, before: str | None, limit: int
    ) -> Sequence[ConsoleEntry]:
        def key(entry_id: str) -> tuple[int, ...]:
            return tuple(int(part) for part in entry_id.split("-"))

        newest_first = reversed(self.lines.get(server_id, []))
        older = [e for e in newest_first if before is None or key(e.id) < key(before)]
        return older[:limit]

    async def forget(self, server_id: uuid.UUID) -> None:
        self.forgotten.append(server_id)
        self.statuses.pop(server_id, None)
        self.lines.pop(server_id, None)


class FakeReleaseCheck:
    """Every version is installable unless listed in `unknown`; a node with an entry in
    `java` has only that Java major, checked as the catalog would."""

    def __init__(self) -> None:
        self.unknown: set[tuple[ServerType, str]] = set()
        self.java: dict[str, int] = {}

    async def check_version(self, server_type: ServerType, version: str) -> None:
        if (server_type, version) in self.unknown:
            raise UnknownVersion(f"Minecraft {version} is not in the {server_type} catalog")

    async def check_loader(
        self, server_type: ServerType, version: str, loader_version: str | None
    ) -> str:
        """Any loader version fits; none asked for gets `recommended-<version>`."""
        await self.check_version(server_type, version)
        return loader_version or f"recommended-{version}"

    async def check_java(self, node: str, version: str) -> None:
        if node not in self.java:
            return
        required = required_java_major(version)
        if self.java[node] < required:
            raise JavaRuntimeMissing(
                f"Minecraft {version} needs Java {required}; node {node} has Java {self.java[node]}",
                required_java=required,
                installed=[self.java[node]],
            )


class FakeNodeCapacity:
    def __init__(self) -> None:
        self.memory_mb: dict[str, int] = {}

    async def memory_total_mb(self, node: str) -> int | None:
        return self.memory_mb.get(node)


class FakeNodeServers:
    """A node's servers (`NodeServers`) as plain directories under `root`: none runs unless
    `presences` says so, and a running one answers nothing; marks are kept in memory."""

    def __init__(self, root: Path, node: str = "local") -> None:
        self.root = root
        self.node = node
        self.presences: dict[uuid.UUID, Presence] = {}
        self.sent: list[tuple[uuid.UUID, str]] = []
        self.started: list[uuid.UUID] = []
        self.handed_over: list[Path] = []
        self.marks: dict[tuple[uuid.UUID, str], bytes] = {}

    def path(self, server_id: uuid.UUID) -> Path:
        return self.root / str(server_id)

    def presence(self, server_id: uuid.UUID) -> Presence:
        return self.presences.get(server_id, "stopped")

    async def converse(
        self, server_id: uuid.UUID, command: str, *, answer: Callable[[str], bool], within: float
    ) -> str:
        if self.presence(server_id) != "running":
            raise NotRunningHere(str(server_id))
        self.sent.append((server_id, command))
        raise TimeoutError(command)

    async def send(self, server_id: uuid.UUID, command: str) -> None:
        if self.presence(server_id) != "running":
            raise NotRunningHere(str(server_id))
        self.sent.append((server_id, command))

    async def start(self, server_id: uuid.UUID) -> None:
        self.started.append(server_id)
        self.presences[server_id] = "running"

    async def stop_and_wait(self, server_id: uuid.UUID, *, within: float) -> bool:
        if self.presence(server_id) == "stopped":
            return False
        self.presences[server_id] = "stopped"
        return True

    async def hand_over(self, server_id: uuid.UUID, tree: Path) -> None:
        self.handed_over.append(tree)

    async def mark(self, server_id: uuid.UUID, name: str, content: bytes) -> None:
        self.marks[(server_id, name)] = content

    async def unmark(self, server_id: uuid.UUID, name: str) -> None:
        self.marks.pop((server_id, name), None)

    async def marked(self, server_id: uuid.UUID, name: str) -> bool:
        return (server_id, name) in self.marks


_MAIN_CLASS = re.compile(rb"^Main-Class:[ \t]*\S", re.MULTILINE)


def runnable_jar(main_class: str | None = "net.example.Main") -> bytes:
    """A small zip with a manifest, naming a Main-Class unless None."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as jar:
        manifest = "Manifest-Version: 1.0\n"
        if main_class:
            manifest += f"Main-Class: {main_class}\n"
        jar.writestr("META-INF/MANIFEST.MF", manifest)
    return buffer.getvalue()


class FakeJarStore:
    """Keeps uploaded jars by SHA-256 after the checks of the jar cache: size, zip, Main-Class."""

    def __init__(self, *, max_upload_bytes: int = 1024 * 1024) -> None:
        self.max_upload_bytes = max_upload_bytes
        self.jars: dict[str, bytes] = {}
        self.nodes: dict[str, set[str]] = {}  # which nodes hold each jar

    async def store_upload(
        self, node: str, server_id: uuid.UUID, chunks: AsyncIterable[bytes]
    ) -> tuple[str, int]:
        content = b""
        async for chunk in chunks:
            content += chunk
            if len(content) > self.max_upload_bytes:
                raise JarTooLarge(
                    f"upload exceeds the limit of {self.max_upload_bytes} bytes",
                    limit=self.max_upload_bytes,
                )
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as jar:
                manifest = jar.read("META-INF/MANIFEST.MF")
        except (zipfile.BadZipFile, KeyError) as exc:
            raise InvalidJar(f"not a runnable jar ({exc})") from exc
        if not _MAIN_CLASS.search(manifest):
            raise InvalidJar("not a runnable jar: the manifest names no Main-Class")
        sha256 = hashlib.sha256(content).hexdigest()
        self.jars[sha256] = content
        self.nodes.setdefault(sha256, set()).add(node)
        return sha256, len(content)


class FakeServerTrees:
    """Servers' trees on each node as path -> content, copied into a staging area and then
    committed; `tamper` changes what arrives, `during_copy` runs while the files travel."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, uuid.UUID], dict[str, bytes]] = {}
        self.staged: dict[tuple[str, uuid.UUID], dict[str, bytes]] = {}
        self.jars: dict[str, set[str]] = {}  # which nodes hold each jar, by SHA-256
        self.discarded: list[tuple[str, uuid.UUID, bool]] = []
        self.tamper = False
        self.during_copy: Callable[[], Awaitable[None]] | None = None

    async def copy(self, server_id: uuid.UUID, *, source: str, target: str) -> str:
        if (target, server_id) in self.files:
            raise Conflict(f"server {server_id} already has a directory on node {target}")
        tree = dict(self.files.get((source, server_id), {}))
        if self.tamper:
            tree["tampered"] = b"!"
        self.staged[(target, server_id)] = tree
        if self.during_copy is not None:
            await self.during_copy()
        return _digest(tree)

    async def digest(self, node: str, server_id: uuid.UUID) -> str:
        return _digest(self.files.get((node, server_id), {}))

    async def copy_jar(self, server_id: uuid.UUID, sha256: str, *, source: str, target: str) -> str:
        if source not in self.jars.get(sha256, set()):
            raise NotFound(f"node {source} has no jar {sha256}")
        self.jars[sha256].add(target)
        return sha256

    async def commit(self, node: str, server_id: uuid.UUID) -> None:
        self.files[(node, server_id)] = self.staged.pop((node, server_id))

    async def discard(self, node: str, server_id: uuid.UUID, *, live: bool) -> None:
        self.discarded.append((node, server_id, live))
        self.staged.pop((node, server_id), None)
        if live:
            self.files.pop((node, server_id), None)


def _digest(tree: dict[str, bytes]) -> str:
    return hashlib.sha256(repr(sorted(tree.items())).encode()).hexdigest()


class FakeVersionCatalog:
    def __init__(self) -> None:
        self.known: dict[str, list[VersionInfo]] = {
            "vanilla": [
                VersionInfo(server_type="vanilla", version=v, kind="release", released_at=None)
                for v in ("1.21.4", "1.21.1", "1.20.4")
            ],
            "paper": [
                VersionInfo(server_type="paper", version="1.21.4", kind="release", released_at=None)
            ],
        }

    async def versions(self, server_type: str) -> list[VersionInfo]:
        if server_type not in self.known:
            raise UnknownVersion(f"unknown server type {server_type!r}")
        return list(self.known[server_type])


class FakeSafetyBackups:
    """Backups that complete at once (or fail with `fail`), and restores it only records."""

    def __init__(self) -> None:
        self.taken: list[tuple[uuid.UUID, str]] = []
        self.restored: list[tuple[uuid.UUID, uuid.UUID]] = []
        self.fail: str | None = None
        self.refuse_restore: DomainError | None = None

    async def take(self, actor: object, server_id: uuid.UUID, reason: str) -> uuid.UUID:
        if self.fail is not None:
            raise Conflict(f"the safety backup failed ({self.fail}); nothing was changed")
        self.taken.append((server_id, reason))
        return uuid.uuid5(server_id, f"backup-{len(self.taken)}")

    async def restore(self, actor: object, server_id: uuid.UUID, backup_id: uuid.UUID) -> str:
        if self.refuse_restore is not None:
            raise self.refuse_restore
        self.restored.append((server_id, backup_id))
        return f"restore-{len(self.restored)}"


class FakeVersionHistory:
    """The last version change of a server from the committed events, as the store has them."""

    def __init__(self, events: FakeEventLog) -> None:
        self._events = events

    async def last_change(self, server_id: uuid.UUID) -> ServerVersionChanged | None:
        for event in reversed(self._events.committed):
            if isinstance(event, ServerVersionChanged | ServerVersionRolledBack) and (
                event.server_id == server_id
            ):
                return event if isinstance(event, ServerVersionChanged) else None
        return None


@dataclass(kw_only=True)
class ServersFakes:
    """The servers context's adapters, named as its `wire()` names them."""

    uow: Any
    read_model: FakeServerListReadModel
    nodes: FakeNodeGateway = field(default_factory=FakeNodeGateway)
    runtime: FakeRuntimeStore = field(default_factory=FakeRuntimeStore)
    releases: FakeReleaseCheck = field(default_factory=FakeReleaseCheck)
    capacity: FakeNodeCapacity = field(default_factory=FakeNodeCapacity)
    jars: FakeJarStore = field(default_factory=FakeJarStore)
    trees: FakeServerTrees = field(default_factory=FakeServerTrees)
    catalog: FakeVersionCatalog = field(default_factory=FakeVersionCatalog)
    safety_backups: FakeSafetyBackups = field(default_factory=FakeSafetyBackups)
    version_history: FakeVersionHistory

    @classmethod
    def build(cls, db: FakeDatabase, events: FakeEventLog) -> ServersFakes:
        return cls(
            uow=servers_uow(db, events),
            read_model=FakeServerListReadModel(db),
            version_history=FakeVersionHistory(events),
        )
