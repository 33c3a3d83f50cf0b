"""Errors of the backups context, each with the HTTP status the API answers with."""

from __future__ import annotations

from app.shared.domain import Conflict, DomainError, Forbidden, InvalidInput, NotFound


class BackupNotFound(NotFound):
    slug = "backup-not-found"


class ScheduleNotFound(NotFound):
    slug = "schedule-not-found"


class BackupBusy(Conflict):
    """A backup or restore of the server is already running."""

    slug = "backup-in-progress"
    title = "A backup or restore of this server is in progress"


class InvalidBackupState(Conflict):
    slug = "invalid-backup-state"
    title = "Not possible in the backup's current state"


class InvalidSchedule(InvalidInput):
    slug = "invalid-schedule"
    title = "Invalid backup schedule"


class InvalidArchive(InvalidInput):
    """An archive that is not a tar.gz / tar.zst, or has unsafe members, or a wrong checksum."""

    slug = "invalid-archive"
    title = "Invalid backup archive"


class ArchiveTooLarge(DomainError):
    status = 413
    slug = "payload-too-large"
    title = "Backup archive too large"


class CrossServerRestore(Forbidden):
    slug = "cross-server-restore"
    title = "Restoring another server's backup needs an admin and from_other_server"


class StorageUnavailable(DomainError):
    status = 503
    slug = "backup-storage-unavailable"
    title = "Backup storage unavailable"


class ArchiveMissing(DomainError):
    """The backup is recorded but its archive is gone from the storage."""

    status = 410
    slug = "backup-archive-missing"
    title = "Backup archive missing"
