"""Webhooks on the real stack: the API's relay queues, a real worker sends, the real scheduler
retries. Receivers run in the test on loopback (so the stack allows private addresses)."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.conftest import PASSWORD, run_scheduler
from tests.integration.test_webhooks_delivery import SECRET, serve_receiver, verify

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack_env(stack_env):
    return {
        **stack_env,
        "MCDASH_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES": "true",
        "MCDASH_WEBHOOK_TIMEOUT_SECONDS": "1",
        "MCDASH_WEBHOOK_RETRY_BASE_SECONDS": "0.5",
        "MCDASH_WEBHOOK_MAX_ATTEMPTS": "4",
    }


@pytest.fixture
def scheduler(stack_env, tmp_path):
    yield from run_scheduler(stack_env, tmp_path)


@pytest.fixture
def receiver():
    with serve_receiver() as served:
        served.hang_seconds = 60
        yield served


async def register_hook(dashboard, url: str) -> str:
    body = {"url": url, "event_types": ["UserLoggedIn"], "secret": SECRET}
    response = await dashboard.http.post("/api/v2/webhooks/", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def log_of(dashboard, webhook_id: str) -> list[dict]:
    response = await dashboard.http.get(f"/api/v2/webhooks/{webhook_id}/deliveries")
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def wait_log(dashboard, webhook_id: str, predicate, timeout: float = 60) -> list[dict]:
    async with asyncio.timeout(timeout):
        while not predicate(rows := await log_of(dashboard, webhook_id)):
            await asyncio.sleep(0.2)
    return rows


async def log_in(dashboard) -> None:
    body = {"username": "owner", "password": PASSWORD}
    assert (await dashboard.http.post("/api/v2/auth/login", json=body)).status_code == 200


async def test_signed_deliveries_retries_and_a_hanging_target(
    dashboard, start_worker, scheduler, receiver
):
    start_worker()
    ok = await register_hook(dashboard, f"{receiver.base}/ok")
    flaky = await register_hook(dashboard, f"{receiver.base}/flaky")
    hang = await register_hook(dashboard, f"{receiver.base}/hang")

    await log_in(dashboard)
    [first] = await asyncio.to_thread(receiver.wait_for, "/ok", 1)
    payload = verify(first)
    assert payload["event"] == "UserLoggedIn"
    assert payload["data"]["session_id"]
    me = (await dashboard.http.get("/api/v2/users/me")).json()
    assert payload["actor"] == me["id"]  # from the stored event's audit metadata

    # The hanging target holds its request open for a minute; the relay and the other
    # deliveries go on meanwhile: a second event reaches /ok while /hang has not answered.
    await asyncio.to_thread(receiver.wait_for, "/hang", 1)
    await log_in(dashboard)
    await asyncio.to_thread(receiver.wait_for, "/ok", 2)
    assert all(row["status"] != "delivered" for row in await log_of(dashboard, hang))

    rows = await wait_log(
        dashboard, hang, lambda rows: len(rows) == 2 and all(r["attempts"] >= 2 for r in rows)
    )
    assert {row["last_error"] for row in rows} == {"timed out after 1 s"}
    assert {row["status"] for row in rows} <= {"retrying", "sending", "failed"}

    rows = await wait_log(
        dashboard,
        flaky,
        lambda rows: len(rows) == 2 and all(r["status"] == "delivered" for r in rows),
    )
    # /flaky answers 500 to its first two requests: one attempt of each delivery failed.
    assert [row["attempts"] for row in rows] == [2, 2]
    assert sorted(row["response_status"] for row in rows) == [200, 200]
    calls = receiver.on("/flaky")
    assert len(calls) == 4
    assert {verify(call)["id"] for call in calls} == {row["id"] for row in rows}
    rows = await log_of(dashboard, ok)
    assert [(r["status"], r["attempts"]) for r in rows] == [("delivered", 1), ("delivered", 1)]

    tested = await dashboard.http.post(f"/api/v2/webhooks/{ok}/test")
    assert tested.status_code == 202
    [*_, last] = await asyncio.to_thread(receiver.wait_for, "/ok", 3)
    assert verify(last)["id"] == tested.json()["delivery_id"]
