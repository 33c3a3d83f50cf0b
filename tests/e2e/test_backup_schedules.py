"""A backup schedule run by the real `mcdash scheduler` process: cron timing and retention."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.conftest import run_scheduler

pytestmark = pytest.mark.e2e


@pytest.fixture
def scheduler(stack_env, tmp_path):
    env = {
        **stack_env,
        "MCDASH_BACKUP_SCHEDULER_TICK_SECONDS": "1",
        "MCDASH_BACKUP_SWEEP_SECONDS": "5",
    }
    yield from run_scheduler(env, tmp_path)


async def scheduled(db, schedule_id):
    return await db.fetch(
        "SELECT id, status, created_at FROM backups WHERE schedule_id=$1 ORDER BY created_at",
        schedule_id,
    )


async def test_every_minute_keep_last_two(dashboard, start_worker, fake_jar, db, request):
    start_worker()
    server = await dashboard.create_custom_server(fake_jar, name="scheduled")
    sid = server["id"]
    assert (await dashboard.http.post(f"/api/v2/servers/{sid}/start")).status_code == 202
    await dashboard.wait_state(sid, "running")
    manual = (await dashboard.http.post(f"/api/v2/servers/{sid}/backups")).json()["id"]
    created = await dashboard.http.post(
        f"/api/v2/servers/{sid}/schedules",
        json={"cron_expression": "*/1 * * * *", "keep_last": 2},
    )
    assert created.status_code == 201, created.text
    schedule_id = uuid.UUID(created.json()["id"])
    # The scheduler was down for ten minutes: the missed runs collapse into one run at start.
    missed = datetime.now(UTC) - timedelta(minutes=10)
    await db.execute("UPDATE backup_schedules SET next_run=$1 WHERE id=$2", missed, schedule_id)
    request.getfixturevalue("scheduler")

    # The first run makes up for the missed ones; then the schedule is set back once more,
    # for a second make-up run, so that the third (the one that rotates) is the next minute's:
    # the test waits for one minute boundary, not three.
    most_completed = 0
    set_back = False
    created_at: list[datetime] = []
    deadline = time.monotonic() + 150
    while True:
        rows = await scheduled(db, schedule_id)
        completed = [row for row in rows if row["status"] == "completed"]
        most_completed = max(most_completed, len(completed))
        assert most_completed <= 2, rows
        created_events = await db.fetch(
            "SELECT event_data, occurred_at FROM domain_events WHERE event_type='BackupCreated' "
            "AND event_data->>'schedule_id' = $1 ORDER BY position",
            str(schedule_id),
        )
        created_at = [row["occurred_at"] for row in created_events]
        if not set_back and len(completed) == 1 and datetime.now(UTC).second < 45:
            await db.execute(
                "UPDATE backup_schedules SET next_run=$1 WHERE id=$2", missed, schedule_id
            )
            set_back = True
        if (
            len(created_at) >= 3
            and created_at[-1].second <= 3
            and len(completed) == 2
            and all(r["status"] == "completed" for r in rows)
        ):
            break
        assert time.monotonic() < deadline, f"only {len(created_at)} scheduled backups so far"
        await asyncio.sleep(0.5)

    deleted = await db.fetchval(
        "SELECT count(*) FROM domain_events WHERE event_type='BackupDeleted' "
        "AND event_data->>'reason' LIKE 'retention of schedule%'"
    )
    assert deleted == len(created_at) - 2
    row = await db.fetchrow(
        "SELECT last_run, next_run FROM backup_schedules WHERE id=$1", schedule_id
    )
    assert row["last_run"] is not None
    # The last run fell on a minute boundary (above); every minute means the next one is the
    # boundary after it.
    boundary = created_at[-1].replace(second=0, microsecond=0)
    assert row["next_run"] == boundary + timedelta(minutes=1), (row, created_at)
    # Manual backups are never rotated.
    kept = (await dashboard.http.get(f"/api/v2/backups/{manual}")).json()
    assert kept["status"] == "completed"
    summary = (await dashboard.http.get(f"/api/v2/servers/{sid}/backups/summary")).json()
    assert summary["backup_count"] == 3
    assert summary["success_rate"] == 1.0
