"""The bus makes a command wait for the projection of what it wrote (the barrier picks the
events its projections follow), and only the outermost command waits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from app.shared.bus import Command, MessageBus, Query, note_written, without_waiting
from app.shared.domain import DomainEvent
from app.shared.wiring import Handlers, WiringError, register


@dataclass(frozen=True, slots=True, kw_only=True)
class Projected(DomainEvent):
    aggregate_type = "thing"


@dataclass(frozen=True, slots=True, kw_only=True)
class Audited(DomainEvent):
    aggregate_type = "thing"


@dataclass(frozen=True, slots=True, kw_only=True)
class Write(Command[str]):
    events: tuple[type[DomainEvent], ...]
    nested: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Read(Query[str]):
    pass


class RecordingBarrier:
    def __init__(self) -> None:
        self.waited: list[list[tuple[int, type[DomainEvent]]]] = []

    async def wait(self, written: Sequence[tuple[int, type[DomainEvent]]]) -> None:
        self.waited.append(list(written))


@pytest.fixture
def bus() -> tuple[MessageBus, RecordingBarrier]:
    bus = MessageBus()
    positions = iter(range(1, 1000))

    async def write(cmd: Write) -> str:
        note_written([(next(positions), event) for event in cmd.events])
        if cmd.nested:
            await bus.handle(Write(events=(Projected,)))
        return "written"

    async def read(query: Read) -> str:
        note_written([(next(positions), Projected)])
        return "read"

    bus.register(Write, write)
    bus.register(Read, read)
    barrier = RecordingBarrier()
    bus.barrier = barrier
    return bus, barrier


async def test_a_command_waits_once_for_everything_it_wrote(bus):
    messages, barrier = bus

    assert await messages.handle(Write(events=(Projected, Audited, Projected))) == "written"

    assert barrier.waited == [[(1, Projected), (2, Audited), (3, Projected)]]


async def test_a_command_that_wrote_nothing_returns_at_once(bus):
    messages, barrier = bus

    await messages.handle(Write(events=()))

    assert barrier.waited == []


async def test_a_nested_command_does_not_wait_itself_the_outer_one_waits_for_both(bus):
    messages, barrier = bus

    await messages.handle(Write(events=(Projected,), nested=True))

    assert barrier.waited == [[(1, Projected), (2, Projected)]]


async def test_queries_and_projections_never_wait(bus):
    messages, barrier = bus

    assert await messages.handle(Read()) == "read"
    with without_waiting():
        await messages.handle(Write(events=(Projected,)))

    assert barrier.waited == []


async def test_without_a_barrier_nothing_waits():
    messages = MessageBus()

    async def write(cmd: Write) -> str:
        note_written([(1, Projected)])
        return "written"

    messages.register(Write, write)
    assert await messages.handle(Write(events=(Projected,))) == "written"


def test_a_handler_naming_a_dependency_its_context_lacks_is_refused_at_wiring():
    async def handle(cmd: Write, *, uow: object, clock: object) -> None:
        return None

    with pytest.raises(WiringError, match="needs clock"):
        register(MessageBus(), Handlers(messages={Write: handle}), {"uow": object()})


def test_every_context_wires_with_its_own_dependencies(tmp_path):
    """The real bootstrap builds (it connects to nothing) and every handler finds its deps."""
    from app.bootstrap import bootstrap
    from app.settings import Settings

    settings = Settings(
        database_url="postgresql+asyncpg://unused@127.0.0.1:9/none",
        redis_url="redis://127.0.0.1:9/0",
        data_dir=tmp_path,
        jwt_secret=uuid.uuid4().hex + uuid.uuid4().hex,
    )
    container = bootstrap(settings)

    assert set(container.deps) == {"users", "servers", "groups", "files", "backups", "monitoring"}
    assert container.deps["servers"]["uow"] is not container.deps["groups"]["uow"]
