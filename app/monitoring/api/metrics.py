"""The metrics part of the monitoring context: its routes, and those it adds to a node's agent.

`GET /api/v2/servers/{id}/metrics` and `GET /api/v2/nodes/{name}/metrics` answer one array of
bucket times and, per series, one array of values (null where a bucket has none), as a chart
library draws them; the node agent's `/metrics` is the worker's Prometheus endpoint
(unauthenticated, like the API's: for the internal network)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from app.monitoring.application.metrics import GetNodeMetrics, GetServerMetrics, MetricsView
from app.monitoring.domain.metrics import MAX_POINTS, MAX_STEP, MIN_STEP
from app.servers.domain.nodes import NODE_NAME
from app.settings import Settings
from app.shared.agent import NodeTokens
from app.shared.dependencies import BusDep, require
from app.shared.openapi import problems
from app.shared.security import Permission, Principal

Reader = Annotated[Principal, Depends(require(Permission.SERVER_READ))]
From = Annotated[
    datetime | None,
    Query(alias="from", description="start, ISO 8601 with a zone (default: an hour before to)"),
]
To = Annotated[
    datetime | None, Query(alias="to", description="end, ISO 8601 with a zone (default: now)")
]
Step = Annotated[
    int | None,
    Query(
        ge=MIN_STEP,
        le=MAX_STEP,
        description=f"bucket seconds: below 60 reads raw samples, below 3600 minute rollups, "
        f"else hour rollups; at most {MAX_POINTS} buckets (default: the finest of 10 s, 30 s, "
        "1 min, 5 min, ... giving at most 500)",
    ),
]
WINDOW_PROBLEMS = problems(
    {404: "no such server, or not yours", 422: "a reversed range, a bad step or too many points"}
)


class MetricsResponse(BaseModel):
    step: int = Field(description="seconds per bucket")
    resolution: int = Field(description="level read: 0 raw, 60 minute rollups, 3600 hour rollups")
    from_: datetime = Field(alias="from", serialization_alias="from")
    to: datetime
    times: list[float] = Field(description="each bucket's start, Unix seconds")
    series: dict[str, list[float | None]] = Field(
        description="per series, one value per bucket of `times` (null: none sampled)"
    )

    @classmethod
    def of(cls, view: MetricsView) -> MetricsResponse:
        window = view.window
        return cls.model_validate(
            {
                "step": window.step,
                "resolution": window.resolution,
                "from": window.start,
                "to": window.end,
                "times": view.series.times,
                "series": view.series.values,
            }
        )


router = APIRouter(tags=["metrics"])


@router.get(
    "/api/v2/servers/{server_id}/metrics",
    summary="A server's metrics history: CPU, memory, players, disk and tick time",
    responses=WINDOW_PROBLEMS,
    response_model_by_alias=True,
)
async def server_metrics(
    server_id: uuid.UUID,
    actor: Reader,
    bus: BusDep,
    start: From = None,
    end: To = None,
    step: Step = None,
) -> MetricsResponse:
    query = GetServerMetrics(actor=actor, server_id=server_id, start=start, end=end, step=step)
    return MetricsResponse.of(await bus.handle(query))


@router.get(
    "/api/v2/nodes/{name}/metrics",
    summary="A node's metrics history: CPU, memory, disk and servers running (operators)",
    responses=problems({404: "no such node is known", 422: "a bad window"}),
    response_model_by_alias=True,
)
async def node_metrics(
    name: Annotated[str, Path(pattern=NODE_NAME, max_length=63)],
    actor: Reader,
    bus: BusDep,
    start: From = None,
    end: To = None,
    step: Step = None,
) -> MetricsResponse:
    query = GetNodeMetrics(actor=actor, node=name, start=start, end=end, step=step)
    return MetricsResponse.of(await bus.handle(query))


def routers() -> list[APIRouter]:
    return [router]


def node_routers(
    settings: Settings, tokens: NodeTokens, node: str, servers: Any
) -> list[APIRouter]:
    agent = APIRouter(tags=["operations"])

    @agent.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return [agent]
