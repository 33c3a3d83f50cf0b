"""The API's side of what a server's node keeps on its disk: its custom jars."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable

from app.shared.agent import AgentClient


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
