"""The API's file store: every call goes to the agent of the server's node (app/files/api/agent.py),
so the API never touches a server's disk. Downloads and uploads stream both ways."""

from __future__ import annotations

import contextlib
import secrets
from datetime import datetime
from typing import Any

from httpx import Response

from app.files.domain.model import FileState, sha256_of
from app.files.domain.paths import FilePath
from app.files.domain.ports import Download, FileEntry, ServerAccess
from app.files.infrastructure.wire import EXPECTED_HEADER, encode_expected, state_of
from app.shared.agent import AgentClient
from app.shared.domain import Page
from app.shared.uploads import StreamedUpload

_BASE = "/v1/servers/{server_id}/files"


class AgentFileStore:
    def __init__(self, agents: AgentClient) -> None:
        self._agents = agents

    async def _post(self, server: ServerAccess, op: str, body: dict[str, Any]) -> Response:
        return await self._agents.call(
            server.node,
            f"files.{op}",
            "POST",
            f"{_BASE.format(server_id=server.server_id)}/{op}",
            server=server.server_id,
            json=body,
        )

    async def listing(
        self, server: ServerAccess, path: FilePath, *, page: int, limit: int
    ) -> Page[FileEntry]:
        body = {"path": str(path), "page": page, "limit": limit}
        found = (await self._post(server, "listing", body)).json()
        items = [
            FileEntry(
                name=item["name"],
                path=item["path"],
                type=item["type"],
                size=item["size"],
                modified_at=datetime.fromisoformat(item["modified_at"]),
                is_text=item["is_text"],
            )
            for item in found["items"]
        ]
        return Page(items=items, total=found["total"], page=page, limit=limit)

    async def state(self, server: ServerAccess, path: FilePath, *, keep: int) -> FileState:
        response = await self._post(server, "state", {"path": str(path), "keep": keep})
        return state_of(response.headers, response.content)

    async def write(
        self,
        server: ServerAccess,
        path: FilePath,
        content: bytes,
        *,
        expected: FileState | None = None,
    ) -> FileState:
        headers = {EXPECTED_HEADER: encode_expected(expected)} if expected is not None else {}
        response = await self._agents.call(
            server.node,
            "files.write",
            "POST",
            f"{_BASE.format(server_id=server.server_id)}/write",
            server=server.server_id,
            params={"path": str(path)},
            content=content,
            headers=headers,
        )
        written = state_of(response.headers, b"")
        return FileState(
            exists=written.exists,
            size=written.size,
            sha256=written.sha256,
            content=content if written.sha256 == sha256_of(content) else None,
            mode=written.mode,
        )

    async def delete(self, server: ServerAccess, path: FilePath, *, recursive: bool) -> None:
        await self._post(server, "delete", {"path": str(path), "recursive": recursive})

    async def is_directory(self, server: ServerAccess, path: FilePath) -> bool:
        return bool((await self._post(server, "is-directory", {"path": str(path)})).json()["value"])

    async def resolve(self, server: ServerAccess, path: FilePath) -> FilePath:
        found = (await self._post(server, "resolve", {"path": str(path)})).json()["path"]
        return FilePath.parse(found, allow_root=True)

    async def holds_jar(self, server: ServerAccess, path: FilePath) -> bool:
        return bool((await self._post(server, "holds-jar", {"path": str(path)})).json()["value"])

    async def mkdir(self, server: ServerAccess, path: FilePath) -> None:
        await self._post(server, "mkdir", {"path": str(path)})

    async def move(self, server: ServerAccess, source: FilePath, target: FilePath) -> None:
        await self._post(server, "move", {"source": str(source), "target": str(target)})

    async def download(self, server: ServerAccess, path: FilePath) -> Download:
        response, chunks = await self._agents.download(
            server.node,
            "files.download",
            f"{_BASE.format(server_id=server.server_id)}/download",
            server=server.server_id,
            params={"path": str(path)},
        )
        size = int(response.headers.get("content-length", 0))
        return Download(name=path.name, size=size, sha256=None, chunks=chunks)

    async def upload(self, server: ServerAccess, path: FilePath) -> AgentUploadSink:
        return AgentUploadSink(self._agents, server, path)


class AgentUploadSink:
    """Chunks go to the node as they come, over one streamed request; the node keeps them in
    a temporary file until `commit`. An upload the client breaks off is aborted on the node."""

    def __init__(self, agents: AgentClient, server: ServerAccess, path: FilePath) -> None:
        self._agents = agents
        self._server = server
        self._upload_id = secrets.token_urlsafe(18)
        self._request = StreamedUpload(
            agents,
            server.node,
            "files.upload",
            self._url(f"/{self._upload_id}"),
            server=server.server_id,
            params={"path": str(path)},
        )
        self._done = False

    @property
    def size(self) -> int:
        return self._request.size

    def _url(self, tail: str = "") -> str:
        return f"{_BASE.format(server_id=self._server.server_id)}/uploads{tail}"

    async def write(self, chunk: bytes) -> None:
        await self._request.write(chunk)

    async def commit(self, *, replace: bool) -> FileState:
        await self._request.finish()
        response = await self._agents.call(
            self._server.node,
            "files.commit",
            "POST",
            self._url(f"/{self._upload_id}/commit"),
            server=self._server.server_id,
            json={"replace": replace},
        )
        self._done = True
        return state_of(response.headers, response.content)

    async def abort(self) -> None:
        """Stop sending, then have the node discard what it holds (it waits until it has)."""
        if self._done or not self._request.started:
            return
        self._done = True
        await self._request.cancel()
        with contextlib.suppress(Exception):
            await self._agents.call(
                self._server.node,
                "files.abort",
                "POST",
                self._url(f"/{self._upload_id}/abort"),
                server=self._server.server_id,
            )
