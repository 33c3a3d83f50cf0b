"""The permissions cache in Redis can never raise a user's role above the database."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json

import httpx
import pytest
from redis.asyncio import Redis

from app.main import create_app
from app.users.infrastructure.security import derive_key
from tests.agent import in_process
from tests.conftest import bearer, login, register
from tests.integration.test_auth_api import SECRET, assert_problem

pytestmark = pytest.mark.usefixtures("clean")

ADMIN_STATE = {"username": "mallory", "role": "admin", "active": True, "approved": True}


def signed(key: bytes, user_id: str, state: dict[str, object]) -> str:
    body = json.dumps(state, sort_keys=True, separators=(",", ":"))
    signature = hmac.new(key, f"{user_id}\n{body}".encode(), hashlib.sha256).hexdigest()
    return f"{signature}.{body}"


@pytest.fixture
async def redis(redis_url):
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def users(client, *, relay: bool = True):
    """An admin and an approved ordinary user `mallory`, both with cached permissions."""
    await register(client, "root_admin")
    admin = bearer(await login(client, "root_admin"))
    mallory_id = (await register(client, "mallory")).json()["id"]
    await client.patch(f"/api/v2/users/{mallory_id}/approve", headers=admin)
    if relay:
        await relay_caught_up(client, admin)
    mallory = bearer(await login(client, "mallory"))
    assert (await client.get("/api/v2/users/me", headers=mallory)).json()["role"] == "user"
    return admin, mallory, mallory_id


async def relay_caught_up(client, admin) -> None:
    """Commands do not wait for the relay, whose handlers drop the cached permissions of a user
    whose access changed (again): let it pass before an entry is cached to be looked at."""
    for _ in range(100):
        sync = await client.get("/api/v2/admin/system/sync", headers=admin)
        if sync.status_code != 200 or sync.json()["events"]["unprocessed"] == 0:
            return
        await asyncio.sleep(0.05)


FORGERIES = {
    "unsigned-admin-json": lambda user_id, admin_id, entries: json.dumps(ADMIN_STATE),
    "signed-with-another-key": lambda user_id, admin_id, entries: signed(
        derive_key("another-secret-entirely-0123456789", "permissions-cache"),
        user_id,
        ADMIN_STATE,
    ),
    "signed-with-the-jwt-key-itself": lambda user_id, admin_id, entries: signed(
        SECRET.encode(), user_id, ADMIN_STATE
    ),
    "admins-valid-entry-moved-to-this-user": lambda user_id, admin_id, entries: entries[admin_id],
    "valid-signature-with-admin-body-swapped-in": lambda user_id, admin_id, entries: (
        entries[user_id].partition(".")[0]
        + "."
        + json.dumps(ADMIN_STATE, sort_keys=True, separators=(",", ":"))
    ),
    "signature-only-no-body": lambda user_id, admin_id, entries: entries[user_id].partition(".")[0],
    "garbage": lambda user_id, admin_id, entries: "\x00not-json{",
}


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
async def test_a_forged_cache_entry_never_grants_more_than_the_database(client, redis, forge):
    admin, mallory, mallory_id = await users(client)
    admin_id = (await client.get("/api/v2/users/me", headers=admin)).json()["id"]
    entries = {
        admin_id: await redis.get(f"user:{admin_id}:perms"),
        mallory_id: await redis.get(f"user:{mallory_id}:perms"),
    }
    assert all(entries.values()), "both users' permissions should be cached by now"
    await redis.set(f"user:{mallory_id}:perms", forge(mallory_id, admin_id, entries))

    assert_problem(await client.get("/api/v2/admin/users", headers=mallory), 403)
    me = (await client.get("/api/v2/users/me", headers=mallory)).json()
    assert me["role"] == "user"
    assert "admin:*" not in me["permissions"]
    promote = await client.patch(
        f"/api/v2/users/{mallory_id}/role", headers=mallory, json={"role": "admin"}
    )
    assert_problem(promote, 403)
    # The forged entry was replaced by the database's state, signed.
    assert await redis.get(f"user:{mallory_id}:perms") == entries[mallory_id]


async def test_a_forged_entry_cannot_revive_a_deactivated_user(client, redis):
    admin, mallory, mallory_id = await users(client)
    await client.patch(f"/api/v2/users/{mallory_id}/deactivate", headers=admin)
    assert_problem(await client.get("/api/v2/users/me", headers=mallory), 401)
    await redis.set(f"user:{mallory_id}:perms", json.dumps({**ADMIN_STATE, "role": "user"}))
    assert_problem(await client.get("/api/v2/users/me", headers=mallory), 401)


@pytest.fixture
async def no_relay_client(settings, clean):
    """An API whose event relay never runs: only the command handlers can clear the cache."""
    app = create_app(settings.model_copy(update={"relay_enabled": False}))
    async with in_process(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield http


async def test_access_changes_hold_at_once_with_the_relay_stopped(no_relay_client, db):
    client = no_relay_client
    admin, mallory, mallory_id = await users(client, relay=False)
    promoted = await client.patch(
        f"/api/v2/users/{mallory_id}/role", headers=admin, json={"role": "operator"}
    )
    assert promoted.status_code == 200, promoted.text
    assert (await client.get("/api/v2/users/", headers=mallory)).status_code == 200
    await client.patch(f"/api/v2/users/{mallory_id}/role", headers=admin, json={"role": "user"})
    assert_problem(await client.get("/api/v2/users/", headers=mallory), 403)

    await client.patch(f"/api/v2/users/{mallory_id}/deactivate", headers=admin)
    assert_problem(await client.get("/api/v2/users/me", headers=mallory), 401)
    assert await db.fetchval("SELECT count(*) FROM domain_events WHERE processed_at IS NULL") > 0
