"""The Redis cache service: JSON values with TTLs, pattern invalidation and stats."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from app.shared.cache import CacheService


@pytest.fixture
async def cache(redis_url, clean):
    redis = Redis.from_url(redis_url, decode_responses=True)
    yield CacheService(redis)
    await redis.aclose()


async def test_values_round_trip_and_expire(cache):
    await cache.set("server:1:status", {"state": "running", "players": ["Alex"]}, ttl_seconds=0.3)
    assert await cache.get("server:1:status") == {"state": "running", "players": ["Alex"]}
    await asyncio.sleep(0.4)
    assert await cache.get("server:1:status") is None


async def test_delete_and_pattern_invalidation(cache):
    for owner in range(600):
        await cache.set(f"servers:list:{owner}", [owner], ttl_seconds=60)
    await cache.set("backup:summary:1", {"count": 3}, ttl_seconds=60)
    assert await cache.delete_pattern("servers:list:*") == 600
    assert await cache.get("servers:list:7") is None
    assert await cache.get("backup:summary:1") == {"count": 3}
    await cache.delete("backup:summary:1")
    assert await cache.get("backup:summary:1") is None
    await cache.delete()


async def test_stats_count_only_cache_keys(cache, redis_url):
    await cache.set("a", 1, ttl_seconds=60)
    await cache.set("b", 2, ttl_seconds=60)
    other = Redis.from_url(redis_url)
    await other.set("not-a-cache-key", "x")
    await other.aclose()
    stats = await cache.stats()
    assert stats["keys"] == 2
    assert {"keyspace_hits", "keyspace_misses"} <= stats.keys()
