"""How the API asks a node for a backup or a restore, and how backups look servers up."""

from __future__ import annotations

import uuid

from app.backups.domain.ports import ServerRef
from app.servers.application.messages import GetServer
from app.servers.domain.model import ServerState
from app.shared.bus import MessageBus
from app.shared.nodes import NodeJob, NodeJobs
from app.shared.security import Principal


class RedisBackupJobs:
    def __init__(self, nodes: NodeJobs, *, job_timeout: int) -> None:
        self._nodes = nodes
        self._job_timeout = job_timeout

    async def backup(self, node: str, backup_id: uuid.UUID) -> str:
        return await self._nodes.enqueue_job(
            node,
            NodeJob.BACKUP,
            str(backup_id),
            priority="normal",
            description=f"backup {backup_id}",
            job_timeout=self._job_timeout,
        )

    async def restore(
        self, node: str, backup_id: uuid.UUID, target_server_id: uuid.UUID, by: uuid.UUID | None
    ) -> str:
        return await self._nodes.enqueue_job(
            node,
            NodeJob.RESTORE,
            str(backup_id),
            str(target_server_id),
            str(by or ""),
            priority="normal",
            description=f"restore backup {backup_id} onto server {target_server_id}",
            job_timeout=self._job_timeout,
        )

    async def is_online(self, node: str) -> bool:
        return await self._nodes.is_online(node)


class BusServerLookup:
    """Asks the servers context through its GetServer query (which applies ownership)."""

    def __init__(self, bus: MessageBus) -> None:
        self._bus = bus

    async def find(self, actor: Principal | None, server_id: uuid.UUID) -> ServerRef:
        server = await self._bus.handle(GetServer(actor=actor, server_id=server_id))
        return ServerRef(
            id=server.id,
            name=server.name,
            owner_id=server.owner_id,
            node=server.node,
            running=server.state is ServerState.RUNNING,
            players_online=len(server.players),
        )
