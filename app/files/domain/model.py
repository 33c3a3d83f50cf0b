"""File contents and their history: ETags, text detection, diffs and recorded versions."""

from __future__ import annotations

import difflib
import enum
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime

from app.shared.domain import Conflict, DomainError

TEXT_SNIFF_BYTES = 8192
PROPERTIES_FILE = "server.properties"


class VersionAction(enum.StrEnum):
    ORIGINAL = "original"
    EXTERNAL = "external"
    CREATED = "created"
    WRITTEN = "written"
    UPLOADED = "uploaded"
    DELETED = "deleted"
    RESTORED = "restored"
    MOVED_IN = "moved_in"
    MOVED_OUT = "moved_out"


class Outcome(enum.StrEnum):
    APPLIED = "applied"
    REJECTED = "rejected"


class PreconditionFailed(DomainError):
    status = 412
    slug = "precondition-failed"
    title = "The file changed since you read it"


class PreconditionRequired(DomainError):
    status = 428
    slug = "precondition-required"
    title = "If-Match required"


class TooLarge(DomainError):
    status = 413
    slug = "payload-too-large"
    title = "Too large"


class NotText(DomainError):
    status = 415
    slug = "not-text"
    title = "Not a text file"


class FileMissing(DomainError):
    status = 404
    slug = "file-not-found"
    title = "File not found"


class IsDirectory(DomainError):
    status = 400
    slug = "is-a-directory"
    title = "Is a directory"


class FileConflict(Conflict):
    slug = "file-conflict"
    title = "File conflict"


def sha256_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def etag_of(sha256: str) -> str:
    """A strong ETag: the quoted SHA-256 of the bytes."""
    return f'"{sha256}"'


def etag_matches(header: str, sha256: str) -> bool:
    """`If-Match` may list several tags; weak tags never match a strong comparison."""
    tags = {tag.strip() for tag in header.split(",")}
    return "*" in tags or etag_of(sha256) in tags


def looks_like_text(head: bytes) -> bool:
    """UTF-8 without NUL bytes in the first 8 KiB (a cut multi-byte character is tolerated)."""
    sample = head[:TEXT_SNIFF_BYTES]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        cut = len(sample) == TEXT_SNIFF_BYTES and exc.start >= len(sample) - 3
        return cut and exc.reason == "unexpected end of data"
    return True


def decode_text(content: bytes) -> str | None:
    """The text of a file, or None when it is binary."""
    if b"\x00" in content[:TEXT_SNIFF_BYTES]:
        return None
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return None


def unified_diff(old: str, new: str, *, old_label: str, new_label: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=old_label,
            tofile=new_label,
        )
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class FileVersion:
    """One recorded state of a path, or an attempt to change it that lost a race."""

    id: uuid.UUID
    server_id: uuid.UUID
    path: str
    version: int
    action: VersionAction
    outcome: Outcome
    author_id: uuid.UUID | None
    created_at: datetime
    size: int | None
    sha256: str | None
    content: bytes | None
    note: str | None = None

    @property
    def exists(self) -> bool:
        """Whether the file existed in this state (false for deletions and moves away)."""
        return self.sha256 is not None

    @property
    def text(self) -> str | None:
        return decode_text(self.content) if self.content is not None else None


@dataclass(frozen=True, slots=True, kw_only=True)
class FileState:
    """What a path holds right now: missing, or bytes with their hash."""

    exists: bool
    size: int = 0
    sha256: str | None = None
    content: bytes | None = None
    mode: int | None = None

    @property
    def etag(self) -> str | None:
        return etag_of(self.sha256) if self.sha256 else None
