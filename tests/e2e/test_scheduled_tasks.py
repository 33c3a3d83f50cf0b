"""A restart schedule run by the real `mcdash scheduler` on one running fake server: the
players are warned in order in the console, then the server restarts. Warning minutes last a
second here (MCDASH_SCHEDULE_WARNING_MINUTE_SECONDS), so a run can be warned of 20, 10 and 5
"minutes" ahead through the same code as real minutes."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.conftest import run_scheduler

pytestmark = pytest.mark.e2e

WARNING = "Restart in {minutes} (test seconds)"


@pytest.fixture
def stack_env(stack_env):
    """API and scheduler agree on the warning unit: the API checks warnings fit the cron."""
    return {
        **stack_env,
        "MCDASH_SCHEDULE_WARNING_MINUTE_SECONDS": "1",
        "MCDASH_BACKUP_SCHEDULER_TICK_SECONDS": "1",
    }


@pytest.fixture
def scheduler(stack_env, tmp_path):
    yield from run_scheduler(stack_env, tmp_path)


async def console_lines(dashboard, sid: str) -> list[str]:
    page = (await dashboard.http.get(f"/api/v2/servers/{sid}/logs?limit=1000")).json()
    return [item["line"] for item in reversed(page["items"])]


async def wait_restarted(dashboard, sid: str, started_at: str, timeout: float = 60):
    """The status once the server runs again, started after `started_at`."""
    deadline = time.monotonic() + timeout
    first = datetime.fromisoformat(started_at)
    while True:
        status = (await dashboard.http.get(f"/api/v2/servers/{sid}/status")).json()
        again = status["started_at"] and datetime.fromisoformat(status["started_at"]) > first
        if status["state"] == "running" and again:
            return status
        assert time.monotonic() < deadline, f"not restarted: {status}"
        await asyncio.sleep(0.2)


async def task_runs(db, schedule_id: uuid.UUID):
    return await db.fetch(
        "SELECT event_data, occurred_at FROM domain_events WHERE event_type='ScheduledTaskRan' "
        "AND aggregate_id=$1 ORDER BY position",
        schedule_id,
    )


async def leading(scheduler) -> None:
    """Until the scheduler process holds the leader lock and so runs its jobs."""
    deadline = time.monotonic() + 60
    while "scheduler_leading" not in scheduler.log_path.read_text():
        assert scheduler.process.poll() is None, scheduler.log_path.read_text()
        assert time.monotonic() < deadline, "the scheduler never led"
        await asyncio.sleep(0.2)


async def test_a_restart_schedule_warns_in_order_then_restarts(
    dashboard, start_worker, fake_jar, db, request
):
    start_worker()
    server = await dashboard.create_custom_server(fake_jar, name="nightly-restart")
    sid = server["id"]
    assert (await dashboard.http.post(f"/api/v2/servers/{sid}/start")).status_code == 202
    before = await dashboard.wait_state(sid, "running")
    url = f"/api/v2/servers/{sid}/schedules"

    too_long = await dashboard.http.post(
        url, json={"cron_expression": "* * * * *", "action": "restart", "warnings": [60, 5]}
    )
    assert too_long.status_code == 422, too_long.text
    assert "time between runs" in too_long.json()["detail"]
    denied = await dashboard.http.post(
        url, json={"cron_expression": "0 4 * * *", "action": "command", "command": "reload"}
    )
    assert denied.status_code == 422, denied.text
    assert "'reload' is not allowed" in denied.json()["detail"]

    created = await dashboard.http.post(
        url,
        json={
            "cron_expression": "* * * * *",
            "action": "restart",
            "warnings": [5, 20, 10],
            "message": WARNING,
        },
    )
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert (schedule["action"], schedule["warnings"]) == ("restart", [20, 10, 5])
    schedule_id = uuid.UUID(schedule["id"])
    assert datetime.fromisoformat(schedule["next_run"]).second == 0
    # The run is moved out of reach while the scheduler starts (a loaded machine takes seconds),
    # then, once it leads, to 22 s from now with all its warnings still to send (had the minute
    # boundary been less than 20 s away, the 20 would have been passed over), so the test
    # need not wait for a minute boundary (the backup schedule test waits for one).
    move = "UPDATE backup_schedules SET next_run=$1, warned=NULL WHERE id=$2"
    await db.execute(move, datetime.now(UTC) + timedelta(hours=1), schedule_id)
    await leading(request.getfixturevalue("scheduler"))
    planned = (datetime.now(UTC) + timedelta(seconds=22)).replace(microsecond=0)
    await db.execute(move, planned, schedule_id)
    deadline = time.monotonic() + 100
    while not (runs := await task_runs(db, schedule_id)):
        assert time.monotonic() < deadline, "the restart never ran"
        await asyncio.sleep(0.5)
    status = await wait_restarted(dashboard, sid, before["started_at"])

    (run,) = runs
    assert json.loads(run["event_data"])["outcome"] == "requested", run
    assert run["occurred_at"] >= planned
    assert status["state"] == "running"
    lines = await console_lines(dashboard, sid)
    warned = [line.split("[Server] ", 1)[1] for line in lines if "[Server] Restart in" in line]
    assert warned == [WARNING.format(minutes=m) for m in (20, 10, 5)], lines
    first_warning = next(i for i, line in enumerate(lines) if "[Server] Restart in 20" in line)
    stopping = next(i for i, line in enumerate(lines) if "Stopping the server" in line)
    assert first_warning < stopping
    events = await dashboard.events(db, sid)
    after = events[events.index("ServerStopRequested") :]
    assert [e for e in after if e in ("ServerStopped", "ServerStarted")][:2] == [
        "ServerStopped",
        "ServerStarted",
    ], events
    row = await db.fetchrow(
        "SELECT last_run, next_run, warned FROM backup_schedules WHERE id=$1", schedule_id
    )
    assert row["last_run"] >= planned
    assert row["next_run"] > row["last_run"]
