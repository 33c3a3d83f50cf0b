"""Domain building blocks shared by every context: ids, clock, events, aggregates, errors."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainEvent:
    """Something that happened to an aggregate; stored, then relayed after commit."""

    aggregate_type: ClassVar[str] = ""

    occurred_at: datetime

    @property
    def aggregate_id(self) -> uuid.UUID:
        raise NotImplementedError

    @classmethod
    def event_type(cls) -> str:
        return cls.__name__


@dataclass(kw_only=True, eq=False)
class Aggregate:
    """An entity that guards its invariants and records the events of its changes."""

    id: uuid.UUID
    version: int = 0
    pending_events: list[DomainEvent] = field(default_factory=list, repr=False)
    changed: bool = field(default=False, repr=False)

    def record(self, event: DomainEvent) -> None:
        self.pending_events.append(event)
        self.changed = True

    def collect_events(self) -> list[DomainEvent]:
        events, self.pending_events = self.pending_events, []
        return events


INT32_MAX = 2**31 - 1
_NOT_IN_A_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")
_NOT_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def unstorable_character(text: str, *, multiline: bool = False) -> str | None:
    """The first character a clean value must not carry, or None.

    NUL and lone surrogates cannot be stored in PostgreSQL text at all; the other control
    characters (C0, DEL, C1) and the Unicode line separators only hide or garble what is shown.
    `multiline` text may hold tabs and line breaks.
    """
    found = (_NOT_IN_TEXT if multiline else _NOT_IN_A_LINE).search(text)
    return found.group() if found else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Page[T]:
    """One page of a read model."""

    items: Sequence[T]
    total: int
    page: int
    limit: int


class DomainError(Exception):
    """A rule of the domain was broken; the API maps each subclass to a problem+json status."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidInput(DomainError):
    status = 422
    slug = "invalid-input"
    title = "Invalid input"


class NotFound(DomainError):
    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class ConcurrencyConflict(Conflict):
    slug = "concurrent-modification"
    title = "Concurrent modification"


async def retried[T](once: Callable[[], Awaitable[T]], *, attempts: int = 5) -> T:
    """Run `once` (a whole unit of work: load, change, commit) again while it loses an
    optimistic-concurrency race, up to `attempts` times; the last loss propagates."""
    for _ in range(attempts - 1):
        try:
            return await once()
        except ConcurrencyConflict:
            continue
    return await once()


class Unauthorized(DomainError):
    status = 401
    slug = "unauthorized"
    title = "Unauthorized"


class Forbidden(DomainError):
    status = 403
    slug = "forbidden"
    title = "Forbidden"
