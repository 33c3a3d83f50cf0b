"""The audit part of the monitoring context: its messages and handlers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from app.monitoring.domain.audit import ACTIVITY_ACTIONS, AuditFilter, AuditPage
from app.servers.application.messages import GetServer
from app.settings import Settings
from app.shared.bus import Command, MessageBus, Query
from app.shared.domain import DomainEvent, Forbidden
from app.shared.security import Permission, Principal
from app.shared.wiring import Handler

ExportFormat = Literal["csv", "ndjson"]


class AuditLogReader(Protocol):
    async def page(
        self, filter: AuditFilter, *, limit: int, actions: frozenset[str] | None = None
    ) -> AuditPage: ...

    def export(
        self, filter: AuditFilter, *, fmt: ExportFormat, max_rows: int
    ) -> AsyncIterator[bytes]:
        """Rows as CSV or NDJSON, in batches read one after the other."""
        ...


class AuditLogMaintenance(Protocol):
    async def purge(self, *, older_than_days: int, batch: int) -> int: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ListAuditLog(Query[AuditPage]):
    actor: Principal
    filter: AuditFilter
    limit: int = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportAuditLog(Query[AsyncIterator[bytes]]):
    actor: Principal
    filter: AuditFilter
    format: ExportFormat


@dataclass(frozen=True, slots=True, kw_only=True)
class ListServerActivity(Query[AuditPage]):
    """What happened to one server, for anyone who may see it."""

    actor: Principal
    server_id: uuid.UUID
    before: int | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class PurgeAuditLog(Command[int]):
    """Delete rows older than the retention setting; returns how many."""


def _require_admin(actor: Principal) -> None:
    if not actor.has(Permission.ADMIN_ALL):
        raise Forbidden("the audit log is for admins")


async def handle_list_audit_log(query: ListAuditLog, *, audit_log: AuditLogReader) -> AuditPage:
    _require_admin(query.actor)
    return await audit_log.page(query.filter, limit=query.limit)


async def handle_export_audit_log(
    query: ExportAuditLog, *, audit_log: AuditLogReader, settings: Settings
) -> AsyncIterator[bytes]:
    _require_admin(query.actor)
    return audit_log.export(query.filter, fmt=query.format, max_rows=settings.audit_export_max_rows)


async def handle_list_server_activity(
    query: ListServerActivity, *, audit_log: AuditLogReader, bus: MessageBus
) -> AuditPage:
    await bus.handle(GetServer(actor=query.actor, server_id=query.server_id))
    return await audit_log.page(
        AuditFilter(server_id=query.server_id, before=query.before),
        limit=query.limit,
        actions=ACTIVITY_ACTIONS,
    )


async def handle_purge_audit_log(
    cmd: PurgeAuditLog, *, audit_maintenance: AuditLogMaintenance, settings: Settings
) -> int:
    return await audit_maintenance.purge(
        older_than_days=settings.audit_retention_days, batch=settings.projection_batch_size
    )


MESSAGES: dict[type[Any], Handler] = {
    ListAuditLog: handle_list_audit_log,
    ExportAuditLog: handle_export_audit_log,
    ListServerActivity: handle_list_server_activity,
    PurgeAuditLog: handle_purge_audit_log,
}
EVENT_HANDLERS: list[tuple[type[DomainEvent], Handler]] = []
