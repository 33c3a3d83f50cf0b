"""The audit projection: domain_events to audit_log, by position, with a checkpoint of its own."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.monitoring.domain.audit import SummaryContext, server_of, summarize
from app.monitoring.infrastructure.tables import audit_log
from app.shared.readmodels import ProjectedEvent, Projection

_INSERT = insert(audit_log).on_conflict_do_nothing()  # built once: see app/shared/uow.py
_NAMES = {
    table: sa.text(f"SELECT id, {column} FROM {table} WHERE id = ANY(:ids)")  # noqa: S608
    for table, column in (("users", "username"), ("servers", "name"))
}


async def _apply(conn: AsyncConnection, events: Sequence[ProjectedEvent]) -> None:
    await conn.execute(_INSERT, await _audit_rows(conn, events))


async def _reset(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("TRUNCATE audit_log"))


# Every event, known type or not, gets a row (the log never waits for the checkpoint); commands
# do not wait for it (the activity feed may lag a moment behind).
AUDIT = Projection(name="audit", events=frozenset(), apply=_apply, reset=_reset, awaited=False)


def _uuid(value: object) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _actor_of(data: dict[str, Any], meta: dict[str, Any]) -> uuid.UUID | None:
    """Who acted: the request's user, else the user an event names as its author."""
    for value in (
        meta.get("actor_id"),
        data.get("user_id") if "command" in data else None,
        data.get("author_id"),
        data.get("requested_by"),
    ):
        if (actor := _uuid(value)) is not None:
            return actor
    return None


def _short(value: object) -> str | None:
    return str(value)[:64] if value else None


async def _names(conn: AsyncConnection, table: str, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Usernames or server names of one batch, in one query."""
    if not ids:
        return {}
    result = await conn.execute(_NAMES[table], {"ids": list(ids)})
    return {row[0]: row[1] for row in result}


async def _audit_rows(
    conn: AsyncConnection, events: Sequence[ProjectedEvent]
) -> list[dict[str, Any]]:
    actors = {row.position: _actor_of(row.data, row.metadata) for row in events}
    servers = {
        row.position: server_of(row.aggregate_type, row.aggregate_id, row.data) for row in events
    }
    usernames = await _names(conn, "users", {a for a in actors.values() if a})
    server_names = await _names(conn, "servers", {s for s in servers.values() if s})
    for row in events:
        if row.event_type == "ServerCreated" and isinstance(row.data.get("name"), str):
            server_names.setdefault(row.aggregate_id, row.data["name"])
    values = []
    for row in events:
        actor, server = actors[row.position], servers[row.position]
        username = usernames.get(actor) if actor else None
        if row.event_type == "UserRegistered" and actor is None:
            username = str(row.data.get("username") or "")[:50] or None
        context = SummaryContext(
            actor=username, server=server_names.get(server) if server else None
        )
        values.append(
            {
                "position": row.position,
                "event_id": row.id,
                "occurred_at": row.occurred_at,
                "actor_id": actor,
                "actor_username": username,
                "action": row.event_type,
                "resource_type": row.aggregate_type,
                "resource_id": row.aggregate_id,
                "server_id": server,
                "client_addr": _short(row.metadata.get("client_addr")),
                "request_id": _short(row.metadata.get("request_id")),
                "summary": summarize(row.event_type, row.data, context),
                "details": row.data,
            }
        )
    return values
