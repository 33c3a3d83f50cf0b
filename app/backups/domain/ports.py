"""What the backups context needs from the outside: storage, repositories, node jobs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol, Self

from app.backups.domain.model import Backup, Compression
from app.backups.domain.schedule import BackupSchedule
from app.shared.domain import Page
from app.shared.security import Principal


class BackupStorage(Protocol):
    """Where archives live. Blocking methods run in threads; `write` streams an archive in."""

    name: str
    shared: bool  # every node sees the same archives (S3), or each its own (a local disk)

    def write(self, key: str, produce: Callable[[BinaryIO], None]) -> None:
        """Store what `produce` writes under `key`; on any failure nothing is left behind."""
        ...

    def upload_file(self, key: str, path: Path) -> None: ...

    def download_to(self, key: str, path: Path) -> None: ...

    def size(self, key: str) -> int | None: ...

    def delete(self, key: str) -> None: ...

    def delete_all(self, prefix: str) -> int:
        """Remove every archive under `prefix` (a deleted server's folder); returns how many."""
        ...

    def discard_partials(self, prefix: str) -> int:
        """Remove what interrupted writes under `prefix` left behind; returns how many."""
        ...

    def chunks(self, key: str) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveDownload:
    size: int
    chunks: AsyncIterator[bytes]


class ArchiveUpload(Protocol):
    """An uploaded archive the server's node holds, checked, until it is committed or aborted."""

    @property
    def facts(self) -> ArchiveFacts: ...

    async def commit(self, key: str) -> None:
        """The node stores the archive under `key` (in its storage: its disk, or S3)."""
        ...

    async def abort(self) -> None:
        """The node discards it; never raises."""
        ...


class ArchiveStore(Protocol):
    """How the API reaches archives without a disk of its own: a local-storage archive through
    the agent of the node that took it (`Backup.node`), an S3 one in S3. Unreachable storage is
    a 503 (StorageUnavailable, or NodeUnavailable naming the node)."""

    async def upload(
        self, node: str, server_id: uuid.UUID, chunks: AsyncIterable[bytes]
    ) -> ArchiveUpload:
        """Stream an archive to `node`, which spools and checks it (InvalidArchive, 413)."""
        ...

    async def open(self, backup: Backup) -> ArchiveDownload | None:
        """The archive streamed, or None when it is missing from the storage."""
        ...

    async def delete(self, backup: Backup) -> None: ...

    async def delete_all(self, node: str, server_id: uuid.UUID) -> int:
        """Remove every archive of a server held by `node` (or the bucket); how many."""
        ...

    async def stage(self, backup: Backup, *, node: str, server_id: uuid.UUID) -> None:
        """Make the archive readable by a restore onto `server_id` on `node`: a copy from the
        backup's node (`staged_key`) for local storage, nothing for S3."""
        ...


class BackupRepository(Protocol):
    async def get(self, backup_id: uuid.UUID, *, lock: bool = False) -> Backup | None: ...

    def add(self, backup: Backup) -> None: ...

    async def remove(self, backup: Backup) -> None: ...

    async def unfinished(self, *, node: str | None = None) -> list[Backup]: ...

    async def scheduled_completed(
        self, schedule_id: uuid.UUID
    ) -> list[tuple[uuid.UUID, datetime]]: ...


class ScheduleRepository(Protocol):
    async def get(self, schedule_id: uuid.UUID, *, lock: bool = False) -> BackupSchedule | None: ...

    def add(self, schedule: BackupSchedule) -> None: ...

    async def remove(self, schedule: BackupSchedule) -> None: ...

    async def due(self, now: datetime) -> list[BackupSchedule]: ...

    async def warning_soon(self, until: datetime) -> list[BackupSchedule]:
        """Active schedules that warn players, whose next run comes before `until`."""
        ...


class ActivityLocks(Protocol):
    """One backup or restore per server: a row per busy server, taken in the unit of work."""

    async def acquire(
        self, server_id: uuid.UUID, *, operation: str, backup_id: uuid.UUID, node: str
    ) -> None: ...

    async def release(
        self, server_id: uuid.UUID, *, backup_id: uuid.UUID | None = None
    ) -> None: ...

    async def holder(self, server_id: uuid.UUID) -> tuple[str, uuid.UUID] | None: ...

    async def restores_before(self, cutoff: datetime) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(server id, backup id) of restores that have held their lock since before `cutoff`."""
        ...


class BackupsUnitOfWork(Protocol):
    backups: BackupRepository
    schedules: ScheduleRepository
    locks: ActivityLocks

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...

    def record_event(self, event: object) -> None: ...


class BackupJobs(Protocol):
    """Queues node jobs (normal priority) on the node that holds the server."""

    async def backup(self, node: str, backup_id: uuid.UUID) -> str: ...

    async def restore(
        self, node: str, backup_id: uuid.UUID, target_server_id: uuid.UUID, by: uuid.UUID | None
    ) -> str: ...

    async def is_online(self, node: str) -> bool: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerRef:
    """What backups need to know of a server, from the servers context."""

    id: uuid.UUID
    name: str
    owner_id: uuid.UUID
    node: str
    running: bool
    players_online: int = 0


class ServerLookup(Protocol):
    async def find(self, actor: Principal | None, server_id: uuid.UUID) -> ServerRef:
        """The server if `actor` may see it (None = the system); NotFound otherwise."""
        ...


class ServerControl(Protocol):
    """What scheduled tasks ask of the servers context, which owns the lifecycle and console."""

    def check_command(self, command: str) -> str:
        """The command as it would be sent, or InvalidSchedule saying why the policy refuses it."""
        ...

    async def perform(self, action: str, server_id: uuid.UUID, *, command: str | None) -> str:
        """Restart, stop, start the server or send it `command`, as the system; says what
        happened. Raises the servers context's DomainError when it cannot."""
        ...


class BackupReadModel(Protocol):
    async def get(self, backup_id: uuid.UUID) -> Backup | None: ...

    async def page(
        self,
        server_id: uuid.UUID,
        *,
        backup_type: str | None,
        status: str | None,
        page: int,
        limit: int,
    ) -> Page[Backup]: ...

    async def summary(self, server_id: uuid.UUID) -> BackupSummary | None: ...

    async def schedules(self, server_id: uuid.UUID) -> list[BackupSchedule]: ...

    async def schedule(self, schedule_id: uuid.UUID) -> BackupSchedule | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupSummary:
    server_id: uuid.UUID
    server_name: str
    backup_count: int
    latest_backup: datetime | None
    total_size: int
    success_rate: float | None
    failed_count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveFacts:
    compression: Compression
    size_bytes: int
    sha256: str
    members: int
    code_members: int = 0  # `.jar` files below plugins/ or mods/


class ArchiveCheck(Protocol):
    def __call__(self, path: Path) -> ArchiveFacts:
        """Blocking: read the whole archive, refuse unsafe members (InvalidArchive)."""
        ...


class OperationHeartbeats(Protocol):
    async def is_alive(self, kind: str, operation_id: uuid.UUID) -> bool:
        """Whether a node is still working on the backup or restore (`kind`) right now."""
        ...
