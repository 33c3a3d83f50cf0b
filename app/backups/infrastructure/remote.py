"""The API's archive stores: a local-storage archive is reached through the agent of the node
that holds it (app/backups/api/agent.py), an S3 one in S3; uploads always go through the
server's node, which spools and checks them. The API never touches a disk for either."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterable, Callable
from typing import Any

from app.backups.domain.errors import ArchiveMissing, StorageUnavailable
from app.backups.domain.model import Backup, Compression
from app.backups.domain.ports import ArchiveDownload, ArchiveFacts, BackupStorage
from app.shared.agent import AgentClient, body_chunks
from app.shared.uploads import StreamedUpload

_BASE = "/v1/servers/{server_id}/backups"


def _base(server_id: uuid.UUID) -> str:
    return _BASE.format(server_id=server_id)


def _facts(found: dict[str, Any]) -> ArchiveFacts:
    return ArchiveFacts(
        compression=Compression(found["compression"]),
        size_bytes=int(found["size_bytes"]),
        sha256=str(found["sha256"]),
        members=int(found["members"]),
        code_members=int(found["code_members"]),
    )


class AgentArchiveUpload:
    """An upload a node holds under the id the API chose, checked, until commit or abort."""

    def __init__(
        self,
        agents: AgentClient,
        node: str,
        server_id: uuid.UUID,
        upload_id: uuid.UUID,
        facts: ArchiveFacts,
    ) -> None:
        self._agents = agents
        self._node = node
        self._server_id = server_id
        self._upload_id = upload_id
        self.facts = facts

    async def commit(self, key: str) -> None:
        await _upload_call(
            self._agents, self._node, self._server_id, self._upload_id, "commit", key
        )

    async def abort(self) -> None:
        await _abort(self._agents, self._node, self._server_id, self._upload_id)


async def _abort(
    agents: AgentClient, node: str, server_id: uuid.UUID, upload_id: uuid.UUID
) -> None:
    with contextlib.suppress(Exception):
        await _upload_call(agents, node, server_id, upload_id, "abort")


async def _upload_call(
    agents: AgentClient,
    node: str,
    server_id: uuid.UUID,
    upload_id: uuid.UUID,
    op: str,
    key: str | None = None,
) -> None:
    await agents.call(
        node,
        f"backups.{op}",
        "POST",
        f"{_base(server_id)}/uploads/{upload_id}/{op}",
        server=server_id,
        json={"key": key} if key is not None else None,
    )


class AgentArchives:
    """Local storage: each node keeps the archives it took; the API asks that node."""

    def __init__(self, agents: AgentClient) -> None:
        self._agents = agents

    async def upload(
        self, node: str, server_id: uuid.UUID, chunks: AsyncIterable[bytes]
    ) -> AgentArchiveUpload:
        upload_id = uuid.uuid4()
        request = StreamedUpload(
            self._agents,
            node,
            "backups.upload",
            f"{_base(server_id)}/uploads/{upload_id}",
            server=server_id,
        )
        try:
            async for chunk in chunks:
                await request.write(chunk)
            response = await request.finish()
        except BaseException:
            if request.started:
                await request.cancel()
                await asyncio.shield(_abort(self._agents, node, server_id, upload_id))
            raise
        return AgentArchiveUpload(self._agents, node, server_id, upload_id, _facts(response.json()))

    async def open(self, backup: Backup) -> ArchiveDownload | None:
        try:
            response, chunks = await self._agents.download(
                backup.node,
                "backups.download",
                f"{_base(backup.server_id)}/archive",
                server=backup.server_id,
                params={"key": backup.file_path},
            )
        except ArchiveMissing:
            return None
        return ArchiveDownload(size=int(response.headers.get("content-length", 0)), chunks=chunks)

    async def delete(self, backup: Backup) -> None:
        await self._agents.call(
            backup.node,
            "backups.delete",
            "POST",
            f"{_base(backup.server_id)}/archive/delete",
            server=backup.server_id,
            json={"key": backup.file_path},
        )

    async def delete_all(self, node: str, server_id: uuid.UUID) -> int:
        response = await self._agents.call(
            node,
            "backups.delete-all",
            "POST",
            f"{_base(server_id)}/archives/delete-all",
            server=server_id,
        )
        return int(response.json()["removed"])

    async def stage(self, backup: Backup, *, node: str, server_id: uuid.UUID) -> None:
        """Stream the archive from the backup's node to `node`, as it is read."""
        if node == backup.node:
            return
        async with self._agents.stream(
            backup.node,
            "backups.download",
            "GET",
            f"{_base(backup.server_id)}/archive",
            server=backup.server_id,
            params={"key": backup.file_path},
        ) as source:
            await self._agents.call(
                node,
                "backups.stage",
                "PUT",
                f"{_base(server_id)}/staged/{backup.id}",
                server=server_id,
                params={
                    "compression": backup.compression.value,
                    "size": int(source.headers.get("content-length", 0)),
                },
                content=body_chunks(source, backup.node),
            )


class S3Archives:
    """S3 storage: the API reads and deletes in the bucket itself; an upload still goes through
    the server's node, which checks it and puts it into the bucket."""

    def __init__(self, storage: BackupStorage, uploads: AgentArchives) -> None:
        self._storage = storage
        self._uploads = uploads

    async def upload(
        self, node: str, server_id: uuid.UUID, chunks: AsyncIterable[bytes]
    ) -> AgentArchiveUpload:
        return await self._uploads.upload(node, server_id, chunks)

    async def open(self, backup: Backup) -> ArchiveDownload | None:
        try:
            size = await asyncio.to_thread(self._storage.size, backup.file_path)
        except OSError as exc:
            raise StorageUnavailable(f"the backup storage cannot be reached: {exc}") from exc
        if size is None:
            return None
        return ArchiveDownload(size=size, chunks=self._storage.chunks(backup.file_path))

    async def delete(self, backup: Backup) -> None:
        await self._blocking(self._storage.delete, backup.file_path)

    async def delete_all(self, node: str, server_id: uuid.UUID) -> int:
        return await self._blocking(self._storage.delete_all, f"{server_id}/")

    async def stage(self, backup: Backup, *, node: str, server_id: uuid.UUID) -> None:
        """Every node reads the bucket: nothing to copy."""

    @staticmethod
    async def _blocking[T](call: Callable[[str], T], key: str) -> T:
        try:
            return await asyncio.to_thread(call, key)
        except OSError as exc:
            raise StorageUnavailable(f"the backup storage failed: {exc}") from exc
