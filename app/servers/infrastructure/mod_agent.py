"""The API's side of a server's mods/ and plugins/: every file operation happens on its node,
through the node's agent; and the safety backup an owner may ask for first."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Sequence

from app.servers.domain.mods import ModFile, NodeJar
from app.shared.agent import AgentClient
from app.shared.bus import MessageBus
from app.shared.domain import Conflict
from app.shared.security import Principal

INSTALL_TIMEOUT = 600.0
"""How long a node may download and verify before it answers an install."""


class AgentModFiles:
    def __init__(self, agents: AgentClient) -> None:
        self._agents = agents

    async def list(self, node: str, server_id: uuid.UUID, directory: str) -> list[NodeJar]:
        answer = await self._agents.call(
            node,
            "servers.mods-list",
            "GET",
            f"/v1/servers/{server_id}/mods",
            server=server_id,
            params={"directory": directory},
            read_timeout=120.0,
        )
        return [NodeJar(**item) for item in answer.json()]

    async def install(
        self,
        node: str,
        server_id: uuid.UUID,
        directory: str,
        files: Sequence[ModFile],
        *,
        replace: Sequence[str] = (),
    ) -> None:
        await self._agents.call(
            node,
            "servers.mods-install",
            "POST",
            f"/v1/servers/{server_id}/mods/install",
            server=server_id,
            json={
                "directory": directory,
                "files": [dataclasses.asdict(f) for f in files],
                "replace": list(replace),
            },
            read_timeout=INSTALL_TIMEOUT,
        )

    async def change(
        self, node: str, server_id: uuid.UUID, directory: str, file_name: str, action: str
    ) -> str:
        answer = await self._agents.call(
            node,
            "servers.mods-change",
            "POST",
            f"/v1/servers/{server_id}/mods/change",
            server=server_id,
            json={"directory": directory, "file_name": file_name, "action": action},
        )
        return str(answer.json()["file_name"])


class BusSafetyBackups:
    """A backup through the backups context's own CreateBackup, waited for until it completed."""

    def __init__(self, bus: MessageBus, *, timeout: float = 600.0, poll: float = 0.5) -> None:
        self._bus = bus
        self._timeout = timeout
        self._poll = poll

    async def take(self, actor: object, server_id: uuid.UUID, reason: str) -> uuid.UUID:
        from app.backups.application.messages import CreateBackup, GetBackup

        assert isinstance(actor, Principal)
        backup = await self._bus.handle(
            CreateBackup(actor=actor, server_id=server_id, name=f"safety: {reason}"[:100])
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        while loop.time() < deadline:
            current = await self._bus.handle(GetBackup(actor=actor, backup_id=backup.id))
            if current.status.value == "completed":
                return current.id
            if current.status.value == "failed":
                raise Conflict(
                    f"the safety backup failed ({current.error or 'no reason given'}); nothing"
                    " was changed",
                    backup_id=str(current.id),
                )
            await asyncio.sleep(self._poll)
        raise Conflict(
            "the safety backup did not complete in time; nothing was changed",
            backup_id=str(backup.id),
        )

    async def restore(self, actor: object, server_id: uuid.UUID, backup_id: uuid.UUID) -> str:
        from app.backups.application.messages import RestoreBackup

        assert isinstance(actor, Principal)
        accepted = await self._bus.handle(
            RestoreBackup(actor=actor, backup_id=backup_id, target_server_id=server_id)
        )
        return accepted.job_id
