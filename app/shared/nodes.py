"""Where the API and the nodes meet: queue names, the node record key, the job names, and the
small port through which a context hands work to a server's node."""

from __future__ import annotations

import enum
from typing import Protocol

NODE_KEY = "mcdash:nodes:{node}"
NODE_NAMES = "mcdash:node-names"
"""Every node that has sent a heartbeat: the set to read node records by, never a SCAN of the
keyspace (which grows with the servers). A name whose record expired is dropped on reading."""
PRIORITIES = ("high", "normal", "low")
WEBHOOK_QUEUE = "webhooks"
"""Shared by every node worker, which takes from it after its own queues."""


def node_key(node: str) -> str:
    return NODE_KEY.format(node=node)


def queue_names(node: str) -> list[str]:
    """A node's queues, most urgent first: start/stop, then backups, then metrics and cleanup."""
    return [f"node:{node}:{priority}" for priority in PRIORITIES]


class NodeJob(enum.StrEnum):
    """Every job a node's worker runs (app/node_jobs.py); a job naming anything else fails."""

    START = "app.node_jobs.start_server"
    STOP = "app.node_jobs.stop_server"
    KILL = "app.node_jobs.kill_server"
    RESTART = "app.node_jobs.restart_server"
    SYNC_FILES = "app.node_jobs.sync_server_files"
    DELETE_FILES = "app.node_jobs.delete_server_files"
    BACKUP = "app.node_jobs.run_backup"
    RESTORE = "app.node_jobs.run_restore"
    SYNC_ACCESS = "app.node_jobs.sync_server_access"
    PING = "app.node_jobs.ping"
    DELIVER_WEBHOOK = "app.node_jobs.deliver_webhook"


class NodeJobs(Protocol):
    async def enqueue_job(
        self,
        node: str,
        job: NodeJob,
        *args: str,
        priority: str,
        description: str,
        job_timeout: int | None = None,
        job_id: str | None = None,
    ) -> str:
        """Queue `job` on one of the node's queues; its id."""
        ...

    async def is_online(self, node: str) -> bool: ...
