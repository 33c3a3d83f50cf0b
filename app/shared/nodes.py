"""The small port through which a context hands work to a server's node: a job on its queue."""

from __future__ import annotations

from typing import Protocol


class NodeJobs(Protocol):
    async def enqueue_job(
        self,
        node: str,
        function: str,
        *args: str,
        priority: str,
        description: str,
        job_timeout: int | None = None,
        job_id: str | None = None,
    ) -> str:
        """Queue `function` (a dotted path the node's worker runs) on one of its queues."""
        ...

    async def is_online(self, node: str) -> bool: ...
