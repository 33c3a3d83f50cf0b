"""The bus makes a command wait for the projection of what it wrote, and only that."""

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
        self.waited: list[list[int]] = []

    async def wait(self, positions: Sequence[int]) -> None:
        self.waited.append(list(positions))


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

    async def project(event: DomainEvent) -> None:
        return None

    bus.register(Write, write)
    bus.register(Read, read)
    bus.subscribe(Projected, project, projection=True)
    bus.subscribe(Audited, project)  # not a projection: nothing to wait for
    barrier = RecordingBarrier()
    bus.barrier = barrier
    return bus, barrier


async def test_a_command_waits_for_the_events_a_projection_handles(bus):
    messages, barrier = bus

    assert await messages.handle(Write(events=(Projected, Audited, Projected))) == "written"

    assert barrier.waited == [[1, 3]]


@pytest.mark.parametrize(
    "events", [(), (Audited,)], ids=["wrote-nothing", "wrote-only-unprojected-events"]
)
async def test_a_command_without_projected_events_returns_at_once(bus, events):
    messages, barrier = bus

    await messages.handle(Write(events=events))

    assert barrier.waited == []


async def test_a_nested_command_does_not_wait_itself_the_outer_one_waits_for_both(bus):
    messages, barrier = bus

    await messages.handle(Write(events=(Projected,), nested=True))

    assert barrier.waited == [[1, 2]]


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
