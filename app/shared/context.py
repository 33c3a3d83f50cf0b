"""Who is acting, from where, in which request: read by logs and stored as event metadata."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import structlog

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
actor_id_var: ContextVar[uuid.UUID | None] = ContextVar("actor_id", default=None)
client_addr_var: ContextVar[str | None] = ContextVar("client_addr", default=None)
provenance_var: ContextVar[Mapping[str, Any] | None] = ContextVar("provenance", default=None)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """The row of the event the relay is dispatching: its id, position and audit metadata."""

    id: uuid.UUID
    position: int
    event_type: str
    aggregate_id: uuid.UUID
    metadata: Mapping[str, Any]


stored_event_var: ContextVar[StoredEvent | None] = ContextVar("stored_event", default=None)


def stored_event(event_type: str, aggregate_id: uuid.UUID) -> StoredEvent | None:
    """What the event store holds of the event being handled; None outside the relay's dispatch
    (an event published straight onto the bus, as tests and in-process callers may), and for
    any other event a handler may publish while handling it."""
    stored = stored_event_var.get()
    if stored is None or (stored.event_type, stored.aggregate_id) != (event_type, aggregate_id):
        return None
    return stored


def set_actor(actor_id: uuid.UUID | None) -> None:
    actor_id_var.set(actor_id)
    structlog.contextvars.bind_contextvars(user_id=str(actor_id) if actor_id else None)


@contextmanager
def provenance(**fields: Any) -> Iterator[None]:
    """Events appended inside carry `fields` in their metadata too (where imported data came
    from, e.g. imported_from="v1" and the V1 row it was)."""
    token = provenance_var.set(fields)
    try:
        yield
    finally:
        provenance_var.reset(token)


def event_metadata() -> dict[str, Any]:
    """The audit fields recorded beside every event appended in this context."""
    actor = actor_id_var.get()
    return {
        **(provenance_var.get() or {}),
        "actor_id": str(actor) if actor else None,
        "client_addr": client_addr_var.get(),
        "request_id": request_id_var.get(),
    }
