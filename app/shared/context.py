"""Who is acting, from where, in which request: read by logs and stored as event metadata."""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from typing import Any

import structlog

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
actor_id_var: ContextVar[uuid.UUID | None] = ContextVar("actor_id", default=None)
client_addr_var: ContextVar[str | None] = ContextVar("client_addr", default=None)


def set_actor(actor_id: uuid.UUID | None) -> None:
    actor_id_var.set(actor_id)
    structlog.contextvars.bind_contextvars(user_id=str(actor_id) if actor_id else None)


def event_metadata() -> dict[str, Any]:
    """The audit fields recorded beside every event appended in this context."""
    actor = actor_id_var.get()
    return {
        "actor_id": str(actor) if actor else None,
        "client_addr": client_addr_var.get(),
        "request_id": request_id_var.get(),
    }
