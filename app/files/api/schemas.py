"""Request and response bodies of the files API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from app.files.application.messages import TextFile, VersionDiff, WriteResult
from app.files.domain.model import FileVersion
from app.files.domain.ports import FileEntry
from app.shared.domain import Page
from app.shared.http import example


class FileEntryResponse(BaseModel):
    name: str
    path: str
    type: str = Field(description="file, directory, symlink or other")
    size: int
    modified_at: datetime
    is_text: bool = Field(description="UTF-8 text within the edit limit: editable in the browser")

    @classmethod
    def of(cls, entry: FileEntry) -> FileEntryResponse:
        return cls(
            name=entry.name,
            path=entry.path,
            type=entry.type,
            size=entry.size,
            modified_at=entry.modified_at,
            is_text=entry.is_text,
        )


class FileListResponse(BaseModel):
    path: str
    items: list[FileEntryResponse]
    total: int
    page: int
    limit: int

    @classmethod
    def of(cls, path: str, page: Page[FileEntry]) -> FileListResponse:
        return cls(
            path=path,
            items=[FileEntryResponse.of(entry) for entry in page.items],
            total=page.total,
            page=page.page,
            limit=page.limit,
        )


class TextFileResponse(BaseModel):
    path: str
    content: str
    size: int
    etag: str = Field(description="Send it back as If-Match when saving")

    @classmethod
    def of(cls, text: TextFile) -> TextFileResponse:
        return cls(path=text.path, content=text.content, size=text.size, etag=text.etag)


class WriteFileRequest(BaseModel):
    model_config = example({"content": "Welcome to our server!\n"})

    content: str


class MoveRequest(BaseModel):
    model_config = example({"to": "notes-old.txt"})

    to: str = Field(min_length=1, max_length=4096, description="New path, relative to the server")


class MakeDirectoryRequest(BaseModel):
    model_config = example({"path": "archive"})

    path: str = Field(min_length=1, max_length=4096)


class WriteResultResponse(BaseModel):
    path: str
    version: int | None = Field(description="History version recorded (none for directories)")
    etag: str | None
    size: int | None
    created: bool
    restart_required: bool
    warnings: list[str] = Field(
        default_factory=list,
        description="e.g. server.properties keys the dashboard manages and resets at each start",
    )

    @classmethod
    def of(cls, result: WriteResult) -> WriteResultResponse:
        return cls(
            path=result.path,
            version=result.version,
            etag=result.etag,
            size=result.size,
            created=result.created,
            restart_required=result.restart_required,
            warnings=list(result.warnings),
        )


class VersionResponse(BaseModel):
    version: int
    path: str
    action: str
    outcome: str = Field(description="applied, or rejected for an edit that lost a race")
    author_id: uuid.UUID | None
    created_at: datetime
    size: int | None
    sha256: str | None
    note: str | None
    content_kept: bool

    @classmethod
    def of(cls, version: FileVersion) -> VersionResponse:
        return cls(
            version=version.version,
            path=version.path,
            action=version.action.value,
            outcome=version.outcome.value,
            author_id=version.author_id,
            created_at=version.created_at,
            size=version.size,
            sha256=version.sha256,
            note=version.note,
            content_kept=version.content is not None,
        )


class VersionPage(BaseModel):
    items: list[VersionResponse]
    total: int
    page: int
    limit: int


class VersionDetailResponse(VersionResponse):
    content: str | None = Field(description="The text of this version, when it was kept")

    @classmethod
    def of(cls, version: FileVersion) -> VersionDetailResponse:
        summary = VersionResponse.of(version).model_dump()
        return cls(**summary, content=version.text)


class DiffResponse(BaseModel):
    path: str
    version: int
    current_etag: str | None
    diff: str = Field(description="Unified diff from the version to the current file")

    @classmethod
    def of(cls, diff: VersionDiff) -> DiffResponse:
        return cls(
            path=diff.path, version=diff.version, current_etag=diff.current_etag, diff=diff.diff
        )
