"""PostgreSQL and Redis for the test session: from the environment, from Docker, or embedded."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url


@dataclass(frozen=True)
class Services:
    server_url: str  # SQLAlchemy URL of a maintenance database on the PostgreSQL server
    redis_url: str
    origin: str


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@contextmanager
def provide_services(scratch: Path) -> Iterator[Services]:
    database_url = os.environ.get("MCDASH_DATABASE_URL")
    redis_url = os.environ.get("MCDASH_REDIS_URL")
    with ExitStack() as stack:
        if not (database_url and redis_url) and _docker_answers():
            from testcontainers.postgres import PostgresContainer
            from testcontainers.redis import RedisContainer

            if not database_url:
                pg = stack.enter_context(PostgresContainer("postgres:16", driver="asyncpg"))
                database_url = pg.get_connection_url()
            if not redis_url:
                rd = stack.enter_context(RedisContainer("redis:7-alpine"))
                redis_url = f"redis://{rd.get_container_host_ip()}:{rd.get_exposed_port(6379)}/0"
            origin = "testcontainers"
        else:
            origin = "environment"
        if not (database_url and redis_url):
            from app.embedded import EmbeddedServices

            embedded = EmbeddedServices(scratch)
            stack.callback(embedded.stop)
            database_url = database_url or embedded.start_postgres()
            redis_url = redis_url or embedded.start_redis()
            origin = "embedded"
        yield Services(server_url=database_url, redis_url=redis_url, origin=origin)


def _connect_kwargs(url: str) -> dict[str, object]:
    parsed = make_url(url)
    kwargs: dict[str, object] = {
        "user": parsed.username or "postgres",
        "password": parsed.password,
        "database": parsed.database or "postgres",
    }
    host = parsed.query.get("host")
    kwargs["host"] = host if isinstance(host, str) else (parsed.host or "127.0.0.1")
    if parsed.port:
        kwargs["port"] = parsed.port
    return kwargs


def database_url_for(server_url: str, name: str) -> str:
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def _admin(server_url: str, sql: str) -> None:
    kwargs = _connect_kwargs(server_url)
    kwargs["database"] = "postgres"
    conn = await asyncpg.connect(**kwargs)  # type: ignore[arg-type]
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database(server_url: str, name: str) -> str:
    asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    return database_url_for(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def asyncpg_kwargs(url: str) -> dict[str, object]:
    return _connect_kwargs(url)
