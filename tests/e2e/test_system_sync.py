"""System sync against a real worker: a JVM killed while the database could not record its exit.

The worker notices a dead JVM within a tenth of a second and records the exit itself; sync is
for when that record fails. Here a trigger makes every write to the server's row fail while the
JVM is killed with SIGKILL, so the worker forgets the process and the database keeps saying
"running"; once the trigger is gone, GET reports the server and POST records it crashed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.e2e

SYNC = "/api/v2/admin/system/sync"


def jvm_of(pid: int, server_dir: Path) -> psutil.Process:
    """The live pid the worker reports, checked to be a java process of this server."""
    process = psutil.Process(pid)
    assert Path(process.cmdline()[0]).name.startswith("java"), process.cmdline()
    # A sandboxed JVM sees its directory as /server: its launcher's command line names it.
    lineage = [process, *process.parents()]
    owned = process.cwd() == str(server_dir) or any(
        str(server_dir) in arg for member in lineage for arg in member.cmdline()
    )
    assert owned, [member.cmdline() for member in lineage]
    return process


async def wait_for(predicate, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"{what} not seen within {timeout} s"
        await asyncio.sleep(0.2)


async def server_report(dashboard, sid: str) -> dict:
    report = (await dashboard.http.get(SYNC)).json()
    return next(s for s in report["servers"] if s["server_id"] == sid)


async def test_a_jvm_killed_while_its_exit_could_not_be_recorded_is_reported_and_repaired(
    dashboard, start_worker, fake_jar, db, stack_env
):
    worker = start_worker()
    sid = (await dashboard.create_custom_server(fake_jar, name="killed"))["id"]
    assert (await dashboard.http.post(f"/api/v2/servers/{sid}/start")).status_code == 202
    await dashboard.wait_state(sid, "running")
    live = await dashboard.wait_live(sid, lambda live: live.get("pid"))
    healthy = await server_report(dashboard, sid)
    assert healthy["problem"] is None, healthy
    assert healthy["observed"]["alive"] is True
    assert healthy["observed"]["pid"] == live["pid"]
    server_dir = Path(stack_env["MCDASH_DATA_DIR"]) / "servers" / sid
    jvm = await asyncio.to_thread(jvm_of, live["pid"], server_dir)

    await db.execute(
        "CREATE FUNCTION refuse_server_write() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN RAISE EXCEPTION 'database unavailable (test)'; END $$"
    )
    await db.execute(
        "CREATE TRIGGER refuse_server_write BEFORE UPDATE ON servers FOR EACH ROW"
        f" WHEN (OLD.id = '{sid}'::uuid) EXECUTE FUNCTION refuse_server_write()"
    )
    try:
        os.kill(jvm.pid, signal.SIGKILL)
        await asyncio.to_thread(jvm.wait, 10)

        async def worker_gave_up() -> bool:
            log = worker.log_path.read_text()
            return "watch_failed" in log and "database unavailable (test)" in log

        await wait_for(worker_gave_up, "the worker's failed exit record")
        # The worker no longer watches it, and its exit was never recorded.
        await wait_for(lambda: _problem_is(dashboard, sid, "no-process"), "no-process in GET sync")
    finally:
        await db.execute("DROP TRIGGER refuse_server_write ON servers")
        await db.execute("DROP FUNCTION refuse_server_write()")

    assert (await db.fetchval("SELECT status FROM servers WHERE id = $1", sid)) == "running"
    report = (await dashboard.http.get(SYNC)).json()
    assert report["consistent"] is False
    (stale,) = [s for s in report["servers"] if s["server_id"] == sid]
    assert stale["db_state"] == "running"
    assert stale["db_pid"] == live["pid"]
    assert stale["observed"] is None, "the node watches no process for it"
    assert report["orphans"] == [], "nothing of the killed JVM is left running"

    repaired = await dashboard.http.post(SYNC)
    assert repaired.status_code == 200, repaired.text
    body = repaired.json()
    (repair,) = [r for r in body["repairs"] if r["kind"] == "server"]
    assert (repair["target"], repair["action"]) == (sid, "crashed")
    assert repair["detail"] == f"was running (pid {live['pid']}); its node watches no process"
    after = next(s for s in body["after"]["servers"] if s["server_id"] == sid)
    assert after["problem"] is None, after
    server = (await dashboard.http.get(f"/api/v2/servers/{sid}")).json()
    assert server["status"] == "crashed", server
    again = await server_report(dashboard, sid)
    assert again["problem"] is None
    assert again["db_state"] == "crashed"
    events = await dashboard.events(db, sid)
    assert events[-1] == "ServerCrashed"
    assert events.count("ServerCrashed") == 1
    # A second repair finds nothing more to do for it.
    second = (await dashboard.http.post(SYNC)).json()
    assert not [r for r in second["repairs"] if r["target"] == sid]
    assert not psutil.pid_exists(jvm.pid) or jvm.status() == psutil.STATUS_ZOMBIE


async def _problem_is(dashboard, sid: str, problem: str) -> bool:
    return bool((await server_report(dashboard, sid))["problem"] == problem)
