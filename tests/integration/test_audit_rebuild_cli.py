"""`mcdash projections rebuild audit`: the log is emptied and the running projector replays the
event store into the same rows."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from app.cli import main
from tests.conftest import bearer, login, register

COLUMNS = (
    "position, event_id, occurred_at, actor_id, actor_username, action, resource_type,"
    " resource_id, server_id, client_addr, request_id, summary, details"
)


async def caught_up(db) -> list:
    """Every event projected and the checkpoint at the newest one."""
    for _ in range(300):
        last = await db.fetchval("SELECT coalesce(max(position), 0) FROM domain_events")
        projected = await db.fetchval("SELECT count(*) FROM audit_log")
        events = await db.fetchval("SELECT count(*) FROM domain_events")
        mark = await db.fetchval("SELECT position FROM projection_checkpoints WHERE name='audit'")
        if last and projected == events and mark == last:
            return list(await db.fetch(f"SELECT {COLUMNS} FROM audit_log ORDER BY position"))
        await asyncio.sleep(0.05)
    raise AssertionError("the audit projection did not catch up")


async def test_rebuild_from_the_command_line_replays_identical_rows(client, db, settings):
    await register(client, "admin1")
    admin = bearer(await login(client, "admin1"))
    user_id = (await register(client, "owner1")).json()["id"]
    await client.patch(f"/api/v2/users/{user_id}/approve", headers=admin)
    owner = bearer(await login(client, "owner1"))
    created = await client.post(
        "/api/v2/servers/",
        headers=owner,
        json={"name": "lobby", "server_type": "custom", "version": "1.0", "memory_mb": 512},
    )
    assert created.status_code == 201, created.text
    before = await caught_up(db)
    assert {"UserRegistered", "UserApproved", "ServerCreated"} <= {row["action"] for row in before}
    written = await db.fetchval("SELECT max(xmin::text::bigint) FROM audit_log")

    env = {
        **os.environ,
        "MCDASH_DATABASE_URL": settings.database_url,
        "MCDASH_REDIS_URL": settings.redis_url,
        "MCDASH_DATA_DIR": str(settings.data_dir),
        "MCDASH_JWT_SECRET": settings.jwt_secret.get_secret_value(),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "app.cli", "projections", "rebuild", "audit"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    assert "emptied audit" in out.decode()

    after = await caught_up(db)
    assert after == before
    rewritten = await db.fetchval("SELECT min(xmin::text::bigint) FROM audit_log")
    assert rewritten > written, "every row was written again, not left in place"


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("audits", id="misspelt"),
        pytest.param("server_list_view", id="a-materialized-view"),
        pytest.param("", id="empty"),
    ],
)
def test_an_unknown_projection_is_a_clear_error(name, capsys):
    assert main(["projections", "rebuild", name]) == 2
    error = capsys.readouterr().err
    assert f"unknown projection {name!r}" in error
    assert "known: audit" in error


def test_rebuild_needs_a_name(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["projections", "rebuild"])
    assert exited.value.code == 2
    assert "name" in capsys.readouterr().err
