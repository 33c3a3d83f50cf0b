"""How the API asks a node to sync a server's ops and whitelist, without flooding its queue."""

from __future__ import annotations

import uuid

from redis import Redis as SyncRedis
from redis.asyncio import Redis

from app.shared.nodes import NodeJob, NodeJobs

PENDING_KEY = "groups:sync:{server_id}:{mode}"
APPLY, CHECK = "apply", "check"


class RedisSyncRequests:
    """At most one queued sync per server and mode: a burst of changes costs one job.

    The job clears its key when it starts, so a change made while it runs queues another.
    """

    def __init__(self, redis: Redis, nodes: NodeJobs, *, ttl_seconds: int) -> None:
        self._redis = redis
        self._nodes = nodes
        self._ttl = ttl_seconds

    async def request(self, server_id: uuid.UUID, node: str, *, check_only: bool = False) -> None:
        mode = CHECK if check_only else APPLY
        key = PENDING_KEY.format(server_id=server_id, mode=mode)
        if not await self._redis.set(key, node, nx=True, ex=self._ttl):
            return
        try:
            await self._nodes.enqueue_job(
                node,
                NodeJob.SYNC_ACCESS,
                str(server_id),
                mode,
                priority="low" if check_only else "high",
                description=f"{mode} ops/whitelist of server {server_id}",
                job_timeout=120,
            )
        except BaseException:
            await self._redis.delete(key)
            raise


def clear_pending(connection: SyncRedis, server_id: str, mode: str) -> None:
    """A sync job that starts lets the next change queue another one."""
    connection.delete(PENDING_KEY.format(server_id=server_id, mode=mode))
