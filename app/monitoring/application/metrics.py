"""The metrics part of the monitoring context: its messages and handlers."""

from __future__ import annotations

from typing import Any

from app.shared.domain import DomainEvent
from app.shared.wiring import Handler

MESSAGES: dict[type[Any], Handler] = {}
EVENT_HANDLERS: list[tuple[type[DomainEvent], Handler]] = []
