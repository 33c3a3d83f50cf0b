"""Liveness and readiness checks of the API's dependencies."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import sqlalchemy as sa
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass(frozen=True, slots=True)
class Readiness:
    checks: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return all(value == "ok" for value in self.checks.values())


class ReadinessProbe:
    def __init__(self, engine: AsyncEngine, redis: Redis, heads: set[str], *, timeout: float = 2.0):
        self._engine = engine
        self._redis = redis
        self._heads = heads
        self._timeout = timeout

    async def check(self) -> Readiness:
        database, redis = await asyncio.gather(self._database(), self._redis_ok())
        return Readiness(checks={**database, "redis": redis})

    async def _database(self) -> dict[str, str]:
        try:
            async with asyncio.timeout(self._timeout), self._engine.connect() as conn:
                rows = await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                applied = {row[0] for row in rows}
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            message = type(exc).__name__
            if "alembic_version" in str(exc):
                return {"database": "ok", "migrations": "not applied"}
            return {"database": f"unreachable: {message}", "migrations": "unknown"}
        if applied != self._heads:
            return {
                "database": "ok",
                "migrations": f"at {sorted(applied)}, head is {sorted(self._heads)}",
            }
        return {"database": "ok", "migrations": "ok"}

    async def _redis_ok(self) -> str:
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.ping()
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            return f"unreachable: {type(exc).__name__}"
        return "ok"
