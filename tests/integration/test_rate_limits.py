"""Rate limits: one bucket per auth route, logins per username, api_general, trusted proxies."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from limits import parse
from redis.asyncio import Redis

from app import cli
from app.main import create_app
from app.shared.ratelimit import RateLimited, RateLimiter
from tests.agent import in_process
from tests.conftest import PASSWORD, bearer, login, register
from tests.integration.test_auth_api import assert_problem

pytestmark = pytest.mark.usefixtures("clean")


@asynccontextmanager
async def api(settings, **overrides) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update=overrides))
    async with in_process(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield http


async def bad_login(http, username: str = "nobody", **headers: str) -> int:
    response = await http.post(
        "/api/v2/auth/login",
        json={"username": username, "password": "Wrong-Pass-123"},
        headers=headers,
    )
    return response.status_code


async def test_failed_logins_do_not_stop_refresh_or_register(settings):
    async with api(settings, rate_limit_auth="3/minute") as http:
        await register(http, "alice")
        tokens = await login(http, "alice")
        assert [await bad_login(http) for _ in range(2)] == [401, 401]
        assert await bad_login(http) == 429
        refreshed = await http.post(
            "/api/v2/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status_code == 200, refreshed.text
        assert (await register(http, "bob")).status_code == 201


async def test_refresh_and_register_have_their_own_buckets(settings):
    async with api(settings, rate_limit_auth="2/minute") as http:
        await register(http, "alice")
        statuses = [
            (
                await http.post("/api/v2/auth/refresh", json={"refresh_token": "not-a-token"})
            ).status_code
            for _ in range(3)
        ]
        assert statuses == [401, 401, 429]
        await login(http, "alice")
        assert (await register(http, "bob")).status_code == 201
        assert_problem(await register(http, "carol"), 429, "rate-limited")


async def test_login_is_limited_per_username_from_every_address(settings):
    async with api(
        settings,
        rate_limit_auth="1000/minute",
        rate_limit_login_username="3/minute",
        trusted_proxies=["127.0.0.1/32"],
    ) as http:
        addresses = [f"198.51.100.{n}" for n in range(1, 5)]
        statuses = [
            await bad_login(http, "victim", **{"X-Forwarded-For": address}) for address in addresses
        ]
        assert statuses == [401, 401, 401, 429]
        # the same name in other case and padding is the same account
        assert await bad_login(http, "  VICTIM ", **{"X-Forwarded-For": "198.51.100.9"}) == 429
        assert await bad_login(http, "someone-else") == 401


ROTATED = {
    "x-forwarded-for-rotated": "X-Forwarded-For",
    "x-real-ip-rotated": "X-Real-IP",
    "forwarded-rotated": "Forwarded",
}


@pytest.mark.parametrize("header", ROTATED.values(), ids=ROTATED.keys())
async def test_forwarding_headers_are_ignored_without_trusted_proxies(settings, db, header):
    async with api(settings, rate_limit_auth="3/minute") as http:
        statuses = []
        for n in range(4):
            value = f"for=203.0.113.{n}" if header == "Forwarded" else f"203.0.113.{n}"
            statuses.append(await bad_login(http, f"user{n}", **{header: value}))
        assert statuses == [401, 401, 401, 429]
    async with api(settings) as http:
        await http.post(
            "/api/v2/auth/register",
            json={"username": "eve", "email": "eve@example.com", "password": PASSWORD},
            headers={"X-Forwarded-For": "203.0.113.66"},
        )
    metadata = json.loads(await db.fetchval("SELECT metadata FROM domain_events LIMIT 1"))
    assert metadata["client_addr"] == "127.0.0.1"


async def test_a_trusted_proxy_names_the_client_for_limits_and_audit(settings, db):
    async with api(settings, rate_limit_auth="2/minute", trusted_proxies=["127.0.0.0/8"]) as http:
        assert [await bad_login(http, **{"X-Forwarded-For": "192.0.2.1"}) for _ in range(3)] == [
            401,
            401,
            429,
        ]
        # another client behind the same proxy has its own bucket
        assert await bad_login(http, **{"X-Forwarded-For": "192.0.2.2"}) == 401
        # a client cannot pick its address by prepending one: the proxy appends the real one
        spoofed = {"X-Forwarded-For": "192.0.2.99, 192.0.2.1"}
        assert await bad_login(http, **spoofed) == 429
        created = await http.post(
            "/api/v2/auth/register",
            json={"username": "frank", "email": "frank@example.com", "password": PASSWORD},
            headers={"X-Forwarded-For": "192.0.2.50"},
        )
        assert created.status_code == 201
    metadata = json.loads(
        await db.fetchval(
            "SELECT metadata FROM domain_events WHERE event_type='UserRegistered' LIMIT 1"
        )
    )
    assert metadata["client_addr"] == "192.0.2.50"


async def test_api_general_limits_each_user_and_each_anonymous_address(settings):
    async with api(settings, rate_limit_api_general="4/minute") as http:
        await register(http, "alice")
        alice = bearer(await login(http, "alice"))
        # register and login were this address's first two anonymous requests
        assert_problem(await http.get("/api/v2/users/me"), 401)
        # a token someone made up counts against the address, not against a user
        forged = {"Authorization": "Bearer not.a.token"}
        assert_problem(await http.get("/api/v2/users/me", headers=forged), 401)
        limited = await http.get("/api/v2/users/me")
        body = assert_problem(limited, 429, "rate-limited")
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert body["retry_after"] == int(limited.headers["retry-after"])

        statuses = [
            (await http.get(path, headers=alice)).status_code
            for path in (
                "/api/v2/users/me",
                "/api/v2/servers/",
                "/api/v2/nothing-here",
                "/api/v2/users/me",
                "/api/v2/users/me",
            )
        ]
        assert statuses == [200, 200, 404, 200, 429]
        # probes and metrics are never limited
        assert (await http.get("/health")).status_code == 200
        assert (await http.get("/metrics")).status_code == 200


async def test_api_general_counts_the_user_not_the_address(settings):
    async with api(settings) as http:
        await register(http, "alice")
        alice = bearer(await login(http, "alice"))
        bob_id = (await register(http, "bob")).json()["id"]
        await http.patch(f"/api/v2/users/{bob_id}/approve", headers=alice)
        bob = bearer(await login(http, "bob"))
    async with api(settings, rate_limit_api_general="2/minute") as http:
        statuses = [(await http.get("/api/v2/users/me", headers=alice)).status_code for _ in "abc"]
        assert statuses == [200, 200, 429]
        assert (await http.get("/api/v2/users/me", headers=bob)).status_code == 200


async def test_console_commands_are_limited_per_user(settings):
    async with api(settings, rate_limit_console="2/minute") as http:
        await register(http, "alice")
        alice = bearer(await login(http, "alice"))
        unknown = f"/api/v2/servers/{uuid.uuid4()}/console"
        statuses = [
            (await http.post(unknown, json={"command": "list"}, headers=alice)).status_code
            for _ in range(3)
        ]
        assert statuses == [404, 404, 429]
        bob_id = (await register(http, "bob")).json()["id"]
        await http.patch(f"/api/v2/users/{bob_id}/approve", headers=alice)
        bob = bearer(await login(http, "bob"))
        bobs = await http.post(unknown, json={"command": "list"}, headers=bob)
        assert bobs.status_code == 404


async def test_rate_limits_can_be_turned_off(settings):
    async with api(settings, rate_limits_enabled=False, rate_limit_auth="1/minute") as http:
        assert [await bad_login(http) for _ in range(3)] == [401, 401, 401]


def test_uvicorn_is_told_to_trust_no_forwarding_headers(monkeypatch, settings):
    seen: dict[str, object] = {}

    def run(app, **kwargs):
        seen.update(kwargs)

    import uvicorn

    monkeypatch.setattr(uvicorn, "run", run)
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    for name, value in {
        "MCDASH_DATABASE_URL": settings.database_url,
        "MCDASH_REDIS_URL": settings.redis_url,
        "MCDASH_DATA_DIR": str(settings.data_dir),
        "MCDASH_JWT_SECRET": settings.jwt_secret.get_secret_value(),
    }.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["api", "--port", "8123"]) == 0
    assert seen["proxy_headers"] is False
    assert "forwarded_allow_ips" not in seen


async def test_leases_never_admit_more_than_the_limit_across_processes(settings, clean):
    """Two limiters on one Redis, as two API processes: a key hammered through both leases
    hits in bulk, yet together they admit exactly the limit in the window, no more."""
    redis = Redis.from_url(settings.redis_url)
    try:
        limiters = [RateLimiter(redis, {"api": "200/minute"}) for _ in range(2)]
        key = f"user:{uuid.uuid4()}"
        admitted = refused = 0
        retry_after: set[int] = set()
        for index in range(300):
            try:
                await limiters[index % 2].hit("api", key)
                admitted += 1
            except RateLimited as exc:
                refused += 1
                retry_after.add(exc.extra["retry_after"])
        counted = int(await redis.get(parse("200/minute").key_for("api", key)) or 0)
    finally:
        await redis.aclose()
    assert admitted <= 200
    # What one process leased and never served is lost to the other: at most a twentieth each.
    assert admitted >= 200 - 2 * 200 // 20
    assert refused == 300 - admitted
    assert all(1 <= seconds <= 60 for seconds in retry_after)
    assert counted >= admitted


async def test_a_small_limit_stays_exact(settings, clean):
    redis = Redis.from_url(settings.redis_url)
    try:
        limiters = [RateLimiter(redis, {"login": "5/minute"}) for _ in range(2)]
        outcomes = []
        for index in range(8):
            try:
                await limiters[index % 2].hit("login", "addr:10.0.0.1")
                outcomes.append(True)
            except RateLimited:
                outcomes.append(False)
    finally:
        await redis.aclose()
    assert outcomes == [True] * 5 + [False] * 3
