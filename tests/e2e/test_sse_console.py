"""SSE console stream with the real stack: a client reconnecting with Last-Event-ID misses no
line and repeats none; a garbage id is a `reset`; tickets are one-use; others' servers 404."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.e2e.conftest import PASSWORD

pytestmark = pytest.mark.e2e


async def events(response):
    """(id, event, data) of each server-sent event, comments (heartbeats) skipped."""
    current: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "event" in current:
                yield current.get("id"), current["event"], current.get("data", "")
            current = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(": ")
            current[field] = value if field != "data" else current.get("data", "") + value


async def read_lines(http, url, headers, until: str, timeout: float = 30):
    got: list[tuple[str | None, str, dict]] = []
    async with asyncio.timeout(timeout), http.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for ident, event, data in events(response):
            parsed = json.loads(data)
            got.append((ident, event, parsed))
            if event == "line" and parsed["line"].endswith(until):
                return got
    return got


async def test_reconnecting_with_last_event_id_misses_and_repeats_no_line(
    dashboard, start_worker, fake_jar
):
    start_worker()
    sid = (await dashboard.create_custom_server(fake_jar, name="streamed"))["id"]
    assert (await dashboard.http.post(f"/api/v2/servers/{sid}/start")).status_code == 202
    await dashboard.wait_state(sid, "running")
    url = f"/api/v2/servers/{sid}/console/stream"
    send = {"command": "fake:say-lines 200"}
    first_task = asyncio.create_task(read_lines(dashboard.http, url, {}, "line 50"))
    await asyncio.sleep(0.5)
    assert (await dashboard.http.post(f"/api/v2/servers/{sid}/console", json=send)).is_success
    first = await first_task
    last_id = first[-1][0]
    assert last_id is not None
    second = await read_lines(dashboard.http, url, {"Last-Event-ID": last_id}, "line 200")
    lines = [data["line"].rsplit(" ", 1)[-1] for _, event, data in second if event == "line"]
    assert lines == [str(n) for n in range(51, 201)], "every line after 50, once, in order"
    ids = [ident for ident, event, _ in second if event == "line"]
    assert len(set(ids)) == len(ids)

    # A new EventSource (new ticket, no header) resumes from ?last_event_id= the same way.
    at_150 = ids[99]
    ticket = (await dashboard.http.post("/api/v2/ws/tickets")).json()["ticket"]
    async with httpx.AsyncClient(base_url=dashboard.url, timeout=10) as anonymous:
        resumed_url = f"{url}?ticket={ticket}&last_event_id={at_150}"
        third = await read_lines(anonymous, resumed_url, {}, "line 200")
    lines = [data["line"].rsplit(" ", 1)[-1] for _, event, data in third if event == "line"]
    assert lines == [str(n) for n in range(151, 201)]

    async with (
        asyncio.timeout(10),
        dashboard.http.stream("GET", url, headers={"Last-Event-ID": "not-an-id"}) as response,
    ):
        async for _, event, data in events(response):
            assert event == "reset"
            assert "not a console line id" in json.loads(data)["reason"]
            break

    ticket = (await dashboard.http.post("/api/v2/ws/tickets")).json()["ticket"]
    async with httpx.AsyncClient(base_url=dashboard.url, timeout=10) as anonymous:
        assert (await anonymous.get(url)).status_code == 401
        async with anonymous.stream("GET", f"{url}?ticket={ticket}") as response:
            assert response.status_code == 200
        reused = await anonymous.get(f"{url}?ticket={ticket}")
        assert reused.status_code == 401, "a ticket is used once"
        assert reused.headers["content-type"].startswith("application/problem+json")
        body = {"username": "stranger", "email": "s@example.com", "password": PASSWORD}
        user_id = (await anonymous.post("/api/v2/auth/register", json=body)).json()["id"]
        await dashboard.http.patch(f"/api/v2/users/{user_id}/approve")
        login = await anonymous.post(
            "/api/v2/auth/login", json={"username": "stranger", "password": PASSWORD}
        )
        stranger = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assert (await anonymous.get(url, headers=stranger)).status_code == 404
        status = f"/api/v2/servers/{sid}/status/stream"
        assert (await anonymous.get(status, headers=stranger)).status_code == 404
