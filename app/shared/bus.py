"""The one async message bus: one handler per command or query, any number per event."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import structlog

from app.shared.domain import DomainEvent

log = structlog.get_logger(__name__)

R = TypeVar("R")


@dataclass(frozen=True, slots=True, kw_only=True)
class Command[R_co]:
    """An instruction to change state; its handler returns an `R_co`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Query[R_co]:
    """A request for data; its handler reads a read model and returns an `R_co`."""


Handler = Callable[[Any], Awaitable[Any]]
EventHandler = Callable[[Any], Awaitable[None]]


class HandlerMissing(LookupError):
    pass


class MessageBus:
    def __init__(self) -> None:
        self._handlers: dict[type[Any], Handler] = {}
        self._event_handlers: dict[type[DomainEvent], list[EventHandler]] = {}

    def register(self, message_type: type[Any], handler: Handler) -> None:
        if message_type in self._handlers:
            raise ValueError(f"{message_type.__name__} already has a handler")
        self._handlers[message_type] = handler

    def subscribe(self, event_type: type[DomainEvent], handler: EventHandler) -> None:
        self._event_handlers.setdefault(event_type, []).append(handler)

    async def handle(self, message: Command[R] | Query[R]) -> R:
        handler = self._handlers.get(type(message))
        if handler is None:
            raise HandlerMissing(f"no handler for {type(message).__name__}")
        return cast(R, await handler(message))

    async def publish(self, event: DomainEvent) -> None:
        """Run every handler of the event; the first failure propagates after all have run."""
        failure: Exception | None = None
        for handler in self._event_handlers.get(type(event), []):
            try:
                await handler(event)
            except Exception as exc:
                log.exception(
                    "event_handler_failed", event_type=event.event_type(), handler=repr(handler)
                )
                failure = failure or exc
        if failure is not None:
            raise failure
