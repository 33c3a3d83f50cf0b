"""In-memory stand-ins for the ports of the backups context: its unit of work and read model,
the servers it asks about, node jobs, progress, the node's storage and the API's archive store."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Self

from app.backups.domain.errors import BackupBusy
from app.backups.domain.model import Backup, Compression
from app.backups.domain.ports import ArchiveDownload, ArchiveFacts, BackupSummary, ServerRef
from app.backups.domain.schedule import BackupSchedule
from app.backups.infrastructure.control import BusServerControl
from app.backups.infrastructure.progress import Tracker
from app.servers.domain.console import ConsolePolicy
from app.shared.domain import DomainError, DomainEvent, NotFound, Page
from app.shared.security import Principal
from tests.fakes.core import FakeEventLog


class FakeBackupsUnitOfWork:
    """Backups, schedules and activity locks in memory, and the factory of units of work over
    them: each unit of work works on a deep copy and replaces the stored state on commit.

    `before_commit(session)` may raise, as a database that went away would.
    """

    def __init__(self, events: FakeEventLog | None = None) -> None:
        self.stored_backups: dict[uuid.UUID, Any] = {}
        self.stored_schedules: dict[uuid.UUID, Any] = {}
        self.stored_locks: dict[uuid.UUID, tuple[str, uuid.UUID]] = {}
        self.committed_events: list[DomainEvent] = []
        self.events = events
        self.before_commit: Callable[[FakeBackupsSession], None] | None = None

    def __call__(self) -> FakeBackupsSession:
        return FakeBackupsSession(self)

    def events_of[E: DomainEvent](self, event_type: type[E]) -> list[E]:
        return [e for e in self.committed_events if isinstance(e, event_type)]


class FakeBackupsSession:
    def __init__(self, store: FakeBackupsUnitOfWork) -> None:
        self._store = store
        self._loose: list[DomainEvent] = []

    async def __aenter__(self) -> Self:
        self.backups = _FakeAggregates(copy.deepcopy(self._store.stored_backups))
        self.schedules = _FakeAggregates(copy.deepcopy(self._store.stored_schedules))
        self.locks = _FakeLocks(dict(self._store.stored_locks))
        return self

    async def __aexit__(self, *exc: object) -> None:
        del self.backups, self.schedules, self.locks

    def record_event(self, event: DomainEvent) -> None:
        self._loose.append(event)

    async def commit(self) -> None:
        store = self._store
        if store.before_commit is not None:
            store.before_commit(self)
        events: list[DomainEvent] = []
        for repository, stored in (
            (self.backups, store.stored_backups),
            (self.schedules, store.stored_schedules),
        ):
            for item in [*repository.items.values(), *repository.removed]:
                events.extend(item.collect_events())
            repository.removed.clear()
            stored.clear()
            stored.update(copy.deepcopy(repository.items))
        store.stored_locks = dict(self.locks.rows)
        events.extend(self._loose)
        self._loose = []
        store.committed_events.extend(events)
        if store.events is not None:
            await store.events.append(events)


class _FakeAggregates:
    def __init__(self, items: dict[uuid.UUID, Any]) -> None:
        self.items = items
        self.removed: list[Any] = []

    async def get(self, item_id: uuid.UUID, *, lock: bool = False) -> Any:
        return self.items.get(item_id)

    def add(self, item: Any) -> None:
        self.items[item.id] = item

    async def remove(self, item: Any) -> None:
        self.removed.append(self.items.pop(item.id))

    async def unfinished(self, *, node: str | None = None) -> list[Any]:
        return [b for b in self.items.values() if not b.finished and node in (None, b.node)]

    async def scheduled_completed(self, schedule_id: uuid.UUID) -> list[tuple[uuid.UUID, datetime]]:
        return [
            (b.id, b.created_at)
            for b in self.items.values()
            if b.schedule_id == schedule_id
            and b.status.value == "completed"
            and b.backup_type.value == "scheduled"
        ]

    async def due(self, now: datetime) -> list[Any]:
        return [s for s in self.items.values() if s.is_active and s.next_run and s.next_run <= now]

    async def warning_soon(self, until: datetime) -> list[Any]:
        return [
            s
            for s in self.items.values()
            if s.is_active
            and s.next_run
            and s.next_run <= until
            and s.task.action.value in ("restart", "stop")
            and s.task.warnings
        ]


class _FakeLocks:
    def __init__(self, rows: dict[uuid.UUID, tuple[str, uuid.UUID]]) -> None:
        self.rows = rows
        self.acquired_at: dict[uuid.UUID, datetime] = {}

    async def acquire(
        self, server_id: uuid.UUID, *, operation: str, backup_id: uuid.UUID, node: str
    ) -> None:
        if server_id in self.rows:
            raise BackupBusy(f"a {self.rows[server_id][0]} of this server is in progress")
        self.rows[server_id] = (operation, backup_id)

    async def release(self, server_id: uuid.UUID, *, backup_id: uuid.UUID | None = None) -> None:
        if server_id in self.rows and backup_id in (None, self.rows[server_id][1]):
            del self.rows[server_id]

    async def holder(self, server_id: uuid.UUID) -> tuple[str, uuid.UUID] | None:
        return self.rows.get(server_id)

    async def restores_before(self, cutoff: datetime) -> list[tuple[uuid.UUID, uuid.UUID]]:
        return []


class FakeServerLookup:
    """Servers by id; `owner_only` makes other actors get NotFound like the real query."""

    def __init__(self) -> None:
        self.servers: dict[uuid.UUID, ServerRef] = {}

    def add(self, *, running: bool = True, node: str = "local", players: int = 0) -> uuid.UUID:
        server_id = uuid.uuid4()
        self.servers[server_id] = ServerRef(
            players_online=players,
            id=server_id,
            name=f"s-{server_id.hex[:4]}",
            owner_id=uuid.uuid4(),
            node=node,
            running=running,
        )
        return server_id

    async def find(self, actor: Principal | None, server_id: uuid.UUID) -> ServerRef:
        server = self.servers.get(server_id)
        if server is None or (
            actor is not None and not actor.sees_everything() and actor.user_id != server.owner_id
        ):
            raise NotFound(f"server {server_id} not found")
        return server


class FakeServerControl:
    """Records what scheduled tasks asked of the servers context; the console policy is the
    real one (denying `reload` and `restart` as the defaults do); `failure` makes every
    action fail with it."""

    def __init__(self, denied: tuple[str, ...] = ("reload", "restart")) -> None:
        self.performed: list[tuple[str, uuid.UUID, str | None]] = []
        self.failure: DomainError | None = None
        self._policy = BusServerControl(None, ConsolePolicy.of(denied))  # type: ignore[arg-type]

    def check_command(self, command: str) -> str:
        return self._policy.check_command(command)

    async def perform(self, action: str, server_id: uuid.UUID, *, command: str | None) -> str:
        if self.failure is not None:
            raise self.failure
        self.performed.append((action, server_id, command))
        return f"{action} queued"


class FakeBackupJobs:
    def __init__(self, *, online: bool = True) -> None:
        self.queued: list[tuple[str, ...]] = []
        self.online = online

    async def backup(self, node: str, backup_id: uuid.UUID) -> str:
        self.queued.append(("backup", node, str(backup_id)))
        return f"job-{len(self.queued)}"

    async def restore(
        self, node: str, backup_id: uuid.UUID, target_server_id: uuid.UUID, by: uuid.UUID | None
    ) -> str:
        self.queued.append(("restore", node, str(backup_id), str(target_server_id)))
        return f"job-{len(self.queued)}"

    async def is_online(self, node: str) -> bool:
        return self.online


class FakeProgress:
    """Heartbeats of running operations (`alive`), and the progress and outcomes published."""

    def __init__(self) -> None:
        self.alive: set[uuid.UUID] = set()
        self.published: list[dict[str, Any]] = []

    async def is_alive(self, kind: str, operation_id: uuid.UUID) -> bool:
        return operation_id in self.alive

    async def publish(self, payload: dict[str, Any]) -> None:
        self.published.append(payload)

    @contextlib.asynccontextmanager
    async def tracking(
        self, *, operation_id: uuid.UUID, server_id: uuid.UUID, kind: str
    ) -> AsyncIterator[Tracker]:
        self.alive.add(operation_id)
        tracker = Tracker(kind=kind, operation_id=operation_id, server_id=server_id)
        try:
            yield tracker
        finally:
            self.alive.discard(operation_id)
            self.published.append(tracker.payload())


class FakeBackupStorage:
    """Archives as bytes by key."""

    name = "memory"
    shared = False

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def write(self, key: str, produce: Callable[[BinaryIO], None]) -> None:
        buffer = io.BytesIO()
        produce(buffer)
        self.objects[key] = buffer.getvalue()

    def upload_file(self, key: str, path: Path) -> None:
        self.objects[key] = path.read_bytes()

    def download_to(self, key: str, path: Path) -> None:
        path.write_bytes(self.objects[key])

    def size(self, key: str) -> int | None:
        return len(self.objects[key]) if key in self.objects else None

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def delete_all(self, prefix: str) -> int:
        keys = [key for key in self.objects if key.startswith(prefix)]
        for key in keys:
            del self.objects[key]
        return len(keys)

    def discard_partials(self, prefix: str) -> int:
        return 0

    async def chunks(self, key: str) -> AsyncIterator[bytes]:
        yield self.objects[key]


class FakeArchiveUpload:
    def __init__(self, store: FakeArchiveStore, data: bytes, facts: ArchiveFacts) -> None:
        self._store = store
        self._data = data
        self.facts = facts

    async def commit(self, key: str) -> None:
        self._store.storage().objects[key] = self._data

    async def abort(self) -> None:
        self._store.aborted += 1


class FakeArchiveStore:
    """The API's archive store over the node's storage (`storage()`, one node's worth of
    archives), recording which node each call went to. Uploads are taken whole and checked by
    `check` (gzip, no code members, by default)."""

    def __init__(self, storage: Callable[[], Any]) -> None:
        self.storage = storage
        self.calls: list[tuple[str, str]] = []
        self.aborted = 0
        self.check: Callable[[bytes], ArchiveFacts] = lambda data: ArchiveFacts(
            compression=Compression.GZIP,
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            members=1,
        )

    async def upload(
        self, node: str, server_id: uuid.UUID, chunks: AsyncIterable[bytes]
    ) -> FakeArchiveUpload:
        self.calls.append(("upload", node))
        data = b"".join([chunk async for chunk in chunks])
        return FakeArchiveUpload(self, data, self.check(data))

    async def open(self, backup: Backup) -> ArchiveDownload | None:
        self.calls.append(("open", backup.node))
        size = self.storage().size(backup.file_path)
        if size is None:
            return None
        return ArchiveDownload(size=size, chunks=self.storage().chunks(backup.file_path))

    async def delete(self, backup: Backup) -> None:
        self.calls.append(("delete", backup.node))
        self.storage().delete(backup.file_path)

    async def delete_all(self, node: str, server_id: uuid.UUID) -> int:
        self.calls.append(("delete_all", node))
        removed: int = self.storage().delete_all(f"{server_id}/")
        return removed

    async def stage(self, backup: Backup, *, node: str, server_id: uuid.UUID) -> None:
        self.calls.append(("stage", node))


class FakeBackupReadModel:
    """Backups and schedules as committed to the fake unit of work."""

    def __init__(self, uow: FakeBackupsUnitOfWork) -> None:
        self._uow = uow

    async def get(self, backup_id: uuid.UUID) -> Backup | None:
        stored = self._uow.stored_backups.get(backup_id)
        return copy.deepcopy(stored) if stored else None

    async def page(
        self,
        server_id: uuid.UUID,
        *,
        backup_type: str | None,
        status: str | None,
        page: int,
        limit: int,
    ) -> Page[Backup]:
        matching = sorted(
            (
                b
                for b in self._uow.stored_backups.values()
                if b.server_id == server_id
                and backup_type in (None, b.backup_type.value)
                and status in (None, b.status.value)
            ),
            key=lambda b: b.created_at,
            reverse=True,
        )
        start = (page - 1) * limit
        return Page(
            items=copy.deepcopy(matching[start : start + limit]),
            total=len(matching),
            page=page,
            limit=limit,
        )

    async def summary(self, server_id: uuid.UUID) -> BackupSummary | None:
        return None

    async def schedules(self, server_id: uuid.UUID) -> list[BackupSchedule]:
        found = [s for s in self._uow.stored_schedules.values() if s.server_id == server_id]
        return copy.deepcopy(found)

    async def schedule(self, schedule_id: uuid.UUID) -> BackupSchedule | None:
        stored = self._uow.stored_schedules.get(schedule_id)
        return copy.deepcopy(stored) if stored else None


@dataclass(kw_only=True)
class BackupsFakes:
    """The backups context's adapters, named as its `wire()` names them. Its `servers` port
    is the real one (over the faked servers context) unless a test gives FakeServerLookup."""

    uow: FakeBackupsUnitOfWork
    read_model: FakeBackupReadModel
    jobs: FakeBackupJobs = field(default_factory=FakeBackupJobs)
    storage: Any = field(default_factory=FakeBackupStorage)
    archives: FakeArchiveStore = field(init=False)
    progress: FakeProgress = field(default_factory=FakeProgress)
    servers: FakeServerLookup | None = None
    control: FakeServerControl | None = None

    def __post_init__(self) -> None:
        self.archives = FakeArchiveStore(lambda: self.storage)

    @classmethod
    def build(cls, events: FakeEventLog) -> BackupsFakes:
        uow = FakeBackupsUnitOfWork(events)
        return cls(uow=uow, read_model=FakeBackupReadModel(uow))
