"""A small JSON cache over Redis with TTLs, pattern invalidation and hit/miss counters."""

from __future__ import annotations

import json
from typing import Any

from prometheus_client import Counter
from redis.asyncio import Redis

# By cache (a CacheService key's first segment, e.g. "catalog"; "permissions" for the users
# context's signed entries) and result (hit, miss).
CACHE_LOOKUPS = Counter("mcdash_cache_lookups_total", "Cache lookups", ["cache", "result"])


def cache_of(key: str) -> str:
    name, sep, _ = key.partition(":")
    return name if sep and name else "default"


class CacheService:
    def __init__(self, redis: Redis, *, prefix: str = "cache:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def get(self, key: str) -> Any | None:
        raw = await self._redis.get(self._prefix + key)
        CACHE_LOOKUPS.labels(cache_of(key), "hit" if raw is not None else "miss").inc()
        return json.loads(raw) if raw is not None else None

    async def set(self, key: str, value: Any, *, ttl_seconds: float) -> None:
        await self._redis.set(
            self._prefix + key, json.dumps(value, default=str), px=int(ttl_seconds * 1000)
        )

    async def delete(self, *keys: str) -> None:
        if keys:
            await self._redis.delete(*(self._prefix + key for key in keys))

    async def delete_pattern(self, pattern: str) -> int:
        """Delete keys matching a glob pattern, scanning instead of blocking Redis with KEYS."""
        removed = 0
        batch: list[str] = []
        async for key in self._redis.scan_iter(match=self._prefix + pattern, count=500):
            batch.append(key)
            if len(batch) >= 500:
                removed += await self._redis.delete(*batch)
                batch = []
        if batch:
            removed += await self._redis.delete(*batch)
        return removed

    async def stats(self) -> dict[str, Any]:
        info = await self._redis.info("stats")
        keys = 0
        async for _ in self._redis.scan_iter(match=self._prefix + "*", count=1000):
            keys += 1
        return {
            "keys": keys,
            "keyspace_hits": info.get("keyspace_hits", 0),
            "keyspace_misses": info.get("keyspace_misses", 0),
        }
