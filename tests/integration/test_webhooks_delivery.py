"""Webhook deliveries in process: the relay's handler queues them, DeliverWebhook sends them to
a real HTTP receiver on loopback, retries follow the backoff, and the log says what happened."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from redis import Redis

from app.main import create_app
from app.monitoring.application.webhooks_delivery import (
    DeliverWebhook,
    PruneDeliveries,
    RequeueDueDeliveries,
)
from app.servers.domain.events import ServerStarted
from app.shared.jobqueue import json_queue
from app.shared.nodes import WEBHOOK_QUEUE
from tests.agent import in_process
from tests.conftest import bearer, login, register

SECRET = "a-shared-secret-of-32-characters"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records every POST; /ok answers 200, /flaky 500 `failures` times first, /hang sleeps."""

    base: str = ""
    received: list[Received] = field(default_factory=list)
    failures: int = 2
    hang_seconds: float = 5.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def wait_for(self, path: str, count: int = 1, timeout: float = 60) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(found := self.on(path)) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{path}: {len(self.on(path))} of {count} requests arrived")


@contextmanager
def serve_receiver() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with receiver.lock:
                receiver.received.append(Received(self.path, dict(self.headers), body))
                seen = sum(1 for r in receiver.received if r.path == self.path)
            if self.path == "/hang":
                time.sleep(receiver.hang_seconds)
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            elif self.path == "/flaky" and seen <= receiver.failures:
                self.send_response(500)
            else:
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def verify(received: Received, secret: str = SECRET) -> dict:
    """The receiver's side of GitHub's scheme: HMAC-SHA256 of the exact body bytes."""
    expected = "sha256=" + hmac.new(secret.encode(), received.body, hashlib.sha256).hexdigest()
    headers = {k.lower(): v for k, v in received.headers.items()}
    assert hmac.compare_digest(headers["x-mcdash-signature-256"], expected)
    assert headers["user-agent"] == "mcdash-webhooks"
    assert headers["content-type"] == "application/json"
    payload = json.loads(received.body)
    assert headers["x-mcdash-event"] == payload.get("event", headers["x-mcdash-event"])
    return payload


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve_receiver() as served:
        yield served


@pytest.fixture
async def api(settings, clean):
    configured = settings.model_copy(
        update={
            "webhooks_allow_private_addresses": True,
            "webhook_timeout_seconds": 0.5,
            "webhook_max_attempts": 3,
            "webhook_retry_base_seconds": 0.1,
        }
    )
    app = create_app(configured)
    async with in_process(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            await register(http, "admin1")
            yield http, app, bearer(await login(http, "admin1"))


async def hook(http, headers, url, **body) -> dict:
    body = {"url": url, "event_types": ["ServerStarted"], "secret": SECRET, **body}
    response = await http.post("/api/v2/webhooks/", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def deliveries(http, headers, webhook_id) -> list[dict]:
    response = await http.get(f"/api/v2/webhooks/{webhook_id}/deliveries", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def queued(redis_url: str) -> list[str]:
    redis = Redis.from_url(redis_url)
    try:
        return [job.args[0] for job in json_queue(WEBHOOK_QUEUE, redis).get_jobs()]
    finally:
        redis.close()


def started(server_id: uuid.UUID, at: datetime | None = None) -> ServerStarted:
    when = at or datetime.now(UTC)
    return ServerStarted(occurred_at=when, server_id=server_id, pid=42, detected_by="done-line")


async def test_an_event_is_queued_once_then_delivered_signed(api, receiver, settings):
    http, app, admin = api
    webhook = await hook(http, admin, f"{receiver.base}/ok")
    discord = await hook(http, admin, f"{receiver.base}/discord", format="discord")
    event = started(uuid.uuid4())
    await app.state.bus.publish(event)
    await app.state.bus.publish(event)  # the relay redelivers: at least once

    rows = await deliveries(http, admin, webhook["id"])
    assert [(row["status"], row["attempts"]) for row in rows] == [("pending", 0)]
    jobs = queued(settings.redis_url)
    assert rows[0]["id"] in jobs
    assert len(jobs) == 2

    for delivery_id in jobs:
        await app.state.bus.handle(DeliverWebhook(delivery_id=uuid.UUID(delivery_id)))
    payload = verify(receiver.wait_for("/ok")[0])
    assert payload["event"] == "ServerStarted"
    assert payload["id"] == rows[0]["id"]
    assert payload["server_id"] == str(event.server_id)
    assert payload["data"]["pid"] == 42
    shaped = verify(receiver.wait_for("/discord")[0])
    assert "ServerStarted" in shaped["content"]
    assert shaped["embeds"][0]["title"] == "ServerStarted"
    [row] = await deliveries(http, admin, webhook["id"])
    assert (row["status"], row["attempts"], row["response_status"]) == ("delivered", 1, 200)
    assert row["delivered_at"] is not None
    again = await app.state.bus.handle(DeliverWebhook(delivery_id=uuid.UUID(row["id"])))
    assert again == "not due"
    assert len(receiver.on("/ok")) == 1
    assert len(discord["secret"]) == len(SECRET)


async def test_a_failing_target_is_retried_with_backoff_until_it_answers(api, receiver):
    http, app, admin = api
    webhook = await hook(http, admin, f"{receiver.base}/flaky")
    await app.state.bus.publish(started(uuid.uuid4()))
    [row] = await deliveries(http, admin, webhook["id"])
    bus = app.state.bus
    outcomes = [await bus.handle(DeliverWebhook(delivery_id=uuid.UUID(row["id"])))]
    [row] = await deliveries(http, admin, webhook["id"])
    assert (row["status"], row["response_status"], row["last_error"]) == (
        "retrying",
        500,
        "HTTP 500",
    )
    first_wait = datetime.fromisoformat(row["next_attempt_at"]) - datetime.fromisoformat(
        row["last_attempt_at"]
    )
    assert timedelta(seconds=0.05) <= first_wait <= timedelta(seconds=1)
    while outcomes[-1] != "delivered":
        time.sleep(0.25)  # past the backoff (0.1 s, then 0.2 s)
        assert await bus.handle(RequeueDueDeliveries()) == 1
        outcomes.append(await bus.handle(DeliverWebhook(delivery_id=uuid.UUID(row["id"]))))
    assert outcomes == ["retrying", "retrying", "delivered"]
    [row] = await deliveries(http, admin, webhook["id"])
    assert (row["status"], row["attempts"], row["last_error"]) == ("delivered", 3, None)
    assert len(receiver.on("/flaky")) == 3
    assert all(verify(r)["id"] == row["id"] for r in receiver.on("/flaky"))


async def test_a_target_failing_every_attempt_ends_failed(api, receiver):
    http, app, admin = api
    receiver.failures = 100
    webhook = await hook(http, admin, f"{receiver.base}/flaky")
    await app.state.bus.publish(started(uuid.uuid4()))
    [row] = await deliveries(http, admin, webhook["id"])
    outcomes = []
    for _ in range(3):
        outcomes.append(
            await app.state.bus.handle(DeliverWebhook(delivery_id=uuid.UUID(row["id"])))
        )
    assert outcomes == ["retrying", "retrying", "failed"]
    [row] = await deliveries(http, admin, webhook["id"])
    assert (row["status"], row["attempts"], row["next_attempt_at"]) == ("failed", 3, None)
    assert await app.state.bus.handle(RequeueDueDeliveries()) == 0


async def test_a_hanging_target_times_out_and_is_retried(api, receiver):
    http, app, admin = api
    webhook = await hook(http, admin, f"{receiver.base}/hang")
    await app.state.bus.publish(started(uuid.uuid4()))
    [row] = await deliveries(http, admin, webhook["id"])
    outcome = await app.state.bus.handle(DeliverWebhook(delivery_id=uuid.UUID(row["id"])))
    assert outcome == "retrying"
    [row] = await deliveries(http, admin, webhook["id"])
    assert row["last_error"] == "timed out after 0.5 s"
    assert row["response_status"] is None


async def test_redirects_are_not_followed(api, receiver):
    http, app, admin = api
    webhook = await hook(http, admin, f"{receiver.base}/redirect")
    await app.state.bus.publish(started(uuid.uuid4()))
    [row] = await deliveries(http, admin, webhook["id"])
    await app.state.bus.handle(DeliverWebhook(delivery_id=uuid.UUID(row["id"])))
    [row] = await deliveries(http, admin, webhook["id"])
    assert (row["status"], row["response_status"]) == ("retrying", 302)
    assert row["last_error"] == "redirects are not followed"


async def test_the_address_is_checked_again_at_delivery(api, receiver, db):
    """A host that resolved to a public address at registration may resolve to loopback later
    (DNS rebinding): with private addresses refused, the attempt is not made."""
    http, app, admin = api
    webhook = await hook(http, admin, f"{receiver.base}/ok")
    app.state.container.settings.webhooks_allow_private_addresses = False
    try:
        await app.state.bus.publish(started(uuid.uuid4()))
        [row] = await deliveries(http, admin, webhook["id"])
        await app.state.bus.handle(DeliverWebhook(delivery_id=uuid.UUID(row["id"])))
    finally:
        app.state.container.settings.webhooks_allow_private_addresses = True
    [row] = await deliveries(http, admin, webhook["id"])
    assert row["status"] == "retrying"
    assert "loopback" in row["last_error"]
    assert receiver.on("/ok") == []


async def test_test_delivery_and_filters(api, receiver):
    http, app, admin = api
    other_server = uuid.uuid4()
    filtered = await hook(http, admin, f"{receiver.base}/ok")
    await http.patch(
        f"/api/v2/webhooks/{filtered['id']}",
        headers=admin,
        json={"event_types": ["ServerStopped"]},
    )
    paused = await hook(http, admin, f"{receiver.base}/ok", active=False)
    await app.state.bus.publish(started(other_server))
    assert await deliveries(http, admin, filtered["id"]) == []
    assert await deliveries(http, admin, paused["id"]) == []

    response = await http.post(f"/api/v2/webhooks/{filtered['id']}/test", headers=admin)
    assert response.status_code == 202, response.text
    delivery_id = response.json()["delivery_id"]
    await app.state.bus.handle(DeliverWebhook(delivery_id=uuid.UUID(delivery_id)))
    payload = verify(receiver.wait_for("/ok")[0])
    assert (payload["event"], payload["id"]) == ("WebhookTest", delivery_id)
    [row] = await deliveries(http, admin, filtered["id"])
    assert (row["event_type"], row["status"]) == ("WebhookTest", "delivered")


async def test_old_deliveries_are_pruned(api, receiver, db):
    http, app, admin = api
    webhook = await hook(http, admin, f"{receiver.base}/ok")
    for _ in range(3):
        await http.post(f"/api/v2/webhooks/{webhook['id']}/test", headers=admin)
    await db.execute(
        "UPDATE webhook_deliveries SET created_at = now() - interval '31 days' "
        "WHERE id IN (SELECT id FROM webhook_deliveries LIMIT 2)"
    )
    assert await app.state.bus.handle(PruneDeliveries(batch=1)) == 2
    assert len(await deliveries(http, admin, webhook["id"])) == 1
