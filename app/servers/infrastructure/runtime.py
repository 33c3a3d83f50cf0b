"""Redis-side plumbing between the API and node workers: jobs, console, live status and logs."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import Sequence
from dataclasses import fields
from typing import Any, cast

from redis import Redis as SyncRedis
from redis.asyncio import Redis

from app.servers.domain.ports import ConsoleEntry, NodeInfo, ServerRuntime
from app.shared.jobqueue import json_queue
from app.shared.nodes import NODE_NAMES, PRIORITIES, NodeJob, node_key, queue_names

NODE_CONSOLE_CHANNEL = "node:{node}:console"
STATUS_KEY = "server:{server_id}:status"
STATUS_CHANNEL = "server:{server_id}:status"
CONSOLE_STREAM = "server:{server_id}:console"
CONSOLE_CHANNEL = "server:{server_id}:console"
JOB_OF = {
    "start": NodeJob.START,
    "stop": NodeJob.STOP,
    "kill": NodeJob.KILL,
    "restart": NodeJob.RESTART,
    "sync_files": NodeJob.SYNC_FILES,
    "delete_files": NodeJob.DELETE_FILES,
}
_QUEUE_OF = {"sync_files": "low", "delete_files": "low"}


class RedisNodeGateway:
    """Lifecycle jobs go to the node's RQ queues; console lines go over the node's channel."""

    def __init__(self, redis: Redis, sync_redis: SyncRedis, *, job_ttl: int) -> None:
        self._redis = redis
        self._sync_redis = sync_redis
        self._job_ttl = job_ttl

    async def is_online(self, node: str) -> bool:
        return bool(await self._redis.exists(node_key(node)))

    async def node_info(self, node: str) -> dict[str, Any] | None:
        raw = await self._redis.hgetall(node_key(node))
        return cast(dict[str, Any], raw) or None

    async def enqueue(self, node: str, action: str, server_id: uuid.UUID) -> str:
        return await self.enqueue_job(
            node,
            JOB_OF[action],
            str(server_id),
            priority=_QUEUE_OF.get(action, "high"),
            description=f"{action} server {server_id}",
        )

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
        """Queue `job` on the node's high, normal or low queue."""
        queue = json_queue(queue_names(node)[PRIORITIES.index(priority)], self._sync_redis)
        queued = await asyncio.to_thread(
            queue.enqueue,
            job.value,
            *args,
            ttl=self._job_ttl,
            result_ttl=3600,
            failure_ttl=24 * 3600,
            job_timeout=job_timeout,
            job_id=job_id,
            description=description,
        )
        return str(queued.id)

    async def nodes(self) -> list[NodeInfo]:
        """Every node whose worker's heartbeat is fresh (its record expires otherwise): one
        round trip for the names, one for their records, however large the keyspace."""
        names = sorted(str(name) for name in await self._redis.smembers(NODE_NAMES))
        if not names:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(node_key(name))
            records = await pipe.execute()
        gone = [name for name, record in zip(names, records, strict=True) if not record]
        if gone:
            await self._redis.srem(NODE_NAMES, *gone)
        return [
            _node_info(name, cast(dict[str, Any], record))
            for name, record in zip(names, records, strict=True)
            if record
        ]

    async def console_listening(self, node: str) -> bool:
        """Whether the node's supervisor is subscribed right now (a heartbeat can outlive it)."""
        counts = await self._redis.pubsub_numsub(NODE_CONSOLE_CHANNEL.format(node=node))
        return any(count > 0 for _, count in counts)

    async def send_console(self, node: str, server_id: uuid.UUID, command: str) -> None:
        message = json.dumps({"server_id": str(server_id), "command": command})
        await self._redis.publish(NODE_CONSOLE_CHANNEL.format(node=node), message)


def _node_info(name: str, record: dict[str, Any]) -> NodeInfo:
    def number(field: str) -> int | None:
        """A number the worker wrote; None for a missing or garbled one (never a crash)."""
        try:
            return int(float(record[field]))
        except (KeyError, TypeError, ValueError, OverflowError):
            return None

    return NodeInfo(
        name=name,
        host=str(record.get("host", "")),
        pid=number("pid") or 0,
        last_seen=float(record.get("last_seen") or 0),
        cpu_count=number("cpu_count"),
        memory_total=number("memory_total"),
        java=tuple(json.loads(record.get("java") or "[]")),
        isolation=json.loads(record.get("isolation") or "{}"),
        url=record.get("url") or None,
        version=record.get("version") or None,
        disk_free=number("disk_free"),
        memory_committed_mb=number("memory_committed_mb"),
        servers_running=number("servers_running"),
        port_range=_port_range(number("port_range_start"), number("port_range_end")),
    )


def _port_range(start: int | None, end: int | None) -> tuple[int, int] | None:
    return (start, end) if start is not None and end is not None and start <= end else None


class RedisRuntimeStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def status(self, server_id: uuid.UUID) -> ServerRuntime | None:
        raw = await self._redis.get(STATUS_KEY.format(server_id=server_id))
        if raw is None:
            return None
        data = json.loads(raw)
        data["players"] = tuple(data.get("players", ()))
        return ServerRuntime(**data)

    async def console_page(
        self, server_id: uuid.UUID, *, before: str | None, limit: int
    ) -> Sequence[ConsoleEntry]:
        """Newest first, older than `before` (a stream id) when given."""
        high = f"({before}" if before else "+"
        rows = cast(
            list[tuple[str, dict[str, str]]],
            await self._redis.xrevrange(
                CONSOLE_STREAM.format(server_id=server_id), max=high, min="-", count=limit
            ),
        )
        return [
            ConsoleEntry(id=entry_id, line=fields["line"], at=float(fields["at"]))
            for entry_id, fields in rows
        ]

    async def forget(self, server_id: uuid.UUID) -> None:
        await self._redis.delete(
            STATUS_KEY.format(server_id=server_id), CONSOLE_STREAM.format(server_id=server_id)
        )


_RUNTIME_FIELDS = tuple(field.name for field in fields(ServerRuntime))


def status_json(runtime: ServerRuntime) -> str:
    """The runtime as JSON; its fields are flat (asdict's deep copy was a fifth of an idle
    worker's time with 500 servers)."""
    return json.dumps({name: getattr(runtime, name) for name in _RUNTIME_FIELDS})


class SocketPortProbe:
    """A port is free when this machine can bind it on every interface."""

    def is_free(self, port: int) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("0.0.0.0", port))  # noqa: S104 - the game server binds all interfaces
            except OSError:
                return False
        return True
