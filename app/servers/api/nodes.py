"""`/api/v2/nodes`: the nodes, their machines, what is placed on them and how they confine game
servers; cordoning one keeps new servers off it (operators and admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from app.servers.api.routes import Reader, Writer
from app.servers.api.schemas import Strict
from app.servers.application.messages import CordonNode, GetNode, ListNodes, NodeView
from app.servers.domain.nodes import NODE_NAME
from app.shared.dependencies import BusDep
from app.shared.http import example
from app.shared.openapi import problems

router = APIRouter(prefix="/api/v2/nodes", tags=["nodes"])
NodeName = Annotated[str, Path(pattern=NODE_NAME, max_length=63)]


class NodeResponse(BaseModel):
    name: str
    online: bool = Field(description="its worker's heartbeat is fresh")
    cordoned: bool = Field(description="it takes no new servers")
    url: str | None = Field(description="where its agent listens, as its worker advertises it")
    version: str | None = Field(description="mcdash version of its worker")
    host: str | None
    pid: int | None
    last_seen: float | None = Field(description="Unix time of the worker's last heartbeat")
    cpu_count: int | None
    memory_total: int | None = Field(description="bytes of memory of the node's machine")
    memory_allocated_mb: int = Field(description="heap given to the servers placed on it")
    memory_committed_mb: int | None = Field(description="heap of its servers running now")
    disk_free: int | None = Field(description="bytes free in its data directory")
    server_count: int = Field(description="servers placed on it")
    servers_running: int | None
    port_range: list[int] | None = Field(
        description="first and last game port it hands out", min_length=2, max_length=2
    )
    java: list[dict[str, object]]
    isolation: dict[str, object] = Field(
        description="environment, accounts and sandbox the node's game servers run with"
    )

    @classmethod
    def of(cls, view: NodeView) -> NodeResponse:
        info = view.info
        return cls(
            name=view.name,
            online=view.online,
            cordoned=view.cordoned,
            url=info.url if info else None,
            version=info.version if info else None,
            host=info.host if info else None,
            pid=info.pid if info else None,
            last_seen=info.last_seen if info else None,
            cpu_count=info.cpu_count if info else None,
            memory_total=info.memory_total if info else None,
            memory_allocated_mb=view.memory_allocated_mb,
            memory_committed_mb=info.memory_committed_mb if info else None,
            disk_free=info.disk_free if info else None,
            server_count=view.server_count,
            servers_running=info.servers_running if info else None,
            port_range=list(info.port_range) if info and info.port_range else None,
            java=list(info.java) if info else [],
            isolation=info.isolation if info else {},
        )


class NodePage(BaseModel):
    items: list[NodeResponse]


class NodeChange(Strict):
    model_config = example({"cordoned": True})

    cordoned: bool = Field(description="true: no new servers are placed or moved onto it")


@router.get("/", summary="The nodes: online ones, and offline ones holding servers or cordoned")
async def list_nodes(actor: Reader, bus: BusDep) -> NodePage:
    nodes = await bus.handle(ListNodes(actor=actor))
    return NodePage(items=[NodeResponse.of(node) for node in nodes])


@router.get("/{name}", summary="One node", responses=problems({404: "no such node is known"}))
async def get_node(name: NodeName, actor: Reader, bus: BusDep) -> NodeResponse:
    return NodeResponse.of(await bus.handle(GetNode(actor=actor, name=name)))


@router.patch("/{name}", summary="Cordon or uncordon a node (operators and admins)")
async def change_node(name: NodeName, body: NodeChange, actor: Writer, bus: BusDep) -> NodeResponse:
    view = await bus.handle(CordonNode(actor=actor, name=name, cordoned=body.cordoned))
    return NodeResponse.of(view)
