"""HTTP routes of the files context: /api/v2/servers/{server_id}/files."""

from __future__ import annotations

import mimetypes
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from app.files.api.schemas import (
    DiffResponse,
    FileListResponse,
    MakeDirectoryRequest,
    MoveRequest,
    TextFileResponse,
    VersionDetailResponse,
    VersionPage,
    VersionResponse,
    WriteFileRequest,
    WriteResultResponse,
)
from app.files.application.messages import (
    DeleteFile,
    DiffVersion,
    GetVersion,
    ListFiles,
    ListVersions,
    MakeDirectory,
    MoveFile,
    OpenDownload,
    ReadFile,
    RestoreVersion,
    UploadFile,
    WriteFile,
)
from app.files.domain.model import TooLarge
from app.files.domain.paths import MAX_PATH_BYTES
from app.servers.application.messages import GetServer
from app.settings import Settings
from app.shared.bodies import UnsupportedMediaType, body_limit
from app.shared.dependencies import BusDep, require
from app.shared.domain import INT32_MAX, InvalidInput
from app.shared.http import content_disposition
from app.shared.multipart import (
    MULTIPART_OVERHEAD,
    MalformedUpload,
    MultipartStream,
    multipart_file_body,
)
from app.shared.openapi import problems
from app.shared.security import Permission, Principal

router = APIRouter(
    prefix="/api/v2/servers/{server_id}/files",
    tags=["files"],
    responses=problems(
        {
            400: "the path is malformed (control characters, '..', absolute, too long) or names "
            "a directory where a file is needed",
            409: "a component of the path is a file where a directory is needed, or the reverse",
        }
    ),
)
STALE = "If-Match is not the file's current ETag (or If-None-Match: * and it exists)"
NEEDS_IF_MATCH = "the file exists: send If-Match with the ETag you read to replace it"

Reader = Annotated[Principal, Depends(require(Permission.FILE_READ))]
Writer = Annotated[Principal, Depends(require(Permission.FILE_WRITE))]
PATH_SCHEMA = {"maxLength": MAX_PATH_BYTES}  # enforced in bytes by FilePath.parse: a 400 beyond
FilePathParam = Annotated[
    str,
    Path(
        description="a path relative to the server directory, e.g. config/ops.json",
        json_schema_extra=PATH_SCHEMA,
    ),
]
VersionNumber = Annotated[int, Path(ge=1, le=INT32_MAX, description="a version of the file")]
IfMatch = Annotated[
    str | None, Header(max_length=1024, description="The ETag you read; required to replace")
]

_TEXT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": WriteFileRequest.model_json_schema()},
            "text/plain": {"schema": {"type": "string", "examples": ["Welcome to our server!\n"]}},
        },
    }
}


def edit_body_limit(settings: Settings) -> int:
    """A text edit's body: JSON escapes may take six bytes per byte of content."""
    return settings.file_edit_max_bytes * 6 + 1024


@router.get("", summary="List a directory: directories first, then files, by name")
async def list_files(
    server_id: uuid.UUID,
    actor: Reader,
    bus: BusDep,
    path: Annotated[
        str, Query(description="Directory; empty for the root", json_schema_extra=PATH_SCHEMA)
    ] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> FileListResponse:
    listing = await bus.handle(
        ListFiles(actor=actor, server_id=server_id, path=path, page=page, limit=limit)
    )
    return FileListResponse.of(path, listing)


@router.post(
    "/upload",
    status_code=status.HTTP_201_CREATED,
    summary="Upload files (multipart/form-data), streamed to disk and renamed into place",
    description="One request carries at most MCDASH_FILE_UPLOAD_MAX_BYTES of files. A `.jar` "
    "into plugins/ or mods/ needs the server:code permission.",
    openapi_extra=multipart_file_body("the file(s) to upload", many=True),
    responses=problems(
        {
            400: "the multipart body is malformed, holds no file part, or a file name is not "
            "a plain name",
            409: "a file of that name exists and overwrite is false",
        }
    ),
)
@body_limit(lambda settings: settings.file_upload_max_bytes + MULTIPART_OVERHEAD)
async def upload_files(
    server_id: uuid.UUID,
    request: Request,
    actor: Writer,
    bus: BusDep,
    path: Annotated[str, Query(description="Target directory")] = "",
    overwrite: bool = False,
) -> list[WriteResultResponse]:
    await bus.handle(GetServer(actor=actor, server_id=server_id))  # before a byte is read
    results = []
    async for part in MultipartStream(request).files():
        result = await bus.handle(
            UploadFile(
                actor=actor,
                server_id=server_id,
                directory=path,
                filename=part.filename,
                chunks=part.chunks,
                overwrite=overwrite,
            )
        )
        results.append(WriteResultResponse.of(result))
    if not results:
        raise MalformedUpload("the form holds no file part")
    return results


@router.post(
    "/mkdir",
    status_code=status.HTTP_201_CREATED,
    summary="Create a directory",
    response_class=Response,
    responses={201: {"description": "Created", "content": None}},
)
async def make_directory(
    server_id: uuid.UUID, body: MakeDirectoryRequest, actor: Writer, bus: BusDep
) -> Response:
    await bus.handle(MakeDirectory(actor=actor, server_id=server_id, path=body.path))
    return Response(status_code=status.HTTP_201_CREATED)


@router.get("/{file_path:path}/history", summary="Versions of a file, newest first")
async def list_versions(
    server_id: uuid.UUID,
    file_path: FilePathParam,
    actor: Reader,
    bus: BusDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> VersionPage:
    versions = await bus.handle(
        ListVersions(actor=actor, server_id=server_id, path=file_path, page=page, limit=limit)
    )
    return VersionPage(
        items=[VersionResponse.of(version) for version in versions.items],
        total=versions.total,
        page=versions.page,
        limit=versions.limit,
    )


@router.get(
    "/{file_path:path}/history/{version}/diff",
    summary="Diff a version to the file",
    responses=problems({415: "the version kept no text, or the current file is not text"}),
)
async def diff_version(
    server_id: uuid.UUID,
    file_path: FilePathParam,
    version: VersionNumber,
    actor: Reader,
    bus: BusDep,
) -> DiffResponse:
    diff = await bus.handle(
        DiffVersion(actor=actor, server_id=server_id, path=file_path, version=version)
    )
    return DiffResponse.of(diff)


@router.post(
    "/{file_path:path}/history/{version}/restore",
    summary="Write a version back; the restore is recorded as a new version",
    responses=problems(
        {
            409: "the version records a removal, or kept no content to restore",
            412: STALE,
            428: NEEDS_IF_MATCH,
        }
    ),
)
async def restore_version(
    server_id: uuid.UUID,
    file_path: FilePathParam,
    version: VersionNumber,
    response: Response,
    actor: Writer,
    bus: BusDep,
    if_match: IfMatch = None,
) -> WriteResultResponse:
    result = await bus.handle(
        RestoreVersion(
            actor=actor, server_id=server_id, path=file_path, version=version, if_match=if_match
        )
    )
    if result.etag:
        response.headers["ETag"] = result.etag
    return WriteResultResponse.of(result)


@router.get("/{file_path:path}/history/{version}", summary="One version, with its text if kept")
async def get_version(
    server_id: uuid.UUID,
    file_path: FilePathParam,
    version: VersionNumber,
    actor: Reader,
    bus: BusDep,
) -> VersionDetailResponse:
    found = await bus.handle(
        GetVersion(actor=actor, server_id=server_id, path=file_path, version=version)
    )
    return VersionDetailResponse.of(found)


@router.get(
    "/{file_path:path}/download",
    summary="Download any regular file, streamed",
    response_class=StreamingResponse,
    responses={200: {"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def download_file(
    server_id: uuid.UUID, file_path: FilePathParam, actor: Reader, bus: BusDep
) -> StreamingResponse:
    download = await bus.handle(OpenDownload(actor=actor, server_id=server_id, path=file_path))
    media_type = mimetypes.guess_type(download.name)[0] or "application/octet-stream"
    headers = {
        "Content-Disposition": content_disposition(download.name),
        "Content-Length": str(download.size),
    }
    return StreamingResponse(download.chunks, media_type=media_type, headers=headers)


@router.post(
    "/{file_path:path}/move",
    summary="Rename or move a file or directory",
    responses=problems({409: "the target exists"}),
)
async def move_file(
    server_id: uuid.UUID, file_path: FilePathParam, body: MoveRequest, actor: Writer, bus: BusDep
) -> WriteResultResponse:
    result = await bus.handle(
        MoveFile(actor=actor, server_id=server_id, path=file_path, to=body.to)
    )
    return WriteResultResponse.of(result)


@router.get(
    "/{file_path:path}",
    summary="Read a text file (its ETag is in the ETag header); binary files are downloaded",
    responses=problems({415: "not a text file within the edit limit: download it"}),
)
async def read_file(
    server_id: uuid.UUID, file_path: FilePathParam, response: Response, actor: Reader, bus: BusDep
) -> TextFileResponse:
    text = await bus.handle(ReadFile(actor=actor, server_id=server_id, path=file_path))
    response.headers["ETag"] = text.etag
    return TextFileResponse.of(text)


@router.put(
    "/{file_path:path}",
    summary="Save a text file atomically: If-Match to replace, If-None-Match: * to create",
    openapi_extra=_TEXT_BODY,
    responses=problems({412: STALE, 428: NEEDS_IF_MATCH}),
)
@body_limit(edit_body_limit)
async def write_file(
    server_id: uuid.UUID,
    file_path: FilePathParam,
    request: Request,
    response: Response,
    actor: Writer,
    bus: BusDep,
    if_match: IfMatch = None,
    if_none_match: Annotated[
        str | None, Header(max_length=1024, description="* to create only")
    ] = None,
) -> WriteResultResponse:
    content = await _text_body(request)
    result = await bus.handle(
        WriteFile(
            actor=actor,
            server_id=server_id,
            path=file_path,
            content=content,
            if_match=if_match,
            if_none_match=if_none_match,
        )
    )
    if result.etag:
        response.headers["ETag"] = result.etag
    if result.created:
        response.status_code = status.HTTP_201_CREATED
    return WriteResultResponse.of(result)


@router.delete(
    "/{file_path:path}",
    summary="Delete a file (its history is kept) or a directory",
    responses=problems({409: "the directory is not empty and recursive is false", 412: STALE}),
)
async def delete_file(
    server_id: uuid.UUID,
    file_path: FilePathParam,
    actor: Writer,
    bus: BusDep,
    if_match: IfMatch = None,
    recursive: bool = False,
) -> WriteResultResponse:
    result = await bus.handle(
        DeleteFile(
            actor=actor,
            server_id=server_id,
            path=file_path,
            if_match=if_match,
            recursive=recursive,
        )
    )
    return WriteResultResponse.of(result)


async def _text_body(request: Request) -> str:
    """The new content, from JSON {"content": ...} or a text body, read up to a bound."""
    limit = request.app.state.settings.file_edit_max_bytes
    bound = edit_body_limit(request.app.state.settings)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > bound:
            raise TooLarge(f"text edits are limited to {limit} bytes", limit=limit)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media in ("", "text/plain"):
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("the text body is not UTF-8; upload binary files") from None
    if media != "application/json":
        raise UnsupportedMediaType("send application/json {'content': ...} or text/plain")
    try:
        return WriteFileRequest.model_validate_json(body).content
    except ValueError:
        raise InvalidInput('the body must be JSON {"content": "..."} of UTF-8 text') from None
