"""The files routes of a node's agent: a server's directory as this node's file store serves it.

The API reaches them through `AgentFileStore`; each request carries a token for its one
operation on its one server. Paths are checked again here, as the API checks them, so a bug in
one layer is no way out of a server's directory.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from app.files.domain.model import FileState, TooLarge
from app.files.domain.paths import MAX_PATH_BYTES, FilePath
from app.files.infrastructure.pending import PendingUploads
from app.files.infrastructure.store import LocalFileStore
from app.files.infrastructure.wire import EXPECTED_HEADER, decode_expected, state_response
from app.shared.agent import NodeTokens, guard

PREFIX = "/v1/servers/{server_id}/files"
PathText = Annotated[str, Field(max_length=MAX_PATH_BYTES * 4)]


class PathBody(BaseModel):
    path: PathText


class ListingBody(PathBody):
    page: int = Field(ge=1, le=1_000_000)
    limit: int = Field(ge=1, le=1000)


class StateBody(PathBody):
    keep: int = Field(ge=0, le=64 * 1024 * 1024)


class DeleteBody(PathBody):
    recursive: bool


class MoveBody(BaseModel):
    source: PathText
    target: PathText


class CommitBody(BaseModel):
    replace: bool


def _writable(raw: str) -> FilePath:
    path = FilePath.parse(raw)
    path.check_writable()
    return path


def agent_router(
    store: LocalFileStore,
    uploads: PendingUploads,
    tokens: NodeTokens,
    node: str,
    *,
    edit_max_bytes: int,
    upload_max_bytes: int,
) -> APIRouter:
    router = APIRouter(prefix=PREFIX)

    def grant(op: str) -> Any:
        return Depends(guard(tokens, node, f"files.{op}"))

    @router.post("/listing", dependencies=[grant("listing")])
    async def listing(server_id: uuid.UUID, body: ListingBody) -> dict[str, Any]:
        path = FilePath.parse(body.path, allow_root=True)
        page = await store.listing(server_id, path, page=body.page, limit=body.limit)
        return {
            "items": [
                {
                    "name": entry.name,
                    "path": entry.path,
                    "type": entry.type,
                    "size": entry.size,
                    "modified_at": entry.modified_at.isoformat(),
                    "is_text": entry.is_text,
                }
                for entry in page.items
            ],
            "total": page.total,
        }

    @router.post("/state", dependencies=[grant("state")])
    async def state(server_id: uuid.UUID, body: StateBody) -> Response:
        found = await store.state(server_id, FilePath.parse(body.path), keep=body.keep)
        return state_response(found)

    @router.post("/write", dependencies=[grant("write")])
    async def write(
        server_id: uuid.UUID, request: Request, path: Annotated[str, Query(max_length=4096)]
    ) -> Response:
        target = _writable(path)
        content = await _bounded_body(request, edit_max_bytes)
        expected = decode_expected(request.headers.get(EXPECTED_HEADER))
        written = await store.write(server_id, target, content, expected=expected)
        return state_response(_without_content(written))

    @router.post("/delete", status_code=204, dependencies=[grant("delete")])
    async def delete(server_id: uuid.UUID, body: DeleteBody) -> None:
        await store.delete(server_id, _writable(body.path), recursive=body.recursive)

    @router.post("/is-directory", dependencies=[grant("is-directory")])
    async def is_directory(server_id: uuid.UUID, body: PathBody) -> dict[str, bool]:
        return {"value": await store.is_directory(server_id, FilePath.parse(body.path))}

    @router.post("/resolve", dependencies=[grant("resolve")])
    async def resolve(server_id: uuid.UUID, body: PathBody) -> dict[str, str]:
        return {"path": str(await store.resolve(server_id, FilePath.parse(body.path)))}

    @router.post("/holds-jar", dependencies=[grant("holds-jar")])
    async def holds_jar(server_id: uuid.UUID, body: PathBody) -> dict[str, bool]:
        path = FilePath.parse(body.path, allow_root=True)
        return {"value": await store.holds_jar(server_id, path)}

    @router.post("/mkdir", status_code=204, dependencies=[grant("mkdir")])
    async def mkdir(server_id: uuid.UUID, body: PathBody) -> None:
        await store.mkdir(server_id, _writable(body.path))

    @router.post("/move", status_code=204, dependencies=[grant("move")])
    async def move(server_id: uuid.UUID, body: MoveBody) -> None:
        await store.move(server_id, _writable(body.source), _writable(body.target))

    @router.get("/download", dependencies=[grant("download")])
    async def download(
        server_id: uuid.UUID, path: Annotated[str, Query(max_length=4096)]
    ) -> StreamingResponse:
        opened = await store.download(server_id, FilePath.parse(path))
        return StreamingResponse(
            opened.chunks,
            media_type="application/octet-stream",
            headers={"Content-Length": str(opened.size)},
        )

    @router.put("/uploads/{upload_id}", dependencies=[grant("upload")])
    async def upload(
        server_id: uuid.UUID,
        upload_id: str,
        request: Request,
        path: Annotated[str, Query(max_length=4096)],
    ) -> dict[str, Any]:
        target = _writable(path)
        sink = await store.upload(server_id, target)
        chunks = _chunks(request, upload_max_bytes)
        return await uploads.receive(server_id, upload_id, target, sink, chunks)

    @router.post("/uploads/{upload_id}/commit", dependencies=[grant("commit")])
    async def commit(server_id: uuid.UUID, upload_id: str, body: CommitBody) -> Response:
        return state_response(await uploads.commit(server_id, upload_id, replace=body.replace))

    @router.post("/uploads/{upload_id}/abort", status_code=204, dependencies=[grant("abort")])
    async def abort(server_id: uuid.UUID, upload_id: str) -> None:
        await uploads.abort(server_id, upload_id)

    return router


def _without_content(state: FileState) -> FileState:
    return FileState(exists=state.exists, size=state.size, sha256=state.sha256, mode=state.mode)


async def _chunks(request: Request, limit: int) -> AsyncIterator[bytes]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"uploads are limited to {limit} bytes", limit=limit)
        if chunk:
            yield chunk


async def _bounded_body(request: Request, limit: int) -> bytes:
    return b"".join([chunk async for chunk in _chunks(request, limit)])
