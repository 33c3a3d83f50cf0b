"""Health, readiness, metrics, request ids, rate limits and the problem format of framework errors."""

from __future__ import annotations

import httpx
import pytest

from app.main import create_app
from tests.agent import in_process
from tests.integration.test_auth_api import assert_problem

pytestmark = pytest.mark.usefixtures("clean")


async def test_health_and_ready(client):
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


async def test_ready_reports_migrations_behind_head(client, db):
    head = await db.fetchval("SELECT version_num FROM alembic_version")
    await db.execute("UPDATE alembic_version SET version_num = 'old'")
    try:
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert "head is" in ready.json()["checks"]["migrations"]
    finally:
        await db.execute("UPDATE alembic_version SET version_num = $1", head)


async def test_ready_reports_unreachable_dependencies(settings, clean):
    broken = settings.model_copy(
        update={
            "database_url": "postgresql+asyncpg://nobody@127.0.0.1:1/none",
            "redis_url": "redis://127.0.0.1:1/0",
            "relay_enabled": False,
            "projections_enabled": False,
        }
    )
    app = create_app(broken)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            ready = await http.get("/ready")
            assert (await http.get("/health")).status_code == 200
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["database"].startswith("unreachable")
    assert checks["redis"].startswith("unreachable")


async def test_metrics_count_requests_by_route_template(client):
    await client.get("/api/v2/users/00000000-0000-0000-0000-000000000000")
    text = (await client.get("/metrics")).text
    assert (
        'mcdash_http_requests_total{method="GET",route="/api/v2/users/{user_id}",status="401"}'
        in text
    )
    assert "mcdash_http_request_duration_seconds_bucket" in text


async def test_request_id_is_echoed_generated_and_sanitized(client):
    given = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    generated = await client.get("/health", headers={"X-Request-ID": "bad id\nwith newline"})
    assert generated.headers["x-request-id"] != "bad id\nwith newline"
    assert len(generated.headers["x-request-id"]) == 32
    problem = await client.get("/api/v2/users/me", headers={"X-Request-ID": "trace-1"})
    assert problem.json()["request_id"] == "trace-1"


async def test_unknown_route_and_method_are_problems(client):
    assert_problem(await client.get("/api/v2/nothing-here"), 404, "not-found")
    assert_problem(await client.delete("/api/v2/auth/login"), 405)


async def test_auth_rate_limit_answers_429_with_retry_after(settings, clean):
    limited = settings.model_copy(update={"rate_limit_auth": "3/minute"})
    app = create_app(limited)
    async with in_process(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            statuses = []
            for _ in range(4):
                response = await http.post(
                    "/api/v2/auth/login", json={"username": "nobody", "password": "whatever-1A"}
                )
                statuses.append(response.status_code)
            assert statuses == [401, 401, 401, 429]
            body = assert_problem(response, 429, "rate-limited")
            assert 1 <= int(response.headers["retry-after"]) <= 60
            assert body["retry_after"] == int(response.headers["retry-after"])
            # other routes are not limited by the auth bucket
            assert (await http.get("/health")).status_code == 200
