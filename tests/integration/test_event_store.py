"""The unit of work, the event store and the relay against a real database."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import pytest

from app.bootstrap import bootstrap
from app.shared.context import actor_id_var, client_addr_var, request_id_var
from app.shared.domain import ConcurrencyConflict, Conflict
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
    return SqlUsersUnitOfWork(container.engine, container.codec)


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


async def test_failed_handler_leaves_event_for_the_next_drain(container, db):
    calls = 0

    async def flaky(event):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("projection database hiccup")

    container.bus.subscribe(UserRegistered, flaky)
    async with uow(container) as work:
        work.users.add(new_user("zoe"))
        await work.commit()
    await container.relay.drain()
    assert await db.fetchval("SELECT count(*) FROM domain_events WHERE processed_at IS NULL") == 1
    await container.relay.drain()
    assert calls == 2
    assert await db.fetchval("SELECT count(*) FROM domain_events WHERE processed_at IS NULL") == 0


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
            async with SqlUsersUnitOfWork(other.engine, other.codec) as work:
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
