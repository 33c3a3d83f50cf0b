"""The watch over open sockets' principals: which notices re-check which sockets, and how."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from app.shared.domain import Unauthorized
from app.shared.principals import (
    PrincipalWatch,
    WatchedSocket,
    session_ended_notice,
    user_changed_notice,
)
from app.shared.security import Permission, Principal, Role
from app.shared.websockets import still_allowed
from tests.fakes import FakePubSubHub, FakeSocketAuthenticator


def principal(
    user_id: uuid.UUID, session_id: uuid.UUID, role: Role = Role.ADMIN, **kw
) -> Principal:
    return Principal(user_id=user_id, username="u", role=role, session_id=session_id, **kw)


async def everything(_: Principal) -> bool:
    return True


CONSOLE = still_allowed(Permission.SERVER_CONSOLE, everything)


class World:
    def __init__(self, *, ttl: float = 900.0) -> None:
        self.hub = FakePubSubHub()
        self.auth = FakeSocketAuthenticator(ttl=ttl)
        self.watch = PrincipalWatch(self.hub, self.auth)  # type: ignore[arg-type]

    def open(self, token: str, who: Principal, allows=CONSOLE) -> WatchedSocket:
        self.auth.current[token] = who
        return self.watch.open(who, token, allows=allows, notices_before=self.watch.notices)

    async def notify(self, data: str) -> None:
        self.hub.publish(data)
        await settle()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.fixture
async def world():
    built = World()
    runner = asyncio.create_task(built.watch.run())
    await settle()
    yield built
    runner.cancel()
    await built.watch.aclose()


async def test_a_session_notice_checks_that_sessions_sockets_only(world):
    user, session, other_session = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    mine = world.open("t1", principal(user, session))
    theirs = world.open("t2", principal(user, other_session))
    world.auth.current["t1"] = Unauthorized("this session has been logged out")

    await world.notify(session_ended_notice(session))

    assert mine.ended.result() == (4401, "this session has been logged out")
    assert not theirs.ended.done()
    assert world.auth.calls == ["t1"]


async def test_a_user_notice_checks_every_socket_of_that_user(world):
    user, someone = uuid.uuid4(), uuid.uuid4()
    sockets = [world.open(f"t{n}", principal(user, uuid.uuid4())) for n in range(3)]
    bystander = world.open("other", principal(someone, uuid.uuid4()))
    for n in range(3):
        world.auth.current[f"t{n}"] = Unauthorized("this account can no longer sign in")

    await world.notify(user_changed_notice(user))

    assert [s.ended.result()[0] for s in sockets] == [4401] * 3
    assert not bystander.ended.done()
    assert "other" not in world.auth.calls


async def test_a_role_that_lost_the_permission_ends_the_socket_with_4403(world):
    user, session = uuid.uuid4(), uuid.uuid4()
    socket = world.open("t", principal(user, session))
    world.auth.current["t"] = principal(
        user, session, role=Role.USER, permissions=frozenset({Permission.SERVER_READ})
    )

    await world.notify(user_changed_notice(user))

    assert socket.ended.result() == (4403, "your role no longer has server:console")


async def test_a_server_no_longer_visible_ends_the_socket_with_4403(world):
    user, session = uuid.uuid4(), uuid.uuid4()

    async def admins_only(who: Principal) -> bool:
        return who.is_admin

    socket = world.open(
        "t", principal(user, session), allows=still_allowed(Permission.SERVER_CONSOLE, admins_only)
    )
    world.auth.current["t"] = principal(user, session, role=Role.USER)

    await world.notify(user_changed_notice(user))

    assert socket.ended.result() == (4403, "your role no longer lets you see this")


async def test_a_change_that_still_allows_keeps_the_socket_with_the_new_principal(world):
    user, session = uuid.uuid4(), uuid.uuid4()
    socket = world.open("t", principal(user, session, role=Role.OPERATOR))
    promoted = principal(user, session, role=Role.ADMIN)
    world.auth.current["t"] = promoted

    await world.notify(user_changed_notice(user))

    assert not socket.ended.done()
    assert socket.principal is promoted


async def test_a_check_that_cannot_complete_closes_the_socket(world):
    user, session = uuid.uuid4(), uuid.uuid4()
    socket = world.open("t", principal(user, session))
    world.auth.current["t"] = ConnectionError("redis is down")

    await world.notify(user_changed_notice(user))

    assert socket.ended.result()[0] == 1011


MALFORMED = {
    "not-json": "{nope",
    "a-json-list": json.dumps([1, 2]),
    "user-id-not-a-uuid": json.dumps({"user_id": "mallory"}),
    "user-id-a-number": json.dumps({"user_id": 7}),
    "empty-object": "{}",
    "nul-byte": '{"session_id": "\\u0000"}',
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_notices_check_nothing_and_stop_nothing(world, data):
    user, session = uuid.uuid4(), uuid.uuid4()
    socket = world.open("t", principal(user, session))

    await world.notify(data)
    await world.notify(user_changed_notice(user))

    assert world.auth.calls == ["t"]
    assert not socket.ended.done()


async def test_a_closed_socket_is_no_longer_checked(world):
    user, session = uuid.uuid4(), uuid.uuid4()
    socket = world.open("t", principal(user, session))
    world.watch.close(socket)

    await world.notify(user_changed_notice(user))

    assert world.auth.calls == []
    assert world.watch.sockets() == 0


async def test_a_socket_opened_across_a_notice_is_checked_again(world):
    user, session = uuid.uuid4(), uuid.uuid4()
    before = world.watch.notices
    await world.notify(user_changed_notice(user))  # arrives while the socket authenticates
    world.auth.current["t"] = Unauthorized("this account can no longer sign in")

    socket = world.watch.open(principal(user, session), "t", allows=CONSOLE, notices_before=before)
    await settle()

    assert socket.ended.result()[0] == 4401


async def test_falling_behind_on_notices_checks_every_socket(world):
    sockets = [world.open(f"t{n}", principal(uuid.uuid4(), uuid.uuid4())) for n in range(3)]
    [subscription] = world.hub.subscriptions
    subscription.overflowed.set()
    subscription.queue.put_nowait("{}")  # wakes the watch, which finds it overflowed

    await settle()

    assert sorted(world.auth.calls) == ["t0", "t1", "t2"]
    assert all(not s.ended.done() for s in sockets)
    assert len(world.hub.subscriptions) == 1
    assert world.hub.subscriptions[0] is not subscription


async def test_the_token_expiry_ends_the_socket():
    world = World(ttl=0.05)
    socket = world.open("t", principal(uuid.uuid4(), uuid.uuid4()))
    code, reason = await asyncio.wait_for(socket.ended, timeout=2)
    assert (code, reason) == (4401, "the access token has expired")


async def test_the_watch_outlives_redis_being_away_and_then_checks_every_socket():
    world = World()
    world.hub.failing_subscribes = 1
    socket = world.open("t", principal(uuid.uuid4(), uuid.uuid4()))
    world.auth.current["t"] = Unauthorized("this session has been logged out")
    runner = asyncio.create_task(world.watch.run())
    try:
        async with asyncio.timeout(5):
            code, _ = await socket.ended
        assert code == 4401
        assert len(world.hub.subscriptions) == 1
    finally:
        runner.cancel()
        await world.watch.aclose()
