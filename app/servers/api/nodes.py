"""`GET /api/v2/nodes`: the online nodes, their machines and how they confine game servers."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.servers.api.routes import Reader
from app.servers.application.messages import ListNodes
from app.shared.dependencies import BusDep

router = APIRouter(prefix="/api/v2/nodes", tags=["nodes"])


class NodeResponse(BaseModel):
    name: str
    host: str
    pid: int
    last_seen: float = Field(description="Unix time of the worker's last heartbeat")
    cpu_count: int | None
    memory_total: int | None = Field(description="bytes of memory of the node's machine")
    java: list[dict[str, object]]
    isolation: dict[str, object] = Field(
        description="environment, accounts and sandbox the node's game servers run with"
    )


class NodePage(BaseModel):
    items: list[NodeResponse]


@router.get("/", summary="Online nodes (operators and admins)")
async def list_nodes(actor: Reader, bus: BusDep) -> NodePage:
    nodes = await bus.handle(ListNodes(actor=actor))
    return NodePage(
        items=[
            NodeResponse(
                name=node.name,
                host=node.host,
                pid=node.pid,
                last_seen=node.last_seen,
                cpu_count=node.cpu_count,
                memory_total=node.memory_total,
                java=list(node.java),
                isolation=node.isolation,
            )
            for node in nodes
        ]
    )
