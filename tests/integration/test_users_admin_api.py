"""Approval, roles, deactivation and user listings, and who may do each."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.conftest import PASSWORD, bearer, login, register
from tests.integration.test_auth_api import assert_problem

pytestmark = pytest.mark.usefixtures("clean")


async def admin_and_user(client):
    await register(client, "root_admin")
    admin = bearer(await login(client, "root_admin"))
    user_id = (await register(client, "pat")).json()["id"]
    return admin, user_id


async def wait_for_relay(db, timeout: float = 5.0) -> None:
    """Event handlers (cache invalidation) run on the relay; wait until it has caught up."""
    deadline = asyncio.get_running_loop().time() + timeout
    while await db.fetchval("SELECT count(*) FROM domain_events WHERE processed_at IS NULL"):
        assert asyncio.get_running_loop().time() < deadline, "relay did not catch up"
        await asyncio.sleep(0.02)


async def test_admin_approves_user_who_can_then_log_in(client, db):
    admin, user_id = await admin_and_user(client)
    approved = await client.patch(f"/api/v2/users/{user_id}/approve", headers=admin)
    assert approved.status_code == 200, approved.text
    assert approved.json()["is_approved"] is True
    tokens = await login(client, "pat")
    assert (await client.get("/api/v2/users/me", headers=bearer(tokens))).json()["role"] == "user"
    twice = await client.patch(f"/api/v2/users/{user_id}/approve", headers=admin)
    assert_problem(twice, 409)
    event = await db.fetchrow(
        "SELECT event_data, metadata FROM domain_events WHERE event_type='UserApproved'"
    )
    assert event is not None
    assert '"approved_by"' in event["event_data"]
    assert '"actor_id"' in event["metadata"]
    assert '"request_id"' in event["metadata"]


async def test_admin_cannot_approve_or_deactivate_themselves(client):
    await register(client, "solo")
    tokens = await login(client, "solo")
    me = (await client.get("/api/v2/users/me", headers=bearer(tokens))).json()["id"]
    assert_problem(await client.patch(f"/api/v2/users/{me}/approve", headers=bearer(tokens)), 403)
    deactivate = await client.patch(f"/api/v2/users/{me}/deactivate", headers=bearer(tokens))
    assert_problem(deactivate, 409)
    demote = await client.patch(
        f"/api/v2/users/{me}/role", headers=bearer(tokens), json={"role": "user"}
    )
    assert "last active admin" in assert_problem(demote, 409)["detail"]


async def test_non_admins_cannot_call_admin_routes(client, db):
    admin, user_id = await admin_and_user(client)
    await client.patch(f"/api/v2/users/{user_id}/approve", headers=admin)
    user = bearer(await login(client, "pat"))
    other_id = (await register(client, "quinn")).json()["id"]
    for method, path, body in (
        ("GET", "/api/v2/admin/users", None),
        ("GET", "/api/v2/users/", None),
        ("GET", f"/api/v2/users/{other_id}", None),
        ("PATCH", f"/api/v2/users/{other_id}/approve", None),
        ("PATCH", f"/api/v2/users/{user_id}/approve", None),
        ("PATCH", f"/api/v2/users/{user_id}/role", {"role": "admin"}),
        ("PATCH", f"/api/v2/users/{other_id}/deactivate", None),
        ("PATCH", f"/api/v2/users/{other_id}/reactivate", None),
    ):
        response = await client.request(method, path, headers=user, json=body)
        assert_problem(response, 403, "forbidden")
    assert await db.fetchval("SELECT role FROM users WHERE username='pat'") == "user"
    assert await db.fetchval("SELECT is_approved FROM users WHERE username='quinn'") is False
    own = await client.get(f"/api/v2/users/{user_id}", headers=user)
    assert own.status_code == 200


async def test_role_change_applies_to_existing_tokens(client, db):
    admin, user_id = await admin_and_user(client)
    await client.patch(f"/api/v2/users/{user_id}/approve", headers=admin)
    user = bearer(await login(client, "pat"))
    assert_problem(await client.get("/api/v2/users/", headers=user), 403)
    changed = await client.patch(
        f"/api/v2/users/{user_id}/role", headers=admin, json={"role": "operator"}
    )
    assert changed.json()["role"] == "operator"
    await wait_for_relay(db)
    listing = await client.get("/api/v2/users/", headers=user)
    assert listing.status_code == 200
    assert_problem(await client.get("/api/v2/admin/users", headers=user), 403)
    bad = await client.patch(f"/api/v2/users/{user_id}/role", headers=admin, json={"role": "god"})
    assert_problem(bad, 422)
    same = await client.patch(
        f"/api/v2/users/{user_id}/role", headers=admin, json={"role": "operator"}
    )
    assert_problem(same, 409)


async def test_deactivation_locks_out_immediately_and_reactivation_restores(client, db):
    admin, user_id = await admin_and_user(client)
    await client.patch(f"/api/v2/users/{user_id}/approve", headers=admin)
    tokens = await login(client, "pat")
    assert (await client.get("/api/v2/users/me", headers=bearer(tokens))).status_code == 200
    off = await client.patch(f"/api/v2/users/{user_id}/deactivate", headers=admin)
    assert off.json()["is_active"] is False
    await wait_for_relay(db)
    assert_problem(await client.get("/api/v2/users/me", headers=bearer(tokens)), 401)
    refresh = await client.post(
        "/api/v2/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert_problem(refresh, 401)
    login_denied = await client.post(
        "/api/v2/auth/login", json={"username": "pat", "password": PASSWORD}
    )
    assert "reason" not in assert_problem(login_denied, 401)
    on = await client.patch(f"/api/v2/users/{user_id}/reactivate", headers=admin)
    assert on.json()["is_active"] is True
    await login(client, "pat")


async def test_admin_lists_and_filters_users(client):
    admin, _ = await admin_and_user(client)
    for name in ("zed_one", "zed_two", "zed_three"):
        await register(client, name)
    page = await client.get("/api/v2/admin/users?limit=2&page=1", headers=admin)
    assert page.status_code == 200
    assert page.json()["total"] == 5
    assert len(page.json()["items"]) == 2
    waiting = await client.get("/api/v2/admin/users?is_approved=false&search=zed", headers=admin)
    assert {u["username"] for u in waiting.json()["items"]} == {"zed_one", "zed_two", "zed_three"}
    wildcard = await client.get("/api/v2/admin/users?search=%25", headers=admin)
    assert wildcard.json()["total"] == 0
    sqlish = await client.get(
        "/api/v2/admin/users", params={"search": "' OR 1=1 --"}, headers=admin
    )
    assert sqlish.json()["total"] == 0
    admins = await client.get("/api/v2/users/?role=admin", headers=admin)
    assert [u["username"] for u in admins.json()["items"]] == ["root_admin"]
    for query in ("limit=0", "limit=101", "page=0", "role=god", "is_active=maybe"):
        assert_problem(await client.get(f"/api/v2/admin/users?{query}", headers=admin), 422)


async def test_unknown_and_malformed_user_ids(client):
    admin, _ = await admin_and_user(client)
    missing = await client.patch(f"/api/v2/users/{uuid.uuid4()}/approve", headers=admin)
    assert_problem(missing, 404, "not-found")
    assert_problem(await client.get("/api/v2/users/not-a-uuid", headers=admin), 422)
    assert_problem(await client.get(f"/api/v2/users/{uuid.uuid4()}", headers=admin), 404)
