"""The per-process principal cache: a second at most, dropped by session or user, no stale put."""

from __future__ import annotations

import time
import uuid

from app.shared.security import Principal, Role
from app.users.infrastructure.principal_cache import RecentPrincipals


def principal(user_id: uuid.UUID | None = None) -> Principal:
    return Principal(
        user_id=user_id or uuid.uuid4(), username="u", role=Role.USER, session_id=uuid.uuid4()
    )


def test_an_entry_is_served_until_its_ttl_passes():
    cache = RecentPrincipals(ttl=0.05)
    alice = principal()
    cache.put("t", alice, epoch=cache.epoch)
    assert cache.get("t") is alice
    time.sleep(0.06)
    assert cache.get("t") is None
    assert len(cache) == 0


def test_forgetting_a_session_or_a_user_drops_only_their_entries():
    cache = RecentPrincipals()
    user = uuid.uuid4()
    first, second, other = principal(user), principal(user), principal()
    for token, who in (("a", first), ("b", second), ("c", other)):
        cache.put(token, who, epoch=cache.epoch)
    cache.forget(session_id=first.session_id)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, second, other)
    cache.forget(user_id=user)
    assert (cache.get("b"), cache.get("c")) == (None, other)
    cache.forget()
    assert cache.get("c") is None


def test_an_answer_asked_before_a_drop_is_not_kept():
    cache = RecentPrincipals()
    epoch = cache.epoch  # an authentication starts asking Redis
    cache.forget(user_id=uuid.uuid4())  # meanwhile something changes
    cache.put("t", principal(), epoch=epoch)
    assert cache.get("t") is None


def test_the_cache_stays_bounded():
    cache = RecentPrincipals(size=3)
    for index in range(10):
        cache.put(str(index), principal(), epoch=cache.epoch)
    assert len(cache) == 3
    assert cache.get("9") is not None


def test_a_ttl_of_zero_serves_nothing():
    cache = RecentPrincipals(ttl=0)
    cache.put("t", principal(), epoch=cache.epoch)
    assert cache.get("t") is None
