"""Groups end to end: a real API, a real worker and the fake server's files and console."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from app.groups.domain.model import offline_uuid

pytestmark = pytest.mark.e2e


async def wait_file(path: Path, predicate, timeout: float = 30) -> list[dict]:
    """The list file once the set of names in it satisfies `predicate`."""
    return await wait_entries(
        path, lambda entries: predicate({e["name"] for e in entries}), timeout
    )


async def wait_entries(path: Path, predicate, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            entries = json.loads(path.read_text())
        except (OSError, ValueError):
            entries = None
        if entries is not None and predicate(entries):
            return entries
        assert time.monotonic() < deadline, f"{path.name} is still {entries}"
        await asyncio.sleep(0.2)


async def console_reply(dashboard, sid: str, command: str, marker, timeout: float = 15) -> str:
    """The first live console line after `command` that matches (the backlog is skipped)."""
    async with dashboard.console(sid) as ws, asyncio.timeout(timeout):
        while json.loads(await ws.recv())["type"] != "backlog":
            pass
        await ws.send(json.dumps({"command": command}))
        while True:
            message = json.loads(await ws.recv())
            assert message["type"] != "error", message
            for line in message.get("lines", []) if message["type"] == "lines" else []:
                if marker(line["line"]):
                    return str(line["line"])


def whitelist_reply(line: str) -> bool:
    return "whitelisted player" in line


async def group(dashboard, name: str, group_type: str, *players: str, **extra) -> str:
    created = await dashboard.http.post(
        "/api/v2/groups/", json={"name": name, "group_type": group_type, **extra}
    )
    assert created.status_code == 201, created.text
    gid = created.json()["id"]
    for player in players:
        added = await dashboard.http.post(
            f"/api/v2/groups/{gid}/players", json={"name": player, "mode": "offline"}
        )
        assert added.status_code == 201, added.text
    return gid


async def test_groups_sync_to_a_running_and_a_stopped_server(
    dashboard, start_worker, fake_jar, stack_env
):
    start_worker()
    server = await dashboard.create_custom_server(fake_jar, name="grouped")
    sid = server["id"]
    directory = Path(stack_env["MCDASH_DATA_DIR"]) / "servers" / sid
    await dashboard.http.post(f"/api/v2/servers/{sid}/start")
    await dashboard.wait_state(sid, "running")

    players = await group(dashboard, "players", "whitelist", "Alice")
    attached = await dashboard.http.post(f"/api/v2/groups/{players}/servers/{sid}")
    assert attached.status_code == 201, attached.text
    await wait_file(directory / "whitelist.json", lambda names: "Alice" in names)
    reply = await console_reply(dashboard, sid, "whitelist list", whitelist_reply)
    assert reply.endswith("There are 1 whitelisted player(s): Alice")
    access = (await dashboard.http.get(f"/api/v2/servers/{sid}/access")).json()
    assert access["last_sync"]["commands"] == ["whitelist add Alice", "whitelist reload"]
    assert access["last_sync"]["failures"] == []

    detached = await dashboard.http.delete(f"/api/v2/groups/{players}/servers/{sid}")
    assert detached.status_code == 204
    await wait_file(directory / "whitelist.json", lambda names: "Alice" not in names)
    reply = await console_reply(
        dashboard, sid, "whitelist list", lambda line: "whitelisted" in line
    )
    assert reply.endswith("There are no whitelisted players")

    staff = await group(dashboard, "staff", "op", "Bob", op_level=2)
    await dashboard.http.post(f"/api/v2/groups/{staff}/servers/{sid}")
    # The running server writes ops.json itself on `op Bob` (at its default level 4) just
    # before the node rewrites the file with the group's level: wait for the node's write.
    ops = await wait_entries(
        directory / "ops.json", lambda entries: [e["level"] for e in entries] == [2]
    )
    assert ops == [
        {
            "uuid": str(offline_uuid("Bob")),
            "name": "Bob",
            "level": 2,
            "bypassesPlayerLimit": False,
        }
    ]
    # The node records the sync once its commands have run, just after the file is written.
    await wait_sync(dashboard, sid, lambda sync: "op Bob" in sync["commands"])
    op_again = await console_reply(dashboard, sid, "op Bob", lambda line: "operator" in line)
    assert op_again.endswith("Nothing changed. The player already is an operator")

    hand = await console_reply(dashboard, sid, "whitelist add Hand", lambda line: "Hand" in line)
    assert hand.endswith("Added Hand to the whitelist")
    await dashboard.http.post(f"/api/v2/groups/{players}/servers/{sid}")
    await wait_file(directory / "whitelist.json", lambda names: names == {"Alice", "Hand"})
    await wait_sync(dashboard, sid, lambda sync: sync["drift_whitelist"] == ["Hand"])

    mode = await dashboard.http.put(f"/api/v2/servers/{sid}/access", json={"authoritative": True})
    assert mode.status_code == 200
    await wait_file(directory / "whitelist.json", lambda names: names == {"Alice"})
    reply = await console_reply(dashboard, sid, "whitelist list", whitelist_reply)
    assert reply.endswith("There are 1 whitelisted player(s): Alice")
    sync = await wait_sync(dashboard, sid, lambda sync: "whitelist remove Hand" in sync["commands"])
    assert sync["drift_whitelist"] == []

    await dashboard.http.post(f"/api/v2/servers/{sid}/stop")
    await dashboard.wait_state(sid, "stopped")
    added = await dashboard.http.post(
        f"/api/v2/groups/{players}/players", json={"name": "Carol", "mode": "offline"}
    )
    assert added.status_code == 201
    await dashboard.http.post(f"/api/v2/servers/{sid}/start")
    await dashboard.wait_state(sid, "running")
    reply = await console_reply(dashboard, sid, "whitelist list", whitelist_reply)
    assert reply.endswith("There are 2 whitelisted player(s): Alice, Carol")
    await dashboard.http.post(f"/api/v2/servers/{sid}/stop")
    await dashboard.wait_state(sid, "stopped")


async def wait_sync(dashboard, sid: str, predicate, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        sync = (await dashboard.http.get(f"/api/v2/servers/{sid}/access")).json()["last_sync"]
        if sync and predicate(sync):
            return dict(sync)
        assert time.monotonic() < deadline, f"last sync is still {sync}"
        await asyncio.sleep(0.2)
