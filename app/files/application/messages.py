"""Commands and queries of the files context, and the views they return."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from app.files.domain.model import FileVersion
from app.files.domain.ports import Download, FileEntry
from app.shared.bus import Command, Query
from app.shared.domain import Page
from app.shared.security import Principal


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteResult:
    path: str
    version: int | None
    etag: str | None
    size: int | None
    created: bool
    restart_required: bool = False
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class TextFile:
    path: str
    content: str
    size: int
    etag: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionDiff:
    path: str
    version: int
    current_etag: str | None
    diff: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteFile(Command[WriteResult]):
    """Replace a text file; `if_match` is the ETag the editor read, `if_none_match` `*` creates."""

    actor: Principal
    server_id: uuid.UUID
    path: str
    content: str
    if_match: str | None = None
    if_none_match: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteFile(Command[WriteResult]):
    actor: Principal
    server_id: uuid.UUID
    path: str
    if_match: str | None = None
    recursive: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreVersion(Command[WriteResult]):
    """Write an earlier version's content back; the restore is itself a new version."""

    actor: Principal
    server_id: uuid.UUID
    path: str
    version: int
    if_match: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MoveFile(Command[WriteResult]):
    actor: Principal
    server_id: uuid.UUID
    path: str
    to: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MakeDirectory(Command[None]):
    actor: Principal
    server_id: uuid.UUID
    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadFile(Command[WriteResult]):
    """Stream one file into `directory`; nothing is visible unless every byte arrived in time."""

    actor: Principal
    server_id: uuid.UUID
    directory: str
    filename: str
    chunks: AsyncIterator[bytes]
    overwrite: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ListFiles(Query[Page[FileEntry]]):
    actor: Principal
    server_id: uuid.UUID
    path: str
    page: int = 1
    limit: int = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadFile(Query[TextFile]):
    actor: Principal
    server_id: uuid.UUID
    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenDownload(Query[Download]):
    actor: Principal
    server_id: uuid.UUID
    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ListVersions(Query[Page[FileVersion]]):
    actor: Principal
    server_id: uuid.UUID
    path: str
    page: int = 1
    limit: int = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class GetVersion(Query[FileVersion]):
    actor: Principal
    server_id: uuid.UUID
    path: str
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DiffVersion(Query[VersionDiff]):
    """Unified diff from a version to the current file (to empty when the file is gone)."""

    actor: Principal
    server_id: uuid.UUID
    path: str
    version: int
