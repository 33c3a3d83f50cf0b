"""SSE notifications and status streams with the real stack: a client that reconnects gets
exactly what it missed (no gap, no repeat), by the `Last-Event-ID` header or, for a new
EventSource with a new ticket, by `?last_event_id=`; ids a stream cannot resume from get
`reset`, then live events."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable

import httpx
import pytest
from redis.asyncio import Redis

from app.monitoring.infrastructure.streams import STATUS_CHANNEL
from tests.e2e.conftest import PASSWORD
from tests.e2e.test_sse_console import events

pytestmark = pytest.mark.e2e

NOTIFICATIONS = "/api/v2/notifications/stream"
Event = tuple[str | None, str, dict]


async def register(dashboard, name: str) -> None:
    """A registration waiting for approval: a notification for the admin (the dashboard)."""
    async with httpx.AsyncClient(base_url=dashboard.url, timeout=10) as anonymous:
        body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
        assert (await anonymous.post("/api/v2/auth/register", json=body)).status_code == 201


async def stored(dashboard, want: int) -> list[dict]:
    """The admin's stored notifications, oldest first, once there are `want` of them."""
    async with asyncio.timeout(15):
        while True:
            page = (await dashboard.http.get("/api/v2/notifications?limit=200")).json()
            if len(page["items"]) >= want:
                return list(reversed(page["items"]))
            await asyncio.sleep(0.1)


class Reader:
    """One open stream, read in the background; `until` waits for what the test expects."""

    def __init__(self, http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
        self.got: list[Event] = []
        self.status: int | None = None
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read(http, url, headers))

    async def _read(self, http, url, headers) -> None:
        async with http.stream("GET", url, headers=headers) as response:
            self.status = response.status_code
            assert response.headers["content-type"].startswith("text/event-stream")
            async for ident, event, data in events(response):
                self.got.append((ident, event, json.loads(data)))
                self._changed.set()

    async def until(self, done: Callable[[list[Event]], bool], timeout: float = 20) -> list:
        async with asyncio.timeout(timeout):
            while not done(self.got):
                self._changed.clear()
                if self._task.done():
                    self._task.result()
                    raise AssertionError(f"the stream ended: {self.got}")
                await self._changed.wait()
        return self.got

    async def close(self) -> None:
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task


def usernames(got: list[Event]) -> list[str]:
    return [data["data"]["username"] for _, event, data in got if event == "notification"]


def has(count: int) -> Callable[[list[Event]], bool]:
    return lambda got: len(usernames(got)) >= count


async def test_notifications_resume_after_a_drop_without_gap_or_repeat(live_server, dashboard):
    await register(dashboard, "first")
    (seen,) = await stored(dashboard, 1)
    # From a known id nothing is lost to the race between connecting and subscribing.
    reader = Reader(dashboard.http, NOTIFICATIONS, {"Last-Event-ID": seen["id"]})
    for name in ("second", "third"):
        await register(dashboard, name)
    got = await reader.until(has(2))
    assert usernames(got) == ["second", "third"]
    assert all(ident for ident, event, _ in got if event == "notification")
    last_id = got[-1][0]
    await reader.close()

    for name in ("fourth", "fifth", "sixth"):  # while nobody listens
        await register(dashboard, name)
    everything = await stored(dashboard, 6)
    reader = Reader(dashboard.http, NOTIFICATIONS, {"Last-Event-ID": last_id})
    got = await reader.until(has(3))
    await register(dashboard, "seventh")
    got = await reader.until(has(4))
    await reader.close()
    assert [event for _, event, _ in got] == ["notification"] * 4, "no reset: the id is known"
    assert usernames(got) == ["fourth", "fifth", "sixth", "seventh"], "once each, in order"
    assert [ident for ident, _, _ in got[:3]] == [n["id"] for n in everything[3:6]]

    # A new EventSource (a new ticket, no header) resumes by ?last_event_id=.
    ticket = (await dashboard.http.post("/api/v2/ws/tickets")).json()["ticket"]
    async with httpx.AsyncClient(base_url=dashboard.url, timeout=10) as anonymous:
        reader = Reader(anonymous, f"{NOTIFICATIONS}?ticket={ticket}&last_event_id={last_id}", {})
        got = await reader.until(has(4))
        await reader.close()
    assert usernames(got) == ["fourth", "fifth", "sixth", "seventh"]
    assert reader.status == 200

    # The header wins over the parameter.
    sixth = everything[5]["id"]
    url = f"{NOTIFICATIONS}?last_event_id={uuid.uuid4()}"
    reader = Reader(dashboard.http, url, {"Last-Event-ID": sixth})
    got = await reader.until(has(1))
    await reader.close()
    assert [(event, data["data"]["username"]) for _, event, data in got] == [
        ("notification", "seventh")
    ]


@pytest.mark.parametrize(
    ("where", "bad"),
    [
        pytest.param("header", "not-a-uuid", id="garbage-header"),
        pytest.param("header", str(uuid.uuid4()), id="unknown-header"),
        pytest.param("query", "not-a-uuid", id="garbage-query"),
        pytest.param("query", str(uuid.uuid4()), id="unknown-query"),
    ],
)
async def test_an_id_the_stream_cannot_resume_from_gets_reset_then_live(
    live_server, dashboard, where, bad
):
    headers = {"Last-Event-ID": bad} if where == "header" else {}
    url = f"{NOTIFICATIONS}?last_event_id={bad}" if where == "query" else NOTIFICATIONS
    reader = Reader(dashboard.http, url, headers)
    (first,) = await reader.until(lambda got: len(got) >= 1)
    assert first[1] == "reset"
    assert "not a notification of yours" in first[2]["reason"]
    await register(dashboard, "later")
    got = await reader.until(has(1))
    await reader.close()
    assert [event for _, event, _ in got] == ["reset", "notification"]
    assert usernames(got) == ["later"]


async def test_another_users_notification_id_is_unknown_to_them(live_server, dashboard):
    await register(dashboard, "plain")
    (theirs,) = await stored(dashboard, 1)
    async with httpx.AsyncClient(base_url=dashboard.url, timeout=10) as http:
        await dashboard.http.patch(f"/api/v2/users/{theirs['data']['user_id']}/approve")
        login = await http.post(
            "/api/v2/auth/login", json={"username": "plain", "password": PASSWORD}
        )
        headers = {
            "Authorization": f"Bearer {login.json()['access_token']}",
            "Last-Event-ID": theirs["id"],
        }
        reader = Reader(http, NOTIFICATIONS, headers)
        got = await reader.until(lambda got: len(got) >= 1)
        await reader.close()
    assert got[0][1] == "reset", "the admin's notification is not replayed to someone else"


async def wait_subscribed(redis: Redis, channel: str) -> None:
    async with asyncio.timeout(10):
        while dict(await redis.pubsub_numsub(channel)).get(channel, 0) < 1:
            await asyncio.sleep(0.05)


async def test_status_stream_never_repeats_an_id_and_resumes_after_the_last(
    dashboard, start_worker, fake_jar, settings
):
    start_worker()
    sid = (await dashboard.create_custom_server(fake_jar, name="sampled"))["id"]
    channel = STATUS_CHANNEL.format(server_id=sid)
    url = f"/api/v2/servers/{sid}/status/stream"
    redis = Redis.from_url(settings.redis_url, decode_responses=True)

    async def sample(at: float) -> None:
        await redis.publish(channel, json.dumps({"state": "running", "sampled_at": at}))

    def statuses(got: list[Event]) -> list[str | None]:
        return [ident for ident, event, _ in got if event == "status"]

    try:
        reader = Reader(dashboard.http, url, {})
        got = await reader.until(lambda got: len(got) >= 1)
        assert got[0][1:] == ("status", got[0][2])
        assert got[0][2]["state"] == "stopped"
        await wait_subscribed(redis, channel)
        for at in (1000.0, 1000.5, 1000.5, 999.0, 1000.25, 1001.0):  # repeats and late ones
            await sample(at)
        got = await reader.until(lambda got: "1001000" in statuses(got))
        await reader.close()
        assert statuses(got) == [None, "1000000", "1000500", "1001000"], "only newer samples"

        # A new EventSource passes the id as ?last_event_id=.
        reader = Reader(dashboard.http, f"{url}?last_event_id=1000500", {})
        got = await reader.until(lambda got: len(got) >= 1)
        await wait_subscribed(redis, channel)
        for at in (1000.5, 1000.75, 1002.0):
            await sample(at)
        got = await reader.until(lambda got: "1002000" in statuses(got))
        await reader.close()
        ids = [ident for ident in statuses(got) if ident]
        assert ids == ["1000750", "1002000"], "nothing at or before Last-Event-ID"
        assert "reset" not in [event for _, event, _ in got]

        for bad in ("garbage", "12345678901234567890"):
            reader = Reader(dashboard.http, url, {"Last-Event-ID": bad})
            got = await reader.until(lambda got: len(got) >= 2)
            await wait_subscribed(redis, channel)
            await sample(1003.0)
            got = await reader.until(lambda got: "1003000" in statuses(got))
            await reader.close()
            assert got[0][1] == "reset", bad
            assert got[1][1] == "status"
            assert statuses(got)[-1] == "1003000"
    finally:
        await redis.aclose()
