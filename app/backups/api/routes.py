"""HTTP routes of backups: per server, per backup, restore, download, upload and schedules."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from app.backups.api.schemas import (
    BackupPage,
    BackupResponse,
    BackupSummaryResponse,
    CreateBackupRequest,
    CreateScheduleRequest,
    RestoreRequest,
    RestoreResponse,
    ScheduleResponse,
    UpdateScheduleRequest,
)
from app.backups.application.messages import (
    CreateBackup,
    CreateSchedule,
    DeleteBackup,
    DeleteSchedule,
    GetBackup,
    GetBackupSummary,
    GetSchedule,
    ImportBackup,
    ListBackups,
    ListSchedules,
    OpenBackupDownload,
    RestoreBackup,
    UpdateSchedule,
)
from app.backups.domain.errors import ArchiveTooLarge
from app.backups.domain.model import BackupStatus, BackupType
from app.servers.application.messages import GetServer
from app.shared.bodies import body_limit
from app.shared.dependencies import BusDep, require
from app.shared.http import content_disposition
from app.shared.multipart import MULTIPART_OVERHEAD, MultipartStream, multipart_file_body
from app.shared.openapi import problems
from app.shared.security import Permission, Principal

router = APIRouter(prefix="/api/v2", tags=["backups"])

BUSY = "a backup or restore of the server is in progress"
ARCHIVE = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
Reader = Annotated[Principal, Depends(require(Permission.BACKUP_READ))]
Writer = Annotated[Principal, Depends(require(Permission.BACKUP_WRITE))]


@router.get("/servers/{server_id}/backups", summary="A server's backups, newest first")
async def list_backups(
    server_id: uuid.UUID,
    actor: Reader,
    bus: BusDep,
    backup_type: BackupType | None = None,
    status_: Annotated[BackupStatus | None, Query(alias="status")] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> BackupPage:
    result = await bus.handle(
        ListBackups(
            actor=actor,
            server_id=server_id,
            backup_type=backup_type.value if backup_type else None,
            status=status_.value if status_ else None,
            page=page,
            limit=limit,
        )
    )
    return BackupPage(
        items=[BackupResponse.of(item) for item in result.items],
        total=result.total,
        page=result.page,
        limit=result.limit,
    )


@router.post(
    "/servers/{server_id}/backups",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Request a backup; the server's node takes it (409 while one runs)",
    responses=problems({409: BUSY}),
)
async def create_backup(
    server_id: uuid.UUID, actor: Writer, bus: BusDep, body: CreateBackupRequest | None = None
) -> BackupResponse:
    body = body or CreateBackupRequest()
    backup = await bus.handle(
        CreateBackup(actor=actor, server_id=server_id, name=body.name, compression=body.compression)
    )
    return BackupResponse.of(backup)


@router.post(
    "/servers/{server_id}/backups/upload",
    status_code=status.HTTP_201_CREATED,
    summary="Upload an existing .tar.gz or .tar.zst as a completed backup",
    description="Multipart/form-data with the archive in the `file` field, at most "
    "MCDASH_BACKUP_MAX_UPLOAD_BYTES. Nothing is read before the server is known to be yours; "
    "the archive streams to the server's node, which checks it before it is kept.",
    openapi_extra=multipart_file_body("a tar.gz or tar.zst server archive"),
    responses=problems(
        {
            400: "the multipart body is malformed or holds no file part",
            403: "the archive puts .jar files into plugins/ or mods/ and you lack server:code",
            503: "the server's node or the backup storage cannot be reached",
        }
    ),
)
@body_limit(lambda settings: settings.backup_max_upload_bytes + MULTIPART_OVERHEAD)
async def upload_backup(
    server_id: uuid.UUID,
    request: Request,
    actor: Writer,
    bus: BusDep,
    name: Annotated[str | None, Query(max_length=200)] = None,
) -> BackupResponse:
    await bus.handle(GetServer(actor=actor, server_id=server_id))
    limit = request.app.state.settings.backup_max_upload_bytes
    part = await MultipartStream(request).file()
    backup = await bus.handle(
        ImportBackup(
            actor=actor, server_id=server_id, chunks=_bounded(part.chunks, limit), name=name
        )
    )
    return BackupResponse.of(backup)


async def _bounded(chunks: AsyncIterable[bytes], limit: int) -> AsyncIterator[bytes]:
    written = 0
    async for chunk in chunks:
        written += len(chunk)
        if written > limit:
            raise ArchiveTooLarge(f"backup uploads are limited to {limit} bytes", limit=limit)
        yield chunk


@router.get("/servers/{server_id}/backups/summary", summary="Count, latest, size, success rate")
async def backup_summary(server_id: uuid.UUID, actor: Reader, bus: BusDep) -> BackupSummaryResponse:
    summary = await bus.handle(GetBackupSummary(actor=actor, server_id=server_id))
    return BackupSummaryResponse.model_validate(summary)


@router.get("/backups/{backup_id}")
async def get_backup(backup_id: uuid.UUID, actor: Reader, bus: BusDep) -> BackupResponse:
    return BackupResponse.of(await bus.handle(GetBackup(actor=actor, backup_id=backup_id)))


@router.delete(
    "/backups/{backup_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems({409: "the backup is running or being restored"}),
)
async def delete_backup(backup_id: uuid.UUID, actor: Writer, bus: BusDep) -> Response:
    await bus.handle(DeleteBackup(actor=actor, backup_id=backup_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/backups/{backup_id}/download",
    summary="The archive, streamed",
    response_class=StreamingResponse,
    responses={
        200: {"content": ARCHIVE},
        **problems(
            {
                409: "the backup is not completed",
                410: "the archive is missing from the storage",
                503: "the backup storage cannot be reached",
            }
        ),
    },
)
async def download_backup(backup_id: uuid.UUID, actor: Reader, bus: BusDep) -> StreamingResponse:
    download = await bus.handle(OpenBackupDownload(actor=actor, backup_id=backup_id))
    backup = download.backup
    headers = {
        "Content-Disposition": content_disposition(f"{backup.name}{backup.compression.extension}"),
        "Content-Length": str(backup.size_bytes),
        "X-Checksum-SHA256": backup.sha256 or "",
    }
    return StreamingResponse(
        download.chunks, media_type="application/octet-stream", headers=headers
    )


@router.post(
    "/backups/{backup_id}/restore",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Restore (verified, with a safety backup first); 409 while a backup/restore runs",
    responses=problems(
        {
            403: "the backup belongs to another server: admins only, with from_other_server",
            409: f"{BUSY}, or the backup is not completed",
        }
    ),
)
async def restore_backup(
    backup_id: uuid.UUID, actor: Writer, bus: BusDep, body: RestoreRequest | None = None
) -> RestoreResponse:
    body = body or RestoreRequest()
    accepted = await bus.handle(
        RestoreBackup(
            actor=actor,
            backup_id=backup_id,
            target_server_id=body.server_id,
            from_other_server=body.from_other_server,
        )
    )
    return RestoreResponse.model_validate(accepted)


@router.get("/servers/{server_id}/schedules")
async def list_schedules(
    server_id: uuid.UUID, actor: Reader, bus: BusDep
) -> list[ScheduleResponse]:
    schedules = await bus.handle(ListSchedules(actor=actor, server_id=server_id))
    return [ScheduleResponse.of(schedule) for schedule in schedules]


@router.post(
    "/servers/{server_id}/schedules",
    status_code=status.HTTP_201_CREATED,
    summary="Schedule a backup, restart, stop, start or console command of the server",
    description="`action` is `backup` unless given. A `command` task's command passes the "
    "console policy now or is refused (422); a restart or stop may warn the players with `say` "
    "at `warnings` minutes before each run, which must all be shorter than the time between runs.",
)
async def create_schedule(
    server_id: uuid.UUID, body: CreateScheduleRequest, actor: Writer, bus: BusDep
) -> ScheduleResponse:
    schedule = await bus.handle(
        CreateSchedule(
            actor=actor,
            server_id=server_id,
            cron_expression=body.cron_expression,
            timezone=body.timezone,
            is_active=body.is_active,
            only_when_running=body.only_when_running,
            keep_last=body.keep_last,
            keep_days=body.keep_days,
            compression=body.compression,
            action=body.action,
            command=body.command,
            warnings=tuple(body.warnings or ()),
            message=body.message,
            skip_if_players_online=body.skip_if_players_online,
        )
    )
    return ScheduleResponse.of(schedule)


@router.get("/schedules/{schedule_id}")
async def get_schedule(schedule_id: uuid.UUID, actor: Reader, bus: BusDep) -> ScheduleResponse:
    return ScheduleResponse.of(await bus.handle(GetSchedule(actor=actor, schedule_id=schedule_id)))


@router.patch("/schedules/{schedule_id}", summary="Change a schedule (null keep_* removes a limit)")
async def update_schedule(
    schedule_id: uuid.UUID, body: UpdateScheduleRequest, actor: Writer, bus: BusDep
) -> ScheduleResponse:
    given = body.model_fields_set
    schedule = await bus.handle(
        UpdateSchedule(
            actor=actor,
            schedule_id=schedule_id,
            cron_expression=body.cron_expression,
            timezone=body.timezone,
            is_active=body.is_active,
            only_when_running=body.only_when_running,
            keep_last=body.keep_last,
            keep_days=body.keep_days,
            clear_keep_last="keep_last" in given and body.keep_last is None,
            clear_keep_days="keep_days" in given and body.keep_days is None,
            command=body.command,
            warnings=None if body.warnings is None else tuple(body.warnings),
            message=body.message,
            clear_message="message" in given and body.message is None,
            skip_if_players_online=body.skip_if_players_online,
        )
    )
    return ScheduleResponse.of(schedule)


@router.delete("/schedules/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_schedule(schedule_id: uuid.UUID, actor: Writer, bus: BusDep) -> Response:
    await bus.handle(DeleteSchedule(actor=actor, schedule_id=schedule_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
