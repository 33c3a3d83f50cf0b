"""Session services, a migrated database per test worker, and a clean state for every test."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from app.main import create_app
from app.settings import Settings
from app.shared.db import metadata
from app.shared.migrations import upgrade
from tests.agent import in_process
from tests.s3 import moto_s3  # noqa: F401 - the S3 server fixture of the backup tests
from tests.services import (
    Services,
    asyncpg_kwargs,
    create_database,
    drop_database,
    provide_services,
)

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
WORKER_INDEX = int(WORKER.removeprefix("gw") or 0)
PASSWORD = "Correct-Horse-7"


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    """Embedded servers live outside pytest's rotating temp dirs, under a short path."""
    scratch = Path(tempfile.mkdtemp(prefix="mcdash-test-"))
    try:
        with provide_services(scratch) as provided:
            yield provided
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(services: Services) -> Iterator[str]:
    name = f"mcdash_test_{WORKER}_{uuid.uuid4().hex[:6]}"
    url = create_database(services.server_url, name)
    upgrade(url)
    yield url
    drop_database(services.server_url, name)


@pytest.fixture(scope="session")
def redis_url(services: Services) -> str:
    base = (
        services.redis_url.rsplit("/", 1)[0]
        if services.redis_url.count("/") > 2
        else services.redis_url
    )
    return f"{base}/{1 + WORKER_INDEX % 15}"


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        data_dir=tmp_path / "data",
        jwt_secret="integration-test-secret-0123456789",
        relay_poll_seconds=0.2,
        rate_limit_auth="1000/minute",
        rate_limit_login_username="1000/minute",
        rate_limit_api_general="100000/minute",
        rate_limit_websocket="100000/minute",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        log_json=True,
        log_level="WARNING",
    )


APP_TABLES = [t.name for t in metadata.sorted_tables]


async def _reset(database_url: str, redis_url: str) -> None:
    conn = await asyncpg.connect(**asyncpg_kwargs(database_url))  # type: ignore[arg-type]
    try:
        await conn.execute(f"TRUNCATE {', '.join(APP_TABLES)} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()
    redis = Redis.from_url(redis_url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


@pytest.fixture
async def clean(database_url: str, redis_url: str) -> None:
    await _reset(database_url, redis_url)


@pytest.fixture
async def app(settings: Settings, clean: None) -> AsyncIterator[FastAPI]:
    """The API in process; node `local` is a real agent over this test's data directory."""
    application = create_app(settings)
    async with in_process(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def db(database_url: str, clean: None) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(**asyncpg_kwargs(database_url))  # type: ignore[arg-type]
    yield conn
    await conn.close()


async def register(
    http: httpx.AsyncClient, username: str, *, password: str = PASSWORD, **extra: Any
) -> httpx.Response:
    body = {"username": username, "email": f"{username}@example.com", "password": password, **extra}
    return await http.post("/api/v2/auth/register", json=body)


async def login(http: httpx.AsyncClient, username: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await http.post(
        "/api/v2/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def admin_owner_other(http: httpx.AsyncClient) -> tuple[dict[str, dict[str, str]], dict]:
    """The first registration (`admin1`, the admin) and two users it approves (`owner1`,
    `other1`): their bearer headers, and their ids, by role name (admin, owner, other)."""
    ids = {"admin": (await register(http, "admin1")).json()["id"]}
    admin = bearer(await login(http, "admin1"))
    users = {"admin": admin}
    for name in ("owner", "other"):
        ids[name] = (await register(http, f"{name}1")).json()["id"]
        await http.patch(f"/api/v2/users/{ids[name]}/approve", headers=admin)
        users[name] = bearer(await login(http, f"{name}1"))
    return users, ids
