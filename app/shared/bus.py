"""The one async message bus: one handler per command or query, any number per event.

Read-your-writes: where a `barrier` is set (the API, which runs the projections), a command
returns only once the events it wrote that a projection follows have been applied, so the
client's next read sees its write. Commands run inside another command, or by an event
handler, never wait themselves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

import structlog
from prometheus_client import Histogram

from app.shared.domain import DomainEvent

log = structlog.get_logger(__name__)

COMMAND_SECONDS = Histogram(
    "mcdash_command_seconds",
    "Time of a command's handler (outermost commands; without the wait for projections)",
    ["command"],
)

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


class Barrier(Protocol):
    async def wait(self, written: Sequence[tuple[int, type[DomainEvent]]]) -> None:
        """Return once the projections following these events (position, type) applied them."""


# The events (position, type) written while the outermost command runs; None outside one.
_written: ContextVar[list[tuple[int, type[DomainEvent]]] | None] = ContextVar(
    "written", default=None
)


def note_written(written: Sequence[tuple[int, type[DomainEvent]]]) -> None:
    """Called by the event store for each append, so the command can wait for its projection."""
    pending = _written.get()
    if pending is not None:
        pending.extend(written)


@contextlib.contextmanager
def without_waiting() -> Iterator[None]:
    """Commands handled inside (by an event handler, say) do not wait for their projection."""
    token = _written.set([])
    try:
        yield
    finally:
        _written.reset(token)


class MessageBus:
    def __init__(self) -> None:
        self._handlers: dict[type[Any], Handler] = {}
        self._event_handlers: dict[type[DomainEvent], list[EventHandler]] = {}
        self.barrier: Barrier | None = None

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
        if self.barrier is None or not isinstance(message, Command) or _written.get() is not None:
            return cast(R, await handler(message))
        written: list[tuple[int, type[DomainEvent]]] = []
        token = _written.set(written)
        try:
            with COMMAND_SECONDS.labels(type(message).__name__).time():
                result = cast(R, await handler(message))
        finally:
            _written.reset(token)
        if written:
            await self.barrier.wait(written)
        return result

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
