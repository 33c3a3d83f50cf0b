"""What the files context needs from the outside: the server's directory, history, servers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from app.files.domain.model import FileState, FileVersion
from app.files.domain.paths import FilePath
from app.shared.domain import DomainEvent, Page
from app.shared.security import Principal


@dataclass(frozen=True, slots=True, kw_only=True)
class FileEntry:
    name: str
    path: str
    type: str
    size: int
    modified_at: datetime
    is_text: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Download:
    """An opened regular file: its chunks are read off the event loop as they are sent."""

    name: str
    size: int
    sha256: str | None
    chunks: AsyncIterator[bytes]


class UploadSink(Protocol):
    """A temporary file beside the target; nothing is visible until `commit`."""

    @property
    def size(self) -> int: ...

    async def write(self, chunk: bytes) -> None: ...
    async def commit(self, *, replace: bool) -> FileState: ...
    async def abort(self) -> None: ...


class FileStore(Protocol):
    """A server's directory, on the server's node; every method refuses paths that leave it or
    name special files."""

    async def listing(
        self, server: ServerAccess, path: FilePath, *, page: int, limit: int
    ) -> Page[FileEntry]: ...
    async def state(self, server: ServerAccess, path: FilePath, *, keep: int) -> FileState: ...
    async def write(
        self,
        server: ServerAccess,
        path: FilePath,
        content: bytes,
        *,
        expected: FileState | None = None,
    ) -> FileState:
        """Replace the file atomically; with `expected`, only if it still is what was read
        (PreconditionFailed otherwise: something else changed it meanwhile)."""
        ...

    async def delete(self, server: ServerAccess, path: FilePath, *, recursive: bool) -> None: ...
    async def is_directory(self, server: ServerAccess, path: FilePath) -> bool: ...
    async def resolve(self, server: ServerAccess, path: FilePath) -> FilePath:
        """Where `path` leads once the links in it are followed (never outside the server)."""
        ...

    async def holds_jar(self, server: ServerAccess, path: FilePath) -> bool:
        """Whether the directory holds a `.jar` file at any depth (symlinks are not followed)."""
        ...

    async def mkdir(self, server: ServerAccess, path: FilePath) -> None: ...
    async def move(self, server: ServerAccess, source: FilePath, target: FilePath) -> None: ...
    async def download(self, server: ServerAccess, path: FilePath) -> Download: ...
    async def upload(self, server: ServerAccess, path: FilePath) -> UploadSink: ...


class FileHistory(Protocol):
    async def lock(self, server_id: uuid.UUID, path: str) -> None: ...
    async def latest(self, server_id: uuid.UUID, path: str) -> FileVersion | None: ...
    async def next_number(self, server_id: uuid.UUID, path: str) -> int: ...
    async def add(self, version: FileVersion) -> None: ...
    async def get(self, server_id: uuid.UUID, path: str, number: int) -> FileVersion | None: ...
    async def paths_under(self, server_id: uuid.UUID, prefix: str) -> list[str]: ...
    async def page(
        self, server_id: uuid.UUID, path: str, *, page: int, limit: int
    ) -> Page[FileVersion]: ...


class FilesUnitOfWork(Protocol):
    history: FileHistory

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    def record_event(self, event: DomainEvent) -> None: ...
    async def commit(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerAccess:
    """The server a request acts on, as far as files care: which, on what node, and whether
    it runs."""

    server_id: uuid.UUID
    node: str
    active: bool
    managed_properties: Mapping[str, str] = field(default_factory=dict)


class Servers(Protocol):
    """The servers context seen from files: visibility and the restart-required flag."""

    async def visible(self, actor: Principal, server_id: uuid.UUID) -> ServerAccess: ...
    async def mark_restart_required(self, server_id: uuid.UUID, changed_file: str) -> bool: ...
    async def managed_overrides(self, access: ServerAccess, content: bytes) -> tuple[str, ...]:
        """Warnings for dashboard-owned server.properties keys that `content` sets differently."""
        ...
