"""The composition root: builds engines, clients, the bus and every handler's dependencies."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from slowapi import Limiter
from slowapi.util import get_remote_address
from sqlalchemy.ext.asyncio import AsyncEngine

from app.settings import Settings
from app.shared.bus import MessageBus
from app.shared.cache import CacheService
from app.shared.db import create_engine
from app.shared.domain import Clock, SystemClock
from app.shared.events import EventCodec, EventRelay
from app.users.application import handlers as users
from app.users.application import messages as user_messages
from app.users.domain import events as user_events
from app.users.infrastructure.repositories import SqlUserReadModel, SqlUsersUnitOfWork
from app.users.infrastructure.security import (
    JwtAuthenticator,
    JwtTokenService,
    PasslibHasher,
    RedisSessionRevocations,
)


def inject(handler: Callable[..., Awaitable[Any]], **deps: Any) -> Callable[[Any], Awaitable[Any]]:
    """Bind the dependencies a handler names among its keyword parameters."""
    wanted = inspect.signature(handler).parameters
    return functools.partial(handler, **{name: dep for name, dep in deps.items() if name in wanted})


@dataclass(kw_only=True)
class Container:
    settings: Settings
    engine: AsyncEngine
    redis: Redis
    bus: MessageBus
    codec: EventCodec
    relay: EventRelay
    cache: CacheService
    authenticator: JwtAuthenticator
    limiter: Limiter | None
    clock: Clock

    async def close(self) -> None:
        await self.redis.aclose()
        await self.engine.dispose()


def bootstrap(settings: Settings, *, clock: Clock | None = None) -> Container:
    clock = clock or SystemClock()
    engine = create_engine(
        settings.require_database_url(),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
    redis_url = settings.require_redis_url()
    redis = Redis.from_url(redis_url, decode_responses=True)
    bus = MessageBus()
    codec = EventCodec(user_events.USER_EVENTS)
    relay = EventRelay(
        engine,
        bus,
        codec,
        poll_seconds=settings.relay_poll_seconds,
        batch_size=settings.relay_batch_size,
    )
    tokens = JwtTokenService(
        secret=settings.jwt_key(),
        algorithm=settings.jwt_algorithm,
        issuer=settings.jwt_issuer,
        access_ttl=settings.access_token_ttl_seconds,
        refresh_ttl=settings.refresh_token_ttl_seconds,
    )
    revocations = RedisSessionRevocations(redis, access_ttl=settings.access_token_ttl_seconds)
    deps: dict[str, Any] = {
        "uow": lambda: SqlUsersUnitOfWork(engine, codec, on_commit=relay.wake),
        "hasher": PasslibHasher(),
        "tokens": tokens,
        "clock": clock,
        "revocations": revocations,
        "read_model": SqlUserReadModel(engine),
    }
    _register_users(bus, deps)
    limiter = (
        Limiter(key_func=get_remote_address, storage_uri=redis_url, strategy="fixed-window")
        if settings.rate_limits_enabled
        else None
    )
    return Container(
        settings=settings,
        engine=engine,
        redis=redis,
        bus=bus,
        codec=codec,
        relay=relay,
        cache=CacheService(redis),
        authenticator=JwtAuthenticator(
            tokens, redis, engine, cache_ttl=settings.permissions_cache_ttl_seconds
        ),
        limiter=limiter,
        clock=clock,
    )


def _register_users(bus: MessageBus, deps: dict[str, Any]) -> None:
    m = user_messages
    for message, handler in (
        (m.RegisterUser, users.handle_register_user),
        (m.LogIn, users.handle_log_in),
        (m.RefreshSession, users.handle_refresh_session),
        (m.LogOut, users.handle_log_out),
        (m.UpdateProfile, users.handle_update_profile),
        (m.ApproveUser, users.handle_approve_user),
        (m.ChangeUserRole, users.handle_change_user_role),
        (m.DeactivateUser, users.handle_deactivate_user),
        (m.ReactivateUser, users.handle_reactivate_user),
        (m.GetUser, users.handle_get_user),
        (m.ListUsers, users.handle_list_users),
    ):
        bus.register(message, inject(handler, **deps))
    for event in (
        user_events.UserApproved,
        user_events.UserRoleChanged,
        user_events.UserDeactivated,
        user_events.UserReactivated,
    ):
        bus.subscribe(event, inject(users.forget_changed_user, **deps))
