"""The API's side of what a server's node keeps on its disk: its custom jars, and its tree
when the server moves to another node."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, AsyncIterator

from app.shared.agent import AgentClient, body_chunks


class AgentJarStore:
    """A custom jar streamed to the server's node, which checks it and keeps it by checksum."""

    def __init__(self, agents: AgentClient) -> None:
        self._agents = agents

    async def store_upload(
        self, node: str, server_id: uuid.UUID, chunks: AsyncIterable[bytes]
    ) -> tuple[str, int]:
        response = await self._agents.call(
            node,
            "servers.jar",
            "PUT",
            f"/v1/servers/{server_id}/jar",
            server=server_id,
            content=chunks,
            headers={"Content-Type": "application/java-archive"},
        )
        stored = response.json()
        return str(stored["sha256"]), int(stored["size"])


TREE_TIMEOUT = 600.0
"""How long a node may work before it answers a tree request: it reads the whole tree."""


class AgentServerTrees:
    """A stopped server's tree streamed from one node's agent into another's, through the API,
    which holds no more of it than the chunks in flight."""

    def __init__(self, agents: AgentClient) -> None:
        self._agents = agents

    async def copy(self, server_id: uuid.UUID, *, source: str, target: str) -> str:
        path = f"/v1/servers/{server_id}/tree"
        async with self._agents.stream(
            source, "servers.tree-read", "GET", path, server=server_id
        ) as sent:
            return await self.receive(target, server_id, body_chunks(sent, source))

    async def receive(self, node: str, server_id: uuid.UUID, tar: AsyncIterator[bytes]) -> str:
        """An uncompressed tar into the node's staging copy of the server; its digest there."""
        received = await self._agents.call(
            node,
            "servers.tree-write",
            "PUT",
            f"/v1/servers/{server_id}/tree/incoming",
            server=server_id,
            content=tar,
            headers={"Content-Type": "application/x-tar"},
            read_timeout=TREE_TIMEOUT,
        )
        return str(received.json()["digest"])

    async def digest(self, node: str, server_id: uuid.UUID) -> str:
        answer = await self._agents.call(
            node,
            "servers.tree-digest",
            "GET",
            f"/v1/servers/{server_id}/tree/digest",
            server=server_id,
            read_timeout=TREE_TIMEOUT,
        )
        return str(answer.json()["digest"])

    async def copy_jar(self, server_id: uuid.UUID, sha256: str, *, source: str, target: str) -> str:
        path = f"/v1/servers/{server_id}/jar"
        async with self._agents.stream(
            source, "servers.jar-read", "GET", path, server=server_id, params={"sha256": sha256}
        ) as sent:
            stored = await self._agents.call(
                target,
                "servers.jar",
                "PUT",
                path,
                server=server_id,
                content=body_chunks(sent, source),
                headers={"Content-Type": "application/java-archive"},
                read_timeout=TREE_TIMEOUT,
            )
        return str(stored.json()["sha256"])

    async def commit(self, node: str, server_id: uuid.UUID) -> None:
        await self._agents.call(
            node,
            "servers.tree-commit",
            "POST",
            f"/v1/servers/{server_id}/tree/incoming/commit",
            server=server_id,
        )

    async def discard(self, node: str, server_id: uuid.UUID, *, live: bool) -> None:
        await self._agents.call(
            node,
            "servers.tree-discard",
            "POST",
            f"/v1/servers/{server_id}/tree/discard",
            server=server_id,
            params={"live": "true" if live else "false"},
            read_timeout=TREE_TIMEOUT,
        )
