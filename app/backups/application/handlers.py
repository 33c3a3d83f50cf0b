"""Handlers of the API's backup commands and queries: they record intent and queue node jobs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from app.backups.application.messages import (
    BackupDownload,
    CreateBackup,
    DeleteBackup,
    GetBackup,
    GetBackupSummary,
    ImportBackup,
    ListBackups,
    OpenBackupDownload,
    RestoreAccepted,
    RestoreBackup,
)
from app.backups.domain.errors import (
    ArchiveMissing,
    BackupNotFound,
    CrossServerRestore,
    InvalidBackupState,
)
from app.backups.domain.model import Backup, BackupStatus, BackupType, Compression
from app.backups.domain.ports import (
    ArchiveStore,
    BackupJobs,
    BackupReadModel,
    BackupSummary,
    BackupsUnitOfWork,
    ServerLookup,
)
from app.servers.domain.events import ServerDeleted
from app.shared.domain import Clock, DomainError, Forbidden, NotFound, Page, new_id
from app.shared.security import Permission, Principal

UowFactory = Callable[[], BackupsUnitOfWork]
log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupPolicy:
    compression: Compression


async def visible_backup(
    backup: Backup | None, actor: Principal | None, backup_id: uuid.UUID, servers: ServerLookup
) -> Backup:
    """A backup is visible to whoever may see its server; others get 404."""
    if backup is None:
        raise BackupNotFound(f"backup {backup_id} not found")
    try:
        await servers.find(actor, backup.server_id)
    except NotFound:
        raise BackupNotFound(f"backup {backup_id} not found") from None
    return backup


async def handle_create_backup(
    cmd: CreateBackup,
    *,
    uow: UowFactory,
    servers: ServerLookup,
    jobs: BackupJobs,
    policy: BackupPolicy,
    clock: Clock,
) -> Backup:
    server = await servers.find(cmd.actor, cmd.server_id)
    backup = Backup.request(
        backup_id=new_id(),
        server_id=server.id,
        node=server.node,
        backup_type=BackupType.MANUAL,
        compression=cmd.compression or policy.compression,
        name=cmd.name,
        requested_by=cmd.actor.user_id,
        now=clock.now(),
    )
    async with uow() as work:
        await work.locks.acquire(
            server.id, operation="backup", backup_id=backup.id, node=server.node
        )
        work.backups.add(backup)
        await work.commit()
    await jobs.backup(server.node, backup.id)
    return backup


async def handle_import_backup(
    cmd: ImportBackup,
    *,
    uow: UowFactory,
    servers: ServerLookup,
    archives: ArchiveStore,
    clock: Clock,
) -> Backup:
    """The server's node spools and checks the archive; it is kept only once it may be."""
    server = await servers.find(cmd.actor, cmd.server_id)
    upload = await archives.upload(server.node, server.id, cmd.chunks)
    facts = upload.facts
    try:
        if facts.code_members and not cmd.actor.has(Permission.SERVER_CODE):
            raise Forbidden(
                f"this action needs the {Permission.SERVER_CODE.value} permission: the archive "
                f"puts {facts.code_members} .jar file(s) into plugins/ or mods/, code the game "
                "server would run",
                permission=Permission.SERVER_CODE.value,
            )
        backup = Backup.request(
            backup_id=new_id(),
            server_id=server.id,
            node=server.node,
            backup_type=BackupType.UPLOADED,
            compression=facts.compression,
            name=cmd.name,
            requested_by=cmd.actor.user_id,
            now=clock.now(),
        )
        await upload.commit(backup.file_path)
    except BaseException:
        await asyncio.shield(upload.abort())
        raise
    backup.complete(
        size_bytes=facts.size_bytes, sha256=facts.sha256, saving_off_ms=None, now=clock.now()
    )
    try:
        async with uow() as work:
            work.backups.add(backup)
            await work.commit()
    except BaseException:
        await asyncio.shield(delete_quietly(archives, backup, "backup_import_archive_left"))
        raise
    return backup


async def delete_quietly(archives: ArchiveStore, backup: Backup, event: str) -> None:
    """Remove an archive nobody will ask for again; a failure is only space, said in the log."""
    try:
        await archives.delete(backup)
    except (OSError, DomainError) as exc:
        detail = exc.detail if isinstance(exc, DomainError) else str(exc)
        log.warning(
            event, backup_id=str(backup.id), node=backup.node, key=backup.file_path, error=detail
        )


async def handle_delete_backup(
    cmd: DeleteBackup,
    *,
    uow: UowFactory,
    servers: ServerLookup,
    archives: ArchiveStore,
    clock: Clock,
) -> None:
    async with uow() as work:
        backup = await visible_backup(
            await work.backups.get(cmd.backup_id, lock=True), cmd.actor, cmd.backup_id, servers
        )
        backup.delete(reason=f"deleted by {cmd.actor.username}", now=clock.now())
        await work.backups.remove(backup)
        await work.commit()
    await delete_quietly(archives, backup, "backup_archive_left_in_storage")


async def handle_restore_backup(
    cmd: RestoreBackup,
    *,
    uow: UowFactory,
    servers: ServerLookup,
    jobs: BackupJobs,
    archives: ArchiveStore,
    clock: Clock,
) -> RestoreAccepted:
    """A restore onto another node than the backup's first copies the archive there (local
    storage), so the target's restore job reads it from its own storage."""
    async with uow() as work:
        backup = await visible_backup(
            await work.backups.get(cmd.backup_id, lock=True), cmd.actor, cmd.backup_id, servers
        )
        target_id = cmd.target_server_id or backup.server_id
        if target_id != backup.server_id and not (cmd.actor.is_admin and cmd.from_other_server):
            raise CrossServerRestore(
                f"backup {backup.id} belongs to another server; only an admin may restore it "
                "onto this one, with from_other_server=true",
                backup_server_id=str(backup.server_id),
            )
        target = await servers.find(cmd.actor, target_id)
        backup.request_restore()
        await work.locks.acquire(
            target.id, operation="restore", backup_id=backup.id, node=target.node
        )
        await work.commit()
    try:
        await archives.stage(backup, node=target.node, server_id=target.id)
    except BaseException as exc:
        await asyncio.shield(_restore_not_started(uow, backup.id, target.id, exc, clock))
        raise
    job_id = await jobs.restore(target.node, backup.id, target.id, cmd.actor.user_id)
    return RestoreAccepted(
        backup_id=backup.id,
        server_id=target.id,
        node=target.node,
        node_online=await jobs.is_online(target.node),
        job_id=job_id,
    )


async def _restore_not_started(
    uow: UowFactory, backup_id: uuid.UUID, target_id: uuid.UUID, exc: BaseException, clock: Clock
) -> None:
    """The archive never reached the target's node: the restore ends failed, the server free."""
    reason = exc.detail if isinstance(exc, DomainError) else f"{type(exc).__name__}: {exc}"
    async with uow() as work:
        backup = await work.backups.get(backup_id, lock=True)
        if backup is not None:
            backup.restore_failed(
                target_server_id=target_id,
                reason=f"the archive could not be copied to the server's node: {reason}",
                now=clock.now(),
            )
        await work.locks.release(target_id, backup_id=backup_id)
        await work.commit()


async def handle_get_backup(
    query: GetBackup, *, read_model: BackupReadModel, servers: ServerLookup
) -> Backup:
    backup = await read_model.get(query.backup_id)
    return await visible_backup(backup, query.actor, query.backup_id, servers)


async def handle_open_backup_download(
    query: OpenBackupDownload,
    *,
    read_model: BackupReadModel,
    servers: ServerLookup,
    archives: ArchiveStore,
) -> BackupDownload:
    backup = await visible_backup(
        await read_model.get(query.backup_id), query.actor, query.backup_id, servers
    )
    if backup.status is not BackupStatus.COMPLETED:
        raise InvalidBackupState(
            f"backup {backup.id} is {backup.status.value}; nothing to download"
        )
    opened = await archives.open(backup)
    if opened is None:
        raise ArchiveMissing(f"the archive of backup {backup.id} is missing from the storage")
    return BackupDownload(backup=backup, chunks=opened.chunks)


async def handle_list_backups(
    query: ListBackups, *, read_model: BackupReadModel, servers: ServerLookup
) -> Page[Backup]:
    await servers.find(query.actor, query.server_id)
    return await read_model.page(
        query.server_id,
        backup_type=query.backup_type,
        status=query.status,
        page=query.page,
        limit=query.limit,
    )


async def handle_get_backup_summary(
    query: GetBackupSummary, *, read_model: BackupReadModel, servers: ServerLookup
) -> BackupSummary:
    server = await servers.find(query.actor, query.server_id)
    summary = await read_model.summary(server.id)
    return summary or BackupSummary(
        server_id=server.id,
        server_name=server.name,
        backup_count=0,
        latest_backup=None,
        total_size=0,
        success_rate=None,
        failed_count=0,
    )


async def forget_server_archives(event: ServerDeleted, *, archives: ArchiveStore) -> None:
    """A deleted server's backup rows went with it (cascade); its archives go too, on the node
    that held the server. A node that cannot be reached keeps them (said in the log): retrying
    would run every other handler of the event again, for space only."""
    try:
        removed = await archives.delete_all(event.node, event.server_id)
    except (OSError, DomainError) as exc:
        log.warning(
            "server_archives_left_on_node",
            server_id=str(event.server_id),
            node=event.node,
            prefix=f"{event.server_id}/",
            error=exc.detail if isinstance(exc, DomainError) else str(exc),
        )
        return
    log.info("server_archives_deleted", server_id=str(event.server_id), archives=removed)
