"""The backups routes of a node's agent: the archives this node holds, uploads it checks for
the API, and archives of other nodes staged here for a restore.

The API reaches them through `AgentArchives`; each request carries a token for its one
operation on its one server, and every key is checked again here to be one of that server's.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from app.backups.domain.errors import ArchiveMissing, StorageUnavailable
from app.backups.domain.model import Compression, checked_key, staged_key
from app.backups.domain.ports import BackupStorage
from app.backups.infrastructure.spool import ArchiveSpool
from app.shared.agent import NodeTokens, guard

PREFIX = "/v1/servers/{server_id}/backups"
MAX_ARCHIVE_BYTES = 1024**5
Key = Annotated[str, Field(max_length=200)]


class KeyBody(BaseModel):
    key: Key


async def _chunks(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


def agent_router(
    storage: BackupStorage, spool: ArchiveSpool, tokens: NodeTokens, node: str
) -> APIRouter:
    router = APIRouter(prefix=PREFIX)

    def grant(op: str) -> Any:
        return Depends(guard(tokens, node, f"backups.{op}"))

    @router.put("/uploads/{upload_id}", dependencies=[grant("upload")])
    async def upload(
        server_id: uuid.UUID, upload_id: uuid.UUID, request: Request
    ) -> dict[str, str | int]:
        facts = await spool.receive(server_id, upload_id, _chunks(request))
        return {
            "compression": facts.compression.value,
            "size_bytes": facts.size_bytes,
            "sha256": facts.sha256,
            "members": facts.members,
            "code_members": facts.code_members,
        }

    @router.post("/uploads/{upload_id}/commit", status_code=204, dependencies=[grant("commit")])
    async def commit(server_id: uuid.UUID, upload_id: uuid.UUID, body: KeyBody) -> None:
        await spool.commit(server_id, upload_id, checked_key(server_id, body.key))

    @router.post("/uploads/{upload_id}/abort", status_code=204, dependencies=[grant("abort")])
    async def abort(server_id: uuid.UUID, upload_id: uuid.UUID) -> None:
        await spool.abort(server_id, upload_id)

    @router.get("/archive", dependencies=[grant("download")])
    async def download(
        server_id: uuid.UUID, key: Annotated[str, Query(max_length=200)]
    ) -> StreamingResponse:
        checked = checked_key(server_id, key)
        size = await _blocking(storage.size, checked)
        if size is None:
            raise ArchiveMissing(f"the archive {checked} is missing from node {node}", node=node)
        return StreamingResponse(
            storage.chunks(checked),
            media_type="application/octet-stream",
            headers={"Content-Length": str(size)},
        )

    @router.post("/archive/delete", status_code=204, dependencies=[grant("delete")])
    async def delete(server_id: uuid.UUID, body: KeyBody) -> None:
        await _blocking(storage.delete, checked_key(server_id, body.key))

    @router.post("/archives/delete-all", dependencies=[grant("delete-all")])
    async def delete_all(server_id: uuid.UUID) -> dict[str, int]:
        return {"removed": await _blocking(storage.delete_all, f"{server_id}/")}

    @router.put("/staged/{backup_id}", status_code=204, dependencies=[grant("stage")])
    async def stage(
        server_id: uuid.UUID,
        backup_id: uuid.UUID,
        request: Request,
        compression: Compression,
        size: Annotated[int, Query(ge=0, le=MAX_ARCHIVE_BYTES)],
    ) -> None:
        key = staged_key(server_id, backup_id, compression)
        await spool.stage(key, _chunks(request), size=size)

    return router


async def _blocking[**P, T](call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    try:
        return await asyncio.to_thread(call, *args, **kwargs)
    except OSError as exc:
        raise StorageUnavailable(f"the node's backup storage failed: {exc}") from exc
