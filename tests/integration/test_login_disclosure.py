"""A refused login says the same for a wrong password, an unknown user and an unusable account."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, bearer, login, register

pytestmark = pytest.mark.usefixtures("clean")


async def accounts(client) -> dict[str, str]:
    """An admin, `pending` (never approved) and `gone` (approved, then deactivated)."""
    await register(client, "admin1")
    admin = bearer(await login(client, "admin1"))
    await register(client, "pending")
    gone = (await register(client, "gone")).json()["id"]
    await client.patch(f"/api/v2/users/{gone}/approve", headers=admin)
    off = await client.patch(f"/api/v2/users/{gone}/deactivate", headers=admin)
    assert off.json()["is_active"] is False
    return admin


def comparable(response) -> tuple[int, str, dict]:
    body = dict(response.json())
    body.pop("request_id", None)
    return response.status_code, response.headers["content-type"], body


@pytest.mark.parametrize(
    ("username", "password"),
    [
        pytest.param("pending", PASSWORD, id="unapproved-right-password"),
        pytest.param("pending", "Wrong-Horse-7", id="unapproved-wrong-password"),
        pytest.param("gone", PASSWORD, id="deactivated-right-password"),
        pytest.param("gone", "Wrong-Horse-7", id="deactivated-wrong-password"),
        pytest.param("nobody", PASSWORD, id="unknown-user"),
    ],
)
async def test_every_refused_login_gets_the_same_401(client, username, password):
    await accounts(client)
    reference = await client.post(
        "/api/v2/auth/login", json={"username": "admin1", "password": "Wrong-Horse-7"}
    )
    refused = await client.post(
        "/api/v2/auth/login", json={"username": username, "password": password}
    )
    assert refused.status_code == 401, refused.text
    assert comparable(refused) == comparable(reference)
    assert "waiting for approval or deactivated" in refused.json()["detail"]
    assert refused.headers["www-authenticate"] == "Bearer"


async def test_a_deactivated_accounts_refresh_token_is_a_401(client):
    await register(client, "admin1")
    admin = bearer(await login(client, "admin1"))
    user_id = (await register(client, "pat")).json()["id"]
    await client.patch(f"/api/v2/users/{user_id}/approve", headers=admin)
    tokens = await login(client, "pat")
    await client.patch(f"/api/v2/users/{user_id}/deactivate", headers=admin)
    refreshed = await client.post(
        "/api/v2/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 401, refreshed.text
    assert refreshed.headers["content-type"] == "application/problem+json"
