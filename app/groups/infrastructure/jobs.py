"""Node jobs of the groups context, and how the API asks for them without flooding a queue."""

from __future__ import annotations

import uuid

from redis.asyncio import Redis
from rq import get_current_job

from app.groups.infrastructure.sync import AccessSync
from app.servers.infrastructure.jobs import node_supervisor
from app.shared.domain import SystemClock
from app.shared.nodes import NodeJobs

SYNC_JOB = "app.groups.infrastructure.jobs.sync_server_access"
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
                SYNC_JOB,
                str(server_id),
                mode,
                priority="low" if check_only else "high",
                description=f"{mode} ops/whitelist of server {server_id}",
                job_timeout=120,
            )
        except BaseException:
            await self._redis.delete(key)
            raise


def sync_server_access(server_id: str, mode: str = APPLY) -> str:
    """RQ job: rewrite a server's lists (and tell its JVM) or, in check mode, measure drift."""
    job = get_current_job()
    if job is not None:
        job.connection.delete(PENDING_KEY.format(server_id=server_id, mode=mode))
    host, supervisor = node_supervisor()
    sync = AccessSync(supervisor.bus, SystemClock())
    target = uuid.UUID(server_id)
    outcome = host.submit(
        sync.apply(
            target,
            supervisor.directory(target).path,
            console=supervisor,
            check_only=mode == CHECK,
        )
    ).result(timeout=110)
    if outcome is None:
        return "server gone"
    return f"{len(outcome.commands)} commands, {len(outcome.failures)} failures"
