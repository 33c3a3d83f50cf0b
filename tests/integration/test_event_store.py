"""The unit of work, the event store and the relay against a real database."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from app.bootstrap import bootstrap
from app.shared.context import (
    StoredEvent,
    actor_id_var,
    client_addr_var,
    request_id_var,
    stored_event,
)
from app.shared.domain import ConcurrencyConflict, Conflict
from app.shared.relay import EventRelay
from app.shared.security import Role
from app.users.domain.events import UserApproved, UserRegistered
from app.users.domain.model import User
from app.users.infrastructure.repositories import SqlUsersUnitOfWork

pytestmark = pytest.mark.usefixtures("clean")
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def new_user(name: str) -> User:
    return User.register(
        user_id=uuid.uuid4(),
        username=name,
        email=f"{name}@example.com",
        password_hash="x",
        full_name=None,
        first_user=False,
        now=NOW,
    )


@pytest.fixture
async def container(settings, clean):
    built = bootstrap(settings)
    yield built
    await built.close()


def uow(container) -> SqlUsersUnitOfWork:
    return SqlUsersUnitOfWork(container.infra.engine, container.infra.codec)


async def test_state_and_events_commit_together_with_audit_metadata(container, db):
    actor = uuid.uuid4()
    tokens = (
        request_id_var.set("req-42"),
        actor_id_var.set(actor),
        client_addr_var.set("10.1.2.3"),
    )
    try:
        async with uow(container) as work:
            user = new_user("ulla")
            work.users.add(user)
            await work.commit()
    finally:
        request_id_var.reset(tokens[0])
        actor_id_var.reset(tokens[1])
        client_addr_var.reset(tokens[2])
    row = await db.fetchrow("SELECT * FROM domain_events")
    assert row["aggregate_type"] == "user"
    assert row["aggregate_id"] == user.id
    assert row["event_version"] == 1
    assert row["position"] >= 1
    assert json.loads(row["metadata"]) == {
        "actor_id": str(actor),
        "client_addr": "10.1.2.3",
        "request_id": "req-42",
    }
    assert json.loads(row["event_data"])["role"] == "user"
    assert await db.fetchval("SELECT version FROM users WHERE id=$1", user.id) == 1


async def test_rollback_stores_neither_state_nor_events(container, db):
    async with uow(container) as work:
        work.users.add(new_user("vera"))
    assert await db.fetchval("SELECT count(*) FROM users") == 0
    assert await db.fetchval("SELECT count(*) FROM domain_events") == 0


async def test_concurrent_writers_one_wins_the_other_gets_a_conflict(container, db):
    async with uow(container) as work:
        user = new_user("walt")
        work.users.add(user)
        await work.commit()
    admin_a, admin_b = uuid.uuid4(), uuid.uuid4()
    async with uow(container) as first, uow(container) as second:
        a = await first.users.get(user.id)
        b = await second.users.get(user.id)
        assert a is not None
        assert b is not None
        a.approve(by=admin_a, now=NOW)
        b.change_role(Role.OPERATOR, by=admin_b, now=NOW)
        await first.commit()
        with pytest.raises(ConcurrencyConflict):
            await second.commit()
    row = await db.fetchrow("SELECT role, is_approved, version FROM users WHERE id=$1", user.id)
    assert (row["role"], row["is_approved"], row["version"]) == ("user", True, 2)
    versions = await db.fetch(
        "SELECT event_type, event_version FROM domain_events WHERE aggregate_id=$1 ORDER BY position",
        user.id,
    )
    assert [(r[0], r[1]) for r in versions] == [("UserRegistered", 1), ("UserApproved", 2)]


async def test_unique_constraint_race_is_a_conflict(container, db):
    async with uow(container) as first, uow(container) as second:
        first.users.add(new_user("xena"))
        second.users.add(new_user("xena"))
        await first.commit()
        with pytest.raises(Conflict):
            await second.commit()
    assert await db.fetchval("SELECT count(*) FROM users") == 1


async def test_relay_dispatches_in_order_and_marks_processed(container, db):
    seen: list[str] = []

    async def record(event):
        seen.append(f"{type(event).__name__}:{event.user_id}")

    container.bus.subscribe(UserRegistered, record)
    container.bus.subscribe(UserApproved, record)
    async with uow(container) as work:
        user = new_user("yuri")
        work.users.add(user)
        await work.commit()
    async with uow(container) as work:
        loaded = await work.users.get(user.id)
        loaded.approve(by=uuid.uuid4(), now=NOW)
        await work.commit()
    assert await container.relay.drain() == 2
    assert seen == [f"UserRegistered:{user.id}", f"UserApproved:{user.id}"]
    assert await db.fetchval("SELECT count(*) FROM domain_events WHERE processed_at IS NULL") == 0
    assert await container.relay.drain() == 0


def eager_relay(container, *, max_attempts: int = 3) -> EventRelay:
    """A relay that retries failed events on the very next drain."""
    return EventRelay(
        container.infra.engine,
        container.bus,
        container.infra.codec,
        max_attempts=max_attempts,
        retry_seconds=0.000001,
    )


async def test_failed_handler_leaves_event_for_the_next_drain(container, db):
    calls = 0

    async def flaky(event):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("projection database hiccup")

    container.bus.subscribe(UserRegistered, flaky)
    relay = eager_relay(container)
    async with uow(container) as work:
        work.users.add(new_user("zoe"))
        await work.commit()
    await relay.drain()
    row = await db.fetchrow("SELECT * FROM domain_events")
    assert row["processed_at"] is None
    assert (row["attempts"], row["dead_lettered_at"]) == (1, None)
    assert "projection database hiccup" in row["last_error"]
    assert row["last_failed_at"] is not None
    await relay.drain()
    assert calls == 2
    assert await db.fetchval("SELECT count(*) FROM domain_events WHERE processed_at IS NULL") == 0


async def test_a_failed_event_waits_before_its_retry(container, db):
    async def broken(event):
        raise RuntimeError("still broken")

    container.bus.subscribe(UserRegistered, broken)
    async with uow(container) as work:
        work.users.add(new_user("wendy"))
        await work.commit()
    assert await container.relay.drain() == 1
    # retried only once relay_retry_seconds x attempts have passed
    assert await container.relay.drain() == 0
    assert await db.fetchval("SELECT attempts FROM domain_events") == 1


def dead_letters(event_type: str, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "mcdash_domain_event_dead_letters_total", {"event_type": event_type, "reason": reason}
    )
    return value or 0.0


async def insert_event(db, event_type: str, data: dict) -> uuid.UUID:
    event_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO domain_events (id, aggregate_type, aggregate_id, event_type, event_data,"
        " event_version, occurred_at) VALUES ($1, 'user', $2, $3, $4, 1, now())",
        event_id,
        uuid.uuid4(),
        event_type,
        json.dumps(data),
    )
    return event_id


UNDECODABLE = {
    "user-id-not-a-uuid": {"user_id": "not-a-uuid", "approved_by": str(uuid.uuid4())},
    "required-field-missing": {"approved_by": str(uuid.uuid4())},
    "user-id-a-number": {"user_id": 12345, "approved_by": str(uuid.uuid4())},
}


@pytest.mark.parametrize("data", UNDECODABLE.values(), ids=UNDECODABLE.keys())
async def test_an_undecodable_event_is_a_dead_letter_and_the_rest_go_on(container, db, data):
    seen: list[uuid.UUID] = []

    async def record(event):
        seen.append(event.user_id)

    container.bus.subscribe(UserRegistered, record)
    before = dead_letters("UserApproved", "undecodable")
    bad = await insert_event(db, "UserApproved", data)
    async with uow(container) as work:
        behind = new_user("xena")
        work.users.add(behind)
        await work.commit()

    assert await container.relay.drain() == 2
    assert seen == [behind.id]
    row = await db.fetchrow("SELECT * FROM domain_events WHERE id=$1", bad)
    assert row["processed_at"] is None
    assert row["dead_lettered_at"] is not None
    assert row["attempts"] == 1
    assert row["last_error"].startswith("cannot decode")
    assert dead_letters("UserApproved", "undecodable") == before + 1
    # skipped from now on
    assert await container.relay.drain() == 0


async def test_a_handler_failing_every_attempt_becomes_a_dead_letter(container, db):
    relay = eager_relay(container, max_attempts=3)
    delivered: list[str] = []

    async def broken(event):
        if event.username == "poison":
            raise RuntimeError("projection refuses poison")
        delivered.append(event.username)

    container.bus.subscribe(UserRegistered, broken)
    before = dead_letters("UserRegistered", "handler-failed")
    for name in ("poison", "after_one", "after_two"):
        async with uow(container) as work:
            work.users.add(new_user(name))
            await work.commit()

    await relay.drain()
    assert delivered == ["after_one", "after_two"]
    await relay.drain()
    await relay.drain()
    poison = await db.fetchrow(
        "SELECT * FROM domain_events WHERE event_data->>'username' = 'poison'"
    )
    assert poison["attempts"] == 3
    assert poison["dead_lettered_at"] is not None
    assert "projection refuses poison" in poison["last_error"]
    assert dead_letters("UserRegistered", "handler-failed") == before + 1
    assert await relay.drain() == 0
    async with uow(container) as work:
        work.users.add(new_user("later"))
        await work.commit()
    assert await relay.drain() == 1
    assert delivered == ["after_one", "after_two", "later"]


async def test_running_relay_is_woken_by_notify_from_another_connection(container, db):
    delivered = asyncio.Event()

    async def mark(event):
        delivered.set()

    container.bus.subscribe(UserRegistered, mark)
    relay = asyncio.create_task(container.relay.run())
    try:
        await asyncio.sleep(0.2)
        other = bootstrap(container.settings)
        try:
            async with SqlUsersUnitOfWork(other.infra.engine, other.infra.codec) as work:
                work.users.add(new_user("amos"))
                await work.commit()
        finally:
            await other.close()
        await asyncio.wait_for(delivered.wait(), timeout=0.9)
    finally:
        relay.cancel()
        with pytest.raises(asyncio.CancelledError):
            await relay


async def test_unknown_event_types_are_skipped_not_retried_forever(container, db):
    await db.execute(
        "INSERT INTO domain_events (id, aggregate_type, aggregate_id, event_type, event_data,"
        " event_version, occurred_at) VALUES ($1, 'x', $2, 'FromTheFuture', '{}', 1, now())",
        uuid.uuid4(),
        uuid.uuid4(),
    )
    assert await container.relay.drain() == 1
    assert await db.fetchval("SELECT count(*) FROM domain_events WHERE processed_at IS NULL") == 0


async def test_handlers_see_the_stored_event_they_are_given_and_no_other(container, db):
    """The relay says which row it dispatches (id, position, audit metadata), so handlers can
    key on it; an event a handler publishes itself is not mistaken for that row."""
    seen: list[object] = []

    async def record(event):
        seen.append(stored_event(event.event_type(), event.user_id))
        seen.append(stored_event("UserApproved", event.user_id))

    container.bus.subscribe(UserRegistered, record)
    actor = uuid.uuid4()
    actor_id_var.set(actor)
    async with uow(container) as work:
        user = new_user("zoe")
        work.users.add(user)
        await work.commit()
    assert await container.relay.drain() == 1
    row = await db.fetchrow("SELECT id, position FROM domain_events WHERE aggregate_id=$1", user.id)
    stored, other = seen
    assert isinstance(stored, StoredEvent)
    assert (stored.id, stored.position) == (row["id"], row["position"])
    assert stored.metadata["actor_id"] == str(actor)
    assert other is None
    assert stored_event("UserRegistered", user.id) is None  # outside the dispatch
