"""What the fakes of every context share: a clock, the committed-event log, in-memory tables
with the version check of the SQL repositories, and a unit of work that commits all or nothing."""

from __future__ import annotations

import copy
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from app.shared.bus import without_waiting
from app.shared.domain import Aggregate, ConcurrencyConflict, Conflict, DomainEvent
from app.shared.security import Principal, Role


class FakeClock:
    """A UTC clock that only moves when told; starts at the real time so JWTs stay valid."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


class FakeEventLog:
    """The fakes' `domain_events`: every committed event in order, and the relay that hands
    them to the bus's event handlers and projections.

    Delivery happens as each unit of work commits, one event at a time in commit order (an
    event committed by a handler waits until the one being delivered is done, as on the relay).
    `held = True` keeps them until `deliver()`, to look at the state before any reaction.
    """

    def __init__(self) -> None:
        self.committed: list[DomainEvent] = []
        self.held = False
        self._pending: deque[DomainEvent] = deque()
        self._publish: Callable[[DomainEvent], Awaitable[None]] | None = None
        self._delivering = False

    def connect(self, publish: Callable[[DomainEvent], Awaitable[None]]) -> None:
        self._publish = publish

    async def append(self, events: Iterable[DomainEvent]) -> None:
        events = list(events)
        self.committed.extend(events)
        if self._publish is not None:
            self._pending.extend(events)
            if not self.held:
                await self.deliver()

    async def deliver(self) -> int:
        """Run the handlers of every undelivered event; how many were delivered."""
        if self._delivering or self._publish is None:
            return 0
        self._delivering, delivered = True, 0
        try:
            while self._pending:
                with without_waiting():
                    await self._publish(self._pending.popleft())
                delivered += 1
        finally:
            self._delivering = False
        return delivered

    def of[E: DomainEvent](self, event_type: type[E]) -> list[E]:
        return [e for e in self.committed if isinstance(e, event_type)]

    def types(self) -> list[str]:
        return [type(e).__name__ for e in self.committed]


def conflict(constraint: str) -> Conflict:
    """What the SQL unit of work raises when the database refuses a row."""
    return Conflict(
        f"this change conflicts with existing data ({constraint})", constraint=constraint
    )


class FakeRepository[A: Aggregate]:
    """Hands out copies of a table's aggregates and tracks them like `SqlRepository`.

    A removal is immediate within the unit of work, as the SQL DELETE is; `collect_on_remove`
    says whether the repository itself keeps a removed aggregate's events (groups do, servers
    leave that to the handler).
    """

    collect_on_remove = False

    def __init__(self, table: dict[uuid.UUID, A]) -> None:
        self.table = table
        self.seen: dict[uuid.UUID, A] = {}
        self.removed: dict[uuid.UUID, A] = {}

    def load(self, stored: A) -> A:
        """A private copy of a committed aggregate (subclasses may join other tables here)."""
        return copy.deepcopy(stored)

    def add(self, aggregate: A) -> None:
        aggregate.changed = True
        self.seen[aggregate.id] = aggregate

    async def get(self, aggregate_id: uuid.UUID) -> A | None:
        if aggregate_id in self.removed:
            return None
        if aggregate_id not in self.seen:
            stored = self.table.get(aggregate_id)
            if stored is None:
                return None
            self.seen[aggregate_id] = self.load(stored)
        return self.seen[aggregate_id]

    async def remove(self, aggregate: A) -> None:
        self.seen.pop(aggregate.id, None)
        self.removed[aggregate.id] = aggregate

    def committed(self) -> list[A]:
        """What a query inside this unit of work sees: the table less what it removed."""
        return [a for key, a in self.table.items() if key not in self.removed]

    def staged(self) -> dict[uuid.UUID, A]:
        """The table as a commit would leave it; raises what the SQL flush would."""
        result = {key: a for key, a in self.table.items() if key not in self.removed}
        for aggregate in self.seen.values():
            if not aggregate.changed:
                continue
            stored = self.table.get(aggregate.id)
            if aggregate.version == 0 and stored is not None:
                raise conflict(f"{type(aggregate).__name__.lower()}s_pkey")
            if aggregate.version != 0 and (stored is None or stored.version != aggregate.version):
                raise ConcurrencyConflict(
                    f"{type(aggregate).__name__} {aggregate.id} was changed by someone else; "
                    "reload it and try again"
                )
            result[aggregate.id] = aggregate
        return result

    def apply(self) -> list[DomainEvent]:
        """Write the staged table (checked by `staged`) and return the events of the changes."""
        events: list[DomainEvent] = []
        for key, aggregate in self.removed.items():
            self.table.pop(key, None)
            if self.collect_on_remove:
                events.extend(aggregate.collect_events())
        for aggregate in self.seen.values():
            if not aggregate.changed:
                continue
            aggregate.version += 1
            aggregate.changed = False
            events.extend(aggregate.collect_events())
            self.table[aggregate.id] = copy.deepcopy(aggregate)
        return events


class FakeUnitOfWork:
    """One transaction over in-memory tables: `commit` checks every repository and the
    context's constraints first, then writes all, then hands the events to the log.

    Subclasses create their repositories in `start` and may refuse a commit in `check`.
    `before_commit` hooks run first: a test can simulate another writer or a failure there.
    """

    def __init__(
        self,
        events: FakeEventLog,
        *,
        before_commit: Sequence[Callable[[FakeUnitOfWork], None]] = (),
    ) -> None:
        self.events = events
        self.before_commit = before_commit
        self._repositories: list[FakeRepository[Any]] = []
        self._loose: list[DomainEvent] = []
        self.open = False

    def start(self) -> None:
        """Create the context's repositories."""

    def repository[R: FakeRepository[Any]](self, repository: R) -> R:
        self._repositories.append(repository)
        return repository

    async def __aenter__(self) -> Self:
        self._repositories, self._loose = [], []
        self.start()
        self.open = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Whatever was not committed is dropped."""
        self.open = False

    def record_event(self, event: DomainEvent) -> None:
        self._loose.append(event)

    def check(self) -> None:
        """Refuse, as the database's constraints would, what `staged` tables may not hold."""

    def write(self, events: Sequence[DomainEvent]) -> None:
        """Context-specific rows (not aggregates) written at commit, knowing its events."""

    async def commit(self) -> None:
        if not self.open:
            raise RuntimeError("unit of work used outside `async with`")
        for hook in list(self.before_commit):
            hook(self)
        for repository in self._repositories:
            repository.staged()
        self.check()
        events: list[DomainEvent] = []
        for repository in self._repositories:
            events.extend(repository.apply())
        events.extend(self._loose)
        self.write(events)
        self._loose = []
        for repository in self._repositories:
            repository.removed.clear()
        await self.events.append(events)

    async def rollback(self) -> None:
        self._loose = []


def principal(
    username: str = "alice", *, role: Role = Role.USER, user_id: uuid.UUID | None = None
) -> Principal:
    return Principal(
        user_id=user_id or uuid.uuid4(), username=username, role=role, session_id=uuid.uuid4()
    )
