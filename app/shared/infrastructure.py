"""What every context is built on, made once per process: engines, Redis, HTTP, bus, relay."""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.settings import Settings
from app.shared.agent import AgentClient, NodeTokens, RedisNodeDirectory
from app.shared.bus import MessageBus
from app.shared.cache import CacheService
from app.shared.db import ReadPool, create_engine, create_projection_engine, create_read_engine
from app.shared.domain import Clock, DomainEvent, SystemClock
from app.shared.events import EventCodec
from app.shared.relay import EventRelay

UowClass = Callable[..., Any]


@functools.cache
def _certificates() -> ssl.SSLContext:
    """Loading the CA bundle takes ~20 ms: once per process, not once per bootstrap."""
    return httpx.create_ssl_context()


@dataclass(kw_only=True)
class Infrastructure:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    read_engine: AsyncEngine
    read_pool: ReadPool
    projection_engine: AsyncEngine
    redis: Redis
    sync_redis: SyncRedis
    http: httpx.AsyncClient
    cache: CacheService
    bus: MessageBus
    codec: EventCodec
    relay: EventRelay
    agents: AgentClient
    # Called, besides the relay, when a unit of work commits events (the projections).
    on_commit: list[Callable[[], None]]

    @classmethod
    def build(
        cls, settings: Settings, *, events: Iterable[type[DomainEvent]], clock: Clock | None = None
    ) -> Infrastructure:
        """Clients only: nothing connects until it is first used."""
        database_url, redis_url = settings.require_database_url(), settings.require_redis_url()
        pool = {"pool_size": settings.db_pool_size, "max_overflow": settings.db_max_overflow}
        engine = create_engine(database_url, **pool)
        redis = Redis.from_url(redis_url, decode_responses=True)
        bus = MessageBus()
        codec = EventCodec(events)
        return cls(
            settings=settings,
            clock=clock or SystemClock(),
            engine=engine,
            read_engine=create_read_engine(database_url, **pool),
            read_pool=ReadPool(database_url, size=settings.db_pool_size),
            projection_engine=create_projection_engine(database_url),
            redis=redis,
            sync_redis=SyncRedis.from_url(redis_url),
            http=httpx.AsyncClient(
                headers={"User-Agent": settings.download_user_agent},
                timeout=settings.download_timeout_seconds,
                follow_redirects=True,
                verify=_certificates(),
            ),
            cache=CacheService(redis),
            bus=bus,
            codec=codec,
            relay=EventRelay(
                engine,
                bus,
                codec,
                poll_seconds=settings.relay_poll_seconds,
                batch_size=settings.relay_batch_size,
                max_attempts=settings.relay_max_attempts,
                retry_seconds=settings.relay_retry_seconds,
            ),
            agents=AgentClient(
                RedisNodeDirectory(redis),
                NodeTokens(settings.node_key(), ttl=settings.node_token_ttl_seconds),
                timeout=settings.node_request_timeout_seconds,
            ),
            on_commit=[],
        )

    def unit_of_work(self, uow_class: UowClass) -> Callable[[], Any]:
        """A context's UoW factory: its events wake this process's relay and projections when
        they commit."""
        return lambda: uow_class(self.engine, self.codec, on_commit=self.committed)

    def committed(self) -> None:
        self.relay.wake()
        for wake in self.on_commit:
            wake()

    async def close(self) -> None:
        await self.http.aclose()
        await self.agents.close()
        await self.redis.aclose()
        self.sync_redis.close()
        await self.engine.dispose()
        await self.read_engine.dispose()
        await self.read_pool.close()
        await self.projection_engine.dispose()
