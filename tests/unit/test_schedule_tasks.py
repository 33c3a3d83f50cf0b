"""Scheduled tasks besides backups, through the bootstrapped bus on fakes: what is refused when
a task is written, warnings sent once each and in order, runs skipped or failed with why."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.backups.application.messages import (
    CreateSchedule,
    FireDueSchedules,
    SendScheduleWarnings,
    UpdateSchedule,
)
from app.backups.domain.errors import InvalidSchedule
from app.backups.domain.events import BackupScheduled, ScheduledTaskRan
from app.backups.domain.tasks import Task, TaskAction
from app.shared.domain import Conflict
from app.shared.events import EventCodec
from app.shared.security import Role
from tests.fakes import FakeApp, FakeClock, FakeServerControl, FakeServerLookup, fake_app, principal

START = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)
ADMIN = principal("root", role=Role.ADMIN)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[FakeApp]:
    app = fake_app(
        tmp_path,
        clock=FakeClock(START),
        backups={"servers": FakeServerLookup(), "control": FakeServerControl()},
    )
    yield app
    await app.close()


async def schedule(world, server_id, **body):
    body = {"cron_expression": "0 * * * *", "action": TaskAction.RESTART, **body}
    return await world.bus.handle(CreateSchedule(actor=ADMIN, server_id=server_id, **body))


def runs(world) -> list[tuple[str, str, str | None]]:
    return [(e.action, e.outcome, e.reason) for e in world.backups.uow.events_of(ScheduledTaskRan)]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        pytest.param(
            {"warnings": (60,)}, "not shorter than the time between", id="warning-60-on-hourly"
        ),
        pytest.param(
            {"cron_expression": "0,10 3 * * *", "warnings": (15, 5)},
            "time between runs",
            id="warning-15-on-runs-10-minutes-apart",
        ),
        pytest.param({"warnings": tuple(range(1, 12))}, "at most 10", id="eleven-warnings"),
        pytest.param({"warnings": (0,)}, "1 to 1440", id="warning-zero"),
        pytest.param({"warnings": (1441,)}, "1 to 1440", id="warning-1441"),
        pytest.param({"warnings": (5, 5)}, "distinct", id="warning-twice"),
        pytest.param(
            {"warnings": (5,), "message": "Restart in {seconds}"},
            "placeholder",
            id="unknown-placeholder",
        ),
        pytest.param(
            {"warnings": (5,), "message": "Restart in {minutes!r}"}, "placeholder", id="conversion"
        ),
        pytest.param(
            {"warnings": (5,), "message": "Restart in {minutes:>99999}"},
            "placeholder",
            id="format-spec",
        ),
        pytest.param(
            {"warnings": (5,), "message": "Restart in {minutes"}, "template", id="open-brace"
        ),
        pytest.param(
            {"warnings": (5,), "message": "x" * 151}, "at most 150", id="message-151-chars"
        ),
        pytest.param({"warnings": (5,), "message": "a\nb"}, "one line", id="message-two-lines"),
        pytest.param({"action": TaskAction.COMMAND}, "needs a command", id="command-missing"),
        pytest.param(
            {"action": TaskAction.COMMAND, "command": "reload confirm"},
            "'reload' is not allowed",
            id="denied-verb-reload",
        ),
        pytest.param(
            {"action": TaskAction.COMMAND, "command": "execute as @a run restart"},
            "'restart' is not allowed",
            id="denied-verb-after-run",
        ),
        pytest.param({"action": TaskAction.COMMAND, "command": "stop"}, "stop", id="verb-stop"),
        pytest.param(
            {"action": TaskAction.START, "warnings": (5,)},
            "only for restart and stop",
            id="warn-start",
        ),
        pytest.param({"command": "say hi"}, "only for the command action", id="command-on-restart"),
    ],
)
async def test_a_task_that_cannot_run_as_written_is_refused_with_422(world, body, needle):
    sid = world.backups.servers.add()
    with pytest.raises(InvalidSchedule, match=needle) as refused:
        await schedule(world, sid, **body)
    assert refused.value.status == 422
    assert world.backups.uow.stored_schedules == {}


async def test_a_denied_say_refuses_warnings(tmp_path):
    control = FakeServerControl(denied=("say",))
    app = fake_app(tmp_path, backups={"servers": FakeServerLookup(), "control": control})
    try:
        sid = app.backups.servers.add()
        with pytest.raises(InvalidSchedule, match="'say' is not allowed"):
            await schedule(app, sid, warnings=(5,))
    finally:
        await app.close()


def test_a_backup_schedule_stored_before_tasks_reads_as_a_backup_task():
    codec = EventCodec([BackupScheduled])
    old = {
        "schedule_id": str(uuid.uuid4()),
        "server_id": str(uuid.uuid4()),
        "cron_expression": "0 3 * * *",
        "timezone": "UTC",
        "is_active": True,
        "only_when_running": False,
        "keep_last": 7,
        "keep_days": None,
        "next_run": START.isoformat(),
    }
    event = codec.decode("BackupScheduled", old, START)
    assert isinstance(event, BackupScheduled)
    assert (event.action, event.warnings, event.command) == ("backup", (), None)
    assert Task() == Task(action=TaskAction.BACKUP)


async def test_warnings_go_out_once_each_longest_first_then_the_restart_runs(world):
    sid = world.backups.servers.add()
    created = await schedule(world, sid, warnings=(1, 15, 5), message="Back in {minutes} min")
    assert created.task.warnings == (15, 5, 1)
    control = world.backups.control
    said: list[str | None] = []
    for minute in range(60):
        world.clock.set(START.replace(minute=minute, second=1))
        await world.bus.handle(SendScheduleWarnings())
        await world.bus.handle(SendScheduleWarnings())  # a second tick in the same minute
        said = [command for action, _, command in control.performed if action == "command"]
    assert said == ["say Back in 15 min", "say Back in 5 min", "say Back in 1 min"]
    world.clock.set(START.replace(hour=11, second=2))
    assert await world.bus.handle(FireDueSchedules()) == []
    assert control.performed[-1] == ("restart", sid, None)
    assert runs(world) == [("restart", "requested", "restart queued")]
    stored = world.backups.uow.stored_schedules[created.id]
    assert stored.last_run == world.clock.now()
    assert stored.next_run == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_a_warning_missed_while_the_scheduler_was_down_is_not_sent_late(world):
    sid = world.backups.servers.add()
    await schedule(world, sid, warnings=(15, 5))
    world.clock.set(START.replace(minute=57))
    await world.bus.handle(SendScheduleWarnings())
    assert [c for _, _, c in world.backups.control.performed] == [
        "say Server restarts in 5 minute(s)"
    ]


async def test_a_schedule_created_after_a_warning_time_skips_that_warning(world):
    world.clock.set(START.replace(minute=50))
    sid = world.backups.servers.add()
    await schedule(world, sid, warnings=(15, 5))
    await world.bus.handle(SendScheduleWarnings())
    assert world.backups.control.performed == []
    world.clock.set(START.replace(minute=55))
    await world.bus.handle(SendScheduleWarnings())
    assert len(world.backups.control.performed) == 1


async def test_players_online_skip_the_run_and_say_so(world):
    sid = world.backups.servers.add(players=2)
    created = await schedule(world, sid, skip_if_players_online=True)
    world.clock.set(START.replace(hour=11))
    await world.bus.handle(FireDueSchedules())
    assert world.backups.control.performed == []
    assert runs(world) == [("restart", "skipped", "2 player(s) online")]
    assert world.backups.uow.stored_schedules[created.id].next_run > world.clock.now()


@pytest.mark.parametrize(
    ("action", "running", "reason"),
    [
        pytest.param(TaskAction.START, True, "the server is already running", id="start-running"),
        pytest.param(TaskAction.STOP, False, "the server is not running", id="stop-stopped"),
        pytest.param(TaskAction.RESTART, False, "the server is not running", id="restart-stopped"),
    ],
)
async def test_a_run_that_would_do_nothing_is_skipped(world, action, running, reason):
    sid = world.backups.servers.add(running=running)
    await schedule(world, sid, action=action)
    world.clock.set(START.replace(hour=11))
    await world.bus.handle(FireDueSchedules())
    assert runs(world) == [(action.value, "skipped", reason)]


async def test_a_command_task_sends_its_checked_command_and_a_failure_is_recorded(world):
    sid = world.backups.servers.add()
    await schedule(world, sid, action=TaskAction.COMMAND, command="/save-all flush")
    world.clock.set(START.replace(hour=11))
    await world.bus.handle(FireDueSchedules())
    assert world.backups.control.performed == [("command", sid, "save-all flush")]
    world.backups.control.failure = Conflict("server s is stopping")
    world.clock.set(START.replace(hour=12))
    await world.bus.handle(FireDueSchedules())
    assert runs(world)[-1] == ("command", "failed", "server s is stopping")


async def test_changing_warnings_is_checked_like_creating(world):
    sid = world.backups.servers.add()
    created = await schedule(world, sid, warnings=(5,))
    with pytest.raises(InvalidSchedule, match="time between runs"):
        await world.bus.handle(
            UpdateSchedule(actor=ADMIN, schedule_id=created.id, cron_expression="*/5 * * * *")
        )
    changed = await world.bus.handle(
        UpdateSchedule(
            actor=ADMIN, schedule_id=created.id, warnings=(10, 2), message="in {minutes}"
        )
    )
    assert changed.task.warnings == (10, 2)
    assert changed.task.message == "in {minutes}"
    assert changed.task.action is TaskAction.RESTART
