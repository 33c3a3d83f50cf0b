"""RQ job functions of backups, the gateway that queues them, and the servers lookup."""

from __future__ import annotations

import uuid
from typing import Any

from app.backups.domain.ports import ServerRef
from app.backups.infrastructure.node import BackupNode
from app.servers.application.messages import GetServer
from app.servers.domain.model import ServerState
from app.servers.infrastructure.jobs import node_supervisor
from app.shared.bus import MessageBus
from app.shared.nodes import NodeJobs
from app.shared.security import Principal

BACKUP_JOB = "app.backups.infrastructure.jobs.run_backup"
RESTORE_JOB = "app.backups.infrastructure.jobs.run_restore"


def _backup_node(host: Any) -> BackupNode:
    """The node's BackupNode, built by bootstrap for this worker's container."""
    node: BackupNode = host.container.backups.node
    return node


def run_backup(backup_id: str) -> str:
    """Hand the backup to the supervisor's loop and return: the SimpleWorker is not held."""
    host, supervisor = node_supervisor()
    host.submit(_backup_node(host).backup(supervisor, uuid.UUID(backup_id)))
    return "backup accepted"


def run_restore(backup_id: str, target_server_id: str, requested_by: str) -> str:
    host, supervisor = node_supervisor()
    node = _backup_node(host)
    by = uuid.UUID(requested_by) if requested_by else None
    host.submit(node.restore(supervisor, uuid.UUID(backup_id), uuid.UUID(target_server_id), by))
    return "restore accepted"


class RedisBackupJobs:
    def __init__(self, nodes: NodeJobs, *, job_timeout: int) -> None:
        self._nodes = nodes
        self._job_timeout = job_timeout

    async def backup(self, node: str, backup_id: uuid.UUID) -> str:
        return await self._nodes.enqueue_job(
            node,
            BACKUP_JOB,
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
            RESTORE_JOB,
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
        )
