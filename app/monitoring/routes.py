"""Operational endpoints: /health, /ready and /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from app.monitoring.probes import ReadinessProbe

router = APIRouter(tags=["operations"])


@router.get("/health", summary="Liveness: the process is up and serving")
async def health() -> dict[str, str]:
    return {"status": "ok"}


class ReadinessResponse(BaseModel):
    status: str = Field(description="ready or not ready")
    checks: dict[str, str] = Field(description="each dependency: ok, or what is wrong")


@router.get(
    "/ready",
    summary="Readiness: database reachable, migrations at head, Redis reachable",
    response_model=ReadinessResponse,
    responses={503: {"description": "a dependency is not ready", "model": ReadinessResponse}},
)
async def ready(request: Request) -> JSONResponse:
    probe: ReadinessProbe = request.app.state.readiness
    result = await probe.check()
    return JSONResponse(
        {"status": "ready" if result.ready else "not ready", "checks": result.checks},
        status_code=200 if result.ready else 503,
    )


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
