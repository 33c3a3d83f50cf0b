"""The sync part of the monitoring context: `/api/v2/admin/system/sync` (consistency, and its
repair), `/api/v2/admin/cache/stats`, and the node agent's `/v1/monitoring/sync`."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from app.monitoring.application.sync import GetCacheStats, GetSystemSync, RepairSystemSync
from app.monitoring.domain.sync import NodeSupervisor, SyncReport
from app.monitoring.infrastructure.sync_node import observe
from app.settings import Settings
from app.shared.agent import NodeTokens, guard
from app.shared.dependencies import BusDep, require
from app.shared.openapi import problems
from app.shared.security import Permission, Principal

Admin = Annotated[Principal, Depends(require(Permission.ADMIN_ALL))]
router = APIRouter(prefix="/api/v2/admin", tags=["system"])


def _shape(report: SyncReport) -> dict[str, Any]:
    body = dataclasses.asdict(report)
    body["consistent"] = report.consistent
    return body


@router.get(
    "/system/sync",
    summary="Database against nodes: servers, nodes, the relay, read models (admins)",
    responses=problems({403: "not an admin"}),
)
async def system_sync(actor: Admin, bus: BusDep) -> dict[str, Any]:
    return _shape(await bus.handle(GetSystemSync(actor=actor)))


@router.post(
    "/system/sync",
    summary="Repair what can be repaired, and say what was done (admins)",
    responses=problems({403: "not an admin"}),
)
async def repair_system_sync(actor: Admin, bus: BusDep) -> dict[str, Any]:
    result = await bus.handle(RepairSystemSync(actor=actor))
    return {
        "repairs": [dataclasses.asdict(repair) for repair in result.repairs],
        "after": _shape(result.after) if result.after else None,
    }


@router.get(
    "/cache/stats",
    summary="Redis memory and keyspace, keys per namespace, cache hits and misses (admins)",
    responses=problems({403: "not an admin"}),
)
async def cache_stats(actor: Admin, bus: BusDep) -> dict[str, Any]:
    return dict(await bus.handle(GetCacheStats(actor=actor)))


def routers() -> list[APIRouter]:
    return [router]


def node_routers(
    settings: Settings, tokens: NodeTokens, node: str, servers: NodeSupervisor | None
) -> list[APIRouter]:
    agent = APIRouter(prefix="/v1/monitoring")
    root = settings.resolved_data_dir / "servers"

    @agent.get("/sync", dependencies=[Depends(guard(tokens, node, "monitoring.sync"))])
    async def observed() -> dict[str, Any]:
        return await asyncio.to_thread(observe, servers, root)

    return [agent]
