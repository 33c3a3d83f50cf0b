"""Registration, login, refresh and logout over HTTP, with the bad input each must refuse."""

from __future__ import annotations

import time
from typing import Any

import pytest
from jose import jwt

from tests.conftest import PASSWORD, bearer, login, register

pytestmark = pytest.mark.usefixtures("clean")
SECRET = "integration-test-secret-0123456789"


def assert_problem(response: Any, status: int, slug: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    if slug:
        assert body["type"] == f"urn:mcdash:problem:{slug}"
    assert "Traceback" not in response.text
    return body


async def count(db, sql: str, *args: Any) -> int:
    return int(await db.fetchval(sql, *args))


async def test_first_user_is_approved_admin_later_users_wait(client, db):
    first = await register(client, "alex", full_name="Alex Ädmin 🎮")
    assert first.status_code == 201, first.text
    assert first.json()["role"] == "admin"
    assert first.json()["is_approved"] is True
    assert first.json()["full_name"] == "Alex Ädmin 🎮"
    second = await register(client, "bea")
    assert second.status_code == 201
    assert (second.json()["role"], second.json()["is_approved"]) == ("user", False)
    denied = await client.post("/api/v2/auth/login", json={"username": "bea", "password": PASSWORD})
    body = assert_problem(denied, 401, "unauthorized")
    assert "waiting for approval" in body["detail"]
    assert "reason" not in body
    assert (
        await count(db, "SELECT count(*) FROM domain_events WHERE event_type='UserRegistered'") == 2
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", "ab"),
        ("username", "x" * 51),
        ("username", "stéve"),
        ("username", "robert'); DROP TABLE users;--"),
        ("username", "名前"),
        ("email", "not-an-email"),
        ("email", "a@b"),
        ("email", "x" * 250 + "@example.com"),
        ("email", "bob@exa mple.com"),
        ("password", "short1A"),
        ("password", "a" * 1000),
        ("password", "alllowercaseletters"),
        ("password", "password123"),
        ("full_name", "bad\x00name"),
    ],
    ids=[
        "username-too-short",
        "username-too-long",
        "username-unicode",
        "username-sql",
        "username-cjk",
        "email-malformed",
        "email-no-tld",
        "email-too-long",
        "email-space",
        "password-short",
        "password-1000-chars",
        "password-one-class",
        "password-common",
        "full-name-nul",
    ],
)
async def test_registration_refuses_bad_input_and_stores_nothing(client, db, field, value):
    body = {"username": "validname", "email": "valid@example.com", "password": PASSWORD}
    body[field] = value
    response = await client.post("/api/v2/auth/register", json=body)
    problem = assert_problem(response, 422)
    assert field in response.text
    assert problem["detail"]
    assert await count(db, "SELECT count(*) FROM users") == 0
    assert await count(db, "SELECT count(*) FROM domain_events") == 0


@pytest.mark.parametrize(
    "body",
    [
        {"username": "validname", "email": "v@example.com", "password": PASSWORD, "role": "admin"},
        {"username": 123, "email": "v@example.com", "password": PASSWORD},
        {"username": "validname", "email": ["v@example.com"], "password": PASSWORD},
        {"username": "validname", "email": "v@example.com"},
        {"username": "validname", "email": "v@example.com", "password": True},
    ],
    ids=["unknown-field", "int-username", "list-email", "missing-password", "bool-password"],
)
async def test_registration_refuses_wrong_shapes(client, db, body):
    assert_problem(await client.post("/api/v2/auth/register", json=body), 422, "invalid-input")
    assert await count(db, "SELECT count(*) FROM users") == 0


async def test_malformed_json_is_a_problem(client):
    response = await client.post(
        "/api/v2/auth/register", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(response, 422)


async def test_duplicate_username_or_email_conflicts(client, db):
    assert (await register(client, "casey")).status_code == 201
    dup_name = await client.post(
        "/api/v2/auth/register",
        json={"username": "CASEY", "email": "other@example.com", "password": PASSWORD},
    )
    assert assert_problem(dup_name, 409, "conflict")["field"] == "username"
    dup_mail = await client.post(
        "/api/v2/auth/register",
        json={"username": "other", "email": "Casey@Example.com", "password": PASSWORD},
    )
    assert assert_problem(dup_mail, 409)["field"] == "email"
    assert await count(db, "SELECT count(*) FROM users") == 1


async def test_sql_and_unicode_in_login_fields_are_just_wrong_credentials(client):
    await register(client, "dana")
    for username in ("dana' OR '1'='1", 'dana"; --', "ダナ", "dana\u202e"):
        response = await client.post(
            "/api/v2/auth/login", json={"username": username, "password": "' OR 1=1 --"}
        )
        assert_problem(response, 401, "unauthorized")


async def test_login_refresh_me_logout_flow_records_events(client, db):
    await register(client, "erin")
    tokens = await login(client, "erin")
    claims = jwt.get_unverified_claims(tokens["access_token"])
    assert claims["role"] == "admin"
    assert "admin:*" in claims["permissions"]
    assert claims["type"] == "access"
    me = await client.get("/api/v2/users/me", headers=bearer(tokens))
    assert me.status_code == 200
    assert me.json()["username"] == "erin"
    assert "server:write" in me.json()["permissions"]

    rotated = await client.post(
        "/api/v2/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["refresh_token"] != tokens["refresh_token"]
    assert (await client.get("/api/v2/users/me", headers=bearer(new))).status_code == 200

    assert (await client.post("/api/v2/auth/logout", headers=bearer(new))).status_code == 204
    after = await client.get("/api/v2/users/me", headers=bearer(new))
    assert assert_problem(after, 401)["reason"] == "session-revoked"
    again = await client.post("/api/v2/auth/refresh", json={"refresh_token": new["refresh_token"]})
    assert_problem(again, 401)
    types = [r[0] for r in await db.fetch("SELECT event_type FROM domain_events ORDER BY position")]
    assert types == ["UserRegistered", "UserLoggedIn", "UserLoggedOut"]


async def test_reused_refresh_token_revokes_the_family(client, db):
    await register(client, "finn")
    tokens = await login(client, "finn")
    first = await client.post(
        "/api/v2/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    newer = first.json()
    reuse = await client.post(
        "/api/v2/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert assert_problem(reuse, 401)["reason"] == "token-reused"
    blocked = await client.post(
        "/api/v2/auth/refresh", json={"refresh_token": newer["refresh_token"]}
    )
    assert_problem(blocked, 401)
    assert_problem(await client.get("/api/v2/users/me", headers=bearer(newer)), 401)
    revoked = await count(db, "SELECT count(*) FROM refresh_tokens WHERE revoked_at IS NOT NULL")
    assert revoked == 2
    assert (
        await count(db, "SELECT count(*) FROM domain_events WHERE event_type='UserSessionsRevoked'")
        == 1
    )


def _forge(claims: dict[str, Any], secret: str = SECRET) -> str:
    now = int(time.time())
    base = {"iss": "mcdash", "iat": now, "exp": now + 600}
    return jwt.encode({**base, **claims}, secret, algorithm="HS256")


async def test_bad_access_tokens_are_refused(client):
    await register(client, "gale")
    tokens = await login(client, "gale")
    claims = jwt.get_unverified_claims(tokens["access_token"])
    expired = _forge({**claims, "exp": int(time.time()) - 10, "iat": int(time.time()) - 100})
    cases = {
        "garbled": ("not.a.jwt", "token-invalid"),
        "wrong-signature": (_forge(claims, secret="another-secret-entirely-0000"), "token-invalid"),
        "expired": (expired, "token-expired"),
        "refresh-as-access": (tokens["refresh_token"], "wrong-token-type"),
        "tampered": (tokens["access_token"][:-3] + "abc", "token-invalid"),
    }
    for name, (token, reason) in cases.items():
        response = await client.get(
            "/api/v2/users/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert assert_problem(response, 401)["reason"] == reason, name
        assert response.headers["www-authenticate"] == "Bearer"
    assert_problem(await client.get("/api/v2/users/me"), 401)
    basic = await client.get("/api/v2/users/me", headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert_problem(basic, 401)


async def test_access_token_is_not_a_refresh_token(client):
    await register(client, "hana")
    tokens = await login(client, "hana")
    response = await client.post(
        "/api/v2/auth/refresh", json={"refresh_token": tokens["access_token"]}
    )
    assert assert_problem(response, 401)["reason"] == "wrong-token-type"
    garbled = await client.post("/api/v2/auth/refresh", json={"refresh_token": "garbage"})
    assert assert_problem(garbled, 401)["reason"] == "token-invalid"


async def test_update_me_changes_profile_and_password(client, db):
    await register(client, "ivan")
    tokens = await login(client, "ivan")
    headers = bearer(tokens)
    wrong = await client.put(
        "/api/v2/users/me",
        headers=headers,
        json={"current_password": "nope-Nope-1", "new_password": "Another-Pass-9"},
    )
    assert_problem(wrong, 403)
    weak = await client.put(
        "/api/v2/users/me",
        headers=headers,
        json={"current_password": PASSWORD, "new_password": "weak"},
    )
    assert_problem(weak, 422)
    ok = await client.put(
        "/api/v2/users/me",
        headers=headers,
        json={
            "email": "Ivan.New@Example.com",
            "full_name": "Иван 'Ivan' O'Brien; DROP",
            "current_password": PASSWORD,
            "new_password": "Another-Pass-9",
        },
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["email"] == "ivan.new@example.com"
    assert ok.json()["full_name"] == "Иван 'Ivan' O'Brien; DROP"
    assert (
        await client.post("/api/v2/auth/login", json={"username": "ivan", "password": PASSWORD})
    ).status_code == 401
    await login(client, "ivan", "Another-Pass-9")
    unknown = await client.put("/api/v2/users/me", headers=headers, json={"role": "admin"})
    assert_problem(unknown, 422)
    assert await db.fetchval("SELECT role FROM users WHERE username='ivan'") == "admin"
