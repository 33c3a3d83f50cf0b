"""Backups (one archive of a server directory) and the schedules that take them."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime

from app.backups.domain.errors import BackupBusy, InvalidBackupState
from app.backups.domain.events import (
    BackupCompleted,
    BackupCreated,
    BackupDeleted,
    BackupFailed,
    BackupRestored,
    BackupRestoreFailed,
)
from app.shared.domain import Aggregate, InvalidInput, unstorable_character


class BackupStatus(enum.StrEnum):
    REQUESTED = "requested"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class BackupType(enum.StrEnum):
    MANUAL = "manual"
    SCHEDULED = "scheduled"
    SAFETY = "safety"
    UPLOADED = "uploaded"


class Compression(enum.StrEnum):
    GZIP = "gzip"
    ZSTD = "zstd"

    @property
    def extension(self) -> str:
        return ".tar.gz" if self is Compression.GZIP else ".tar.zst"


class RestoreStatus(enum.StrEnum):
    REQUESTED = "requested"
    COMPLETED = "completed"
    FAILED = "failed"


UNFINISHED = (BackupStatus.REQUESTED, BackupStatus.RUNNING)


NAME_MAX = 200


def backup_name(name: str | None, *, backup_type: BackupType, now: datetime) -> str:
    """The given name, one printable line of at most NAME_MAX characters, or a dated default."""
    if name is None or not name.strip():
        return f"{backup_type.value}-{now:%Y%m%d-%H%M%S}"
    if len(name) > NAME_MAX or unstorable_character(name) is not None:
        raise InvalidInput(
            f"a backup name is one line of at most {NAME_MAX} printable characters", field="name"
        )
    return name


# Where a game server loads code from (the files context's rule for the file manager).
CODE_DIRECTORIES = frozenset({"plugins", "mods"})


def installs_code(parts: tuple[str, ...]) -> bool:
    """An archive member that is a `.jar` below plugins/ or mods/: code the server would run."""
    return (
        len(parts) > 1
        and parts[0].casefold() in CODE_DIRECTORIES
        and parts[-1].casefold().endswith(".jar")
    )


def storage_key(server_id: uuid.UUID, backup_id: uuid.UUID, compression: Compression) -> str:
    return f"{server_id}/{backup_id}{compression.extension}"


STAGED = "staged"


def staged_key(server_id: uuid.UUID, backup_id: uuid.UUID, compression: Compression) -> str:
    """Where another node's archive waits on a server's node for the restore that reads it."""
    return f"{server_id}/{STAGED}/{backup_id}{compression.extension}"


def checked_key(server_id: uuid.UUID, key: str) -> str:
    """`key` if it names an archive (or a staged one) of `server_id`: nothing else is reachable
    through a node's storage."""
    head, _, name = key.partition("/")
    folder, _, name = name.rpartition("/")
    stem, dot, _ = name.partition(".")
    extension = name[len(stem) :]
    try:
        valid = (
            head == str(server_id)
            and folder in ("", STAGED)
            and bool(dot)
            and str(uuid.UUID(stem)) == stem
            and extension in {c.extension for c in Compression}
        )
    except ValueError:
        valid = False
    if not valid:
        raise InvalidInput(f"{key!r} is no archive key of server {server_id}", field="key")
    return key


@dataclass(kw_only=True, eq=False)
class Backup(Aggregate):
    server_id: uuid.UUID
    name: str
    backup_type: BackupType
    status: BackupStatus
    compression: Compression
    file_path: str
    node: str
    created_at: datetime
    requested_by: uuid.UUID | None = None
    schedule_id: uuid.UUID | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    saving_off_ms: int | None = None
    restore_status: RestoreStatus | None = None
    restore_error: str | None = None
    restored_at: datetime | None = None

    @classmethod
    def request(
        cls,
        *,
        backup_id: uuid.UUID,
        server_id: uuid.UUID,
        node: str,
        backup_type: BackupType,
        compression: Compression,
        now: datetime,
        name: str | None = None,
        requested_by: uuid.UUID | None = None,
        schedule_id: uuid.UUID | None = None,
    ) -> Backup:
        backup = cls(
            id=backup_id,
            server_id=server_id,
            name=backup_name(name, backup_type=backup_type, now=now),
            backup_type=backup_type,
            status=BackupStatus.REQUESTED,
            compression=compression,
            file_path=storage_key(server_id, backup_id, compression),
            node=node,
            created_at=now,
            requested_by=requested_by,
            schedule_id=schedule_id,
        )
        backup.record(
            BackupCreated(
                occurred_at=now,
                backup_id=backup_id,
                server_id=server_id,
                backup_type=backup_type.value,
                node=node,
                requested_by=requested_by,
                schedule_id=schedule_id,
            )
        )
        return backup

    @property
    def finished(self) -> bool:
        return self.status not in UNFINISHED

    def start(self, *, now: datetime) -> None:
        if self.status is not BackupStatus.REQUESTED:
            raise InvalidBackupState(f"backup {self.id} is {self.status.value}, not requested")
        self.status = BackupStatus.RUNNING
        self.started_at = now
        self.changed = True

    def complete(
        self, *, size_bytes: int, sha256: str, saving_off_ms: int | None, now: datetime
    ) -> None:
        if self.finished:
            raise InvalidBackupState(f"backup {self.id} already ended {self.status.value}")
        self.status = BackupStatus.COMPLETED
        self.size_bytes, self.sha256, self.saving_off_ms = size_bytes, sha256, saving_off_ms
        self.finished_at = now
        started = self.started_at or self.created_at
        self.record(
            BackupCompleted(
                occurred_at=now,
                backup_id=self.id,
                server_id=self.server_id,
                size_bytes=size_bytes,
                sha256=sha256,
                saving_off_ms=saving_off_ms,
                duration_ms=int((now - started).total_seconds() * 1000),
            )
        )

    def fail(self, reason: str, *, saving_off_ms: int | None = None, now: datetime) -> bool:
        """End an unfinished backup as failed; a finished one is left alone (returns False)."""
        if self.finished:
            return False
        self.status = BackupStatus.FAILED
        self.error = reason[:2000]
        self.saving_off_ms = saving_off_ms
        self.finished_at = now
        self.record(
            BackupFailed(
                occurred_at=now, backup_id=self.id, server_id=self.server_id, reason=reason
            )
        )
        return True

    def request_restore(self) -> None:
        if self.status is not BackupStatus.COMPLETED:
            raise InvalidBackupState(
                f"backup {self.id} is {self.status.value}; only completed backups can be restored"
            )
        self.restore_status = RestoreStatus.REQUESTED
        self.restore_error = None
        self.changed = True

    def restored(
        self,
        *,
        target_server_id: uuid.UUID,
        safety_backup_id: uuid.UUID | None,
        requested_by: uuid.UUID | None,
        now: datetime,
    ) -> None:
        self.restore_status = RestoreStatus.COMPLETED
        self.restored_at = now
        self.record(
            BackupRestored(
                occurred_at=now,
                backup_id=self.id,
                server_id=self.server_id,
                target_server_id=target_server_id,
                safety_backup_id=safety_backup_id,
                requested_by=requested_by,
            )
        )

    def restore_failed(self, *, target_server_id: uuid.UUID, reason: str, now: datetime) -> None:
        self.restore_status = RestoreStatus.FAILED
        self.restore_error = reason[:2000]
        self.record(
            BackupRestoreFailed(
                occurred_at=now,
                backup_id=self.id,
                server_id=self.server_id,
                target_server_id=target_server_id,
                reason=reason,
            )
        )

    def delete(self, *, reason: str, now: datetime) -> None:
        if not self.finished:
            raise BackupBusy(f"backup {self.id} is {self.status.value}; wait until it ends")
        if self.restore_status is RestoreStatus.REQUESTED:
            raise BackupBusy(f"backup {self.id} is being restored; wait until the restore ends")
        self.record(
            BackupDeleted(
                occurred_at=now, backup_id=self.id, server_id=self.server_id, reason=reason
            )
        )
