"""What happens to server files; stored under aggregate type `file`, one stream per path."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import ClassVar

from app.shared.domain import DomainEvent

_FILE_NAMESPACE = uuid.UUID("6f0c8a52-3c0e-4d8b-9a57-51f1d6c4e0a1")


def file_stream_id(server_id: uuid.UUID, path: str) -> uuid.UUID:
    """A stable id per (server, path), so each file's events form one ordered stream."""
    return uuid.uuid5(_FILE_NAMESPACE, f"{server_id}/{path}")


@dataclass(frozen=True, slots=True, kw_only=True)
class FileModified(DomainEvent):
    """A file of a server was written, created, uploaded, restored, moved or deleted."""

    aggregate_type: ClassVar[str] = "file"

    server_id: uuid.UUID
    path: str
    action: str
    version: int
    size: int | None
    sha256: str | None
    author_id: uuid.UUID | None

    @property
    def aggregate_id(self) -> uuid.UUID:
        return file_stream_id(self.server_id, self.path)


FILE_EVENTS: tuple[type[DomainEvent], ...] = (FileModified,)
