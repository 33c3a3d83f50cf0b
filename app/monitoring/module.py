"""The monitoring context: health, readiness and metrics (audit and history are to come)."""

from __future__ import annotations

from fastapi import APIRouter

from app.shared.domain import DomainEvent
from app.shared.wiring import Handlers

EVENTS: tuple[type[DomainEvent], ...] = ()
HANDLERS = Handlers(messages={})


def routers() -> list[APIRouter]:
    from app.monitoring.routes import router

    return [router]
