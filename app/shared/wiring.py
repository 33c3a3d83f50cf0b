"""How a context joins the one bus: its message tables, bound to dependencies of its own.

Each context's `module.py` declares a `Handlers` table and builds a dictionary of its own
dependencies (so a handler may ask for plain `uow`); `register` binds every handler to the
dependencies its keyword parameters name, and refuses at start-up a handler that names one
the context does not provide, rather than failing on the first message.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.shared.bus import MessageBus
from app.shared.domain import DomainEvent
from app.shared.readmodels import Projection

Handler = Callable[..., Awaitable[Any]]


class WiringError(LookupError):
    """A handler needs a dependency its context does not provide."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Handlers:
    """A context's tables: one handler per command or query, any number per event.

    `projections` keep the context's read models up to date from the event store, each with a
    checkpoint of its own (app/shared/projections.py); a command that writes an event one of
    them follows returns once it is applied (read-your-writes, see MessageBus).
    """

    messages: Mapping[type[Any], Handler]
    events: Sequence[tuple[type[DomainEvent], Handler]] = field(default_factory=tuple)
    projections: Sequence[Projection] = field(default_factory=tuple)


def inject(handler: Handler, deps: Mapping[str, Any]) -> Callable[[Any], Awaitable[Any]]:
    """Bind the dependencies `handler` names among its keyword-only parameters."""
    wanted = inspect.signature(handler).parameters
    missing = [
        name
        for name, parameter in wanted.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
        and parameter.default is inspect.Parameter.empty
        and name not in deps
    ]
    if missing:
        raise WiringError(f"{handler.__qualname__} needs {', '.join(missing)}, not provided")
    return functools.partial(handler, **{name: deps[name] for name in wanted if name in deps})


def register(bus: MessageBus, handlers: Handlers, deps: Mapping[str, Any]) -> None:
    """The one registration loop of every context."""
    for message, handler in handlers.messages.items():
        bus.register(message, inject(handler, deps))
    for event, handler in handlers.events:
        bus.subscribe(event, inject(handler, deps))
