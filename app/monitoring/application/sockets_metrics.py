"""The admin's system snapshot (`/api/v2/ws/metrics`): nodes, servers by state, the relay."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from app.servers.application.messages import ListNodes
from app.shared.bus import MessageBus, Query
from app.shared.domain import Forbidden
from app.shared.security import Permission, Principal


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemCounts:
    servers_by_state: Mapping[str, int]
    unprocessed_events: int
    oldest_unprocessed_seconds: float | None


class SystemCountsReader(Protocol):
    async def counts(self) -> SystemCounts: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class GetSystemSnapshot(Query[dict[str, Any]]):
    actor: Principal


async def handle_system_snapshot(
    query: GetSystemSnapshot, *, bus: MessageBus, system_counts: SystemCountsReader
) -> dict[str, Any]:
    if not query.actor.has(Permission.ADMIN_ALL):
        raise Forbidden("the system snapshot is for admins")
    nodes = await bus.handle(ListNodes(actor=query.actor))
    counts = await system_counts.counts()
    return {
        "nodes": [
            {
                "name": node.name,
                "online": node.online,
                "cordoned": node.cordoned,
                "server_count": node.server_count,
                "memory_allocated_mb": node.memory_allocated_mb,
                "servers_running": node.info.servers_running if node.info else None,
                "memory_total_mb": node.info.memory_total_mb if node.info else None,
                "disk_free": node.info.disk_free if node.info else None,
            }
            for node in nodes
        ],
        "servers_by_state": dict(counts.servers_by_state),
        "servers_total": sum(counts.servers_by_state.values()),
        "relay": {
            "unprocessed_events": counts.unprocessed_events,
            "oldest_unprocessed_seconds": counts.oldest_unprocessed_seconds,
        },
    }
