"""The audit part of the monitoring context: `/api/v2/admin/audit` (the whole log, filtered,
paged or exported) and `/api/v2/servers/{id}/activity` (one server's, for who may see it)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from app.monitoring.application.audit import ExportAuditLog, ListAuditLog, ListServerActivity
from app.monitoring.domain.audit import AuditEntry, AuditFilter, AuditPage
from app.settings import Settings
from app.shared.agent import NodeTokens
from app.shared.dependencies import BusDep, require
from app.shared.openapi import problems
from app.shared.security import Permission, Principal

Admin = Annotated[Principal, Depends(require(Permission.ADMIN_ALL))]
Reader = Annotated[Principal, Depends(require(Permission.SERVER_READ))]
Limit = Annotated[int, Query(ge=1, le=200, description="rows per page")]
Before = Annotated[
    int | None, Query(ge=1, le=2**63 - 1, description="cursor: next_before of the previous page")
]
_MEDIA = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}


class AuditEntryResponse(BaseModel):
    position: int
    occurred_at: datetime
    actor_id: uuid.UUID | None
    actor_username: str | None = Field(description="the actor's username when it acted")
    action: str = Field(description="the event type")
    resource_type: str
    resource_id: uuid.UUID
    server_id: uuid.UUID | None
    client_addr: str | None
    request_id: str | None
    summary: str
    details: dict[str, Any]

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryResponse:
        return cls(
            position=entry.position,
            occurred_at=entry.occurred_at,
            actor_id=entry.actor_id,
            actor_username=entry.actor_username,
            action=entry.action,
            resource_type=entry.resource_type,
            resource_id=entry.resource_id,
            server_id=entry.server_id,
            client_addr=entry.client_addr,
            request_id=entry.request_id,
            summary=entry.summary,
            details=dict(entry.details),
        )


class AuditPageResponse(BaseModel):
    items: list[AuditEntryResponse]
    next_before: int | None = Field(description="pass as `before` for the next page; null: last")

    @classmethod
    def of(cls, page: AuditPage) -> AuditPageResponse:
        return cls(
            items=[AuditEntryResponse.of(entry) for entry in page.items],
            next_before=page.next_before,
        )


def audit_filter(
    actor_id: uuid.UUID | None = None,
    server_id: uuid.UUID | None = None,
    action: Annotated[str | None, Query(max_length=100, pattern=r"^[A-Za-z0-9_]+$")] = None,
    resource_type: Annotated[str | None, Query(max_length=50, pattern=r"^[a-z_]+$")] = None,
    resource_id: uuid.UUID | None = None,
    since: Annotated[datetime | None, Query(description="ISO 8601 with a time zone")] = None,
    until: Annotated[datetime | None, Query(description="ISO 8601 with a time zone")] = None,
    before: Before = None,
) -> AuditFilter:
    return AuditFilter(
        actor_id=actor_id,
        server_id=server_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        since=since,
        until=until,
        before=before,
    )


admin_router = APIRouter(prefix="/api/v2/admin/audit", tags=["audit"])
servers_router = APIRouter(prefix="/api/v2/servers", tags=["audit"])


@admin_router.get(
    "",
    summary="The audit log, newest first: filter, page by keyset, or export (admins)",
    response_model=AuditPageResponse,
    responses={
        200: {"content": {"text/csv": {}, "application/x-ndjson": {}}},
        **problems({403: "not an admin", 422: "a bad date or a reversed range"}),
    },
)
async def list_audit_log(
    actor: Admin,
    bus: BusDep,
    filter: Annotated[AuditFilter, Depends(audit_filter)],
    limit: Limit = 50,
    format: Literal["json", "csv", "ndjson"] = "json",
) -> Any:
    if format == "json":
        page = await bus.handle(ListAuditLog(actor=actor, filter=filter, limit=limit))
        return AuditPageResponse.of(page)
    chunks = await bus.handle(ExportAuditLog(actor=actor, filter=filter, format=format))
    return StreamingResponse(
        chunks,
        media_type=_MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="audit.{format}"'},
    )


@servers_router.get(
    "/{server_id}/activity",
    summary="What happened to a server: starts, stops, crashes, console, files, backups, groups",
    responses=problems({404: "no such server, or not yours"}),
)
async def server_activity(
    server_id: uuid.UUID, actor: Reader, bus: BusDep, before: Before = None, limit: Limit = 50
) -> AuditPageResponse:
    page = await bus.handle(
        ListServerActivity(actor=actor, server_id=server_id, before=before, limit=limit)
    )
    return AuditPageResponse.of(page)


def routers() -> list[APIRouter]:
    return [admin_router, servers_router]


def node_routers(
    settings: Settings, tokens: NodeTokens, node: str, servers: Any
) -> list[APIRouter]:
    return []
