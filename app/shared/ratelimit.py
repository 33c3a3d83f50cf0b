"""Rate limits: named fixed-window buckets in Redis, keyed per user or per client address.

The `limits` library's async Redis storage on the app's own connection pool: an allowed hit is
one Redis round trip (one EVALSHA), on the event loop; only a refused one asks for the window's
reset time as well.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter
from redis.asyncio import Redis
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from app.settings import Settings
from app.shared.domain import DomainError
from app.shared.problems import problem

# bucket -> the setting that sizes it; register, login and refresh each have their own bucket.
BUCKET_SETTINGS = {
    "register": "rate_limit_auth",
    "login": "rate_limit_auth",
    "refresh": "rate_limit_auth",
    "login-username": "rate_limit_login_username",
    "console": "rate_limit_console",
    "api": "rate_limit_api_general",
    "websocket": "rate_limit_websocket",
}


class RateLimited(DomainError):
    status = 429
    slug = "rate-limited"
    title = "Too many requests"


class RateLimiter:
    def __init__(self, redis: Redis, limits: Mapping[str, str]) -> None:
        pool: Any = redis.connection_pool  # limits types its options as scalars only
        storage = RedisStorage("async+redis://", implementation="redispy", connection_pool=pool)
        self._strategy = FixedWindowRateLimiter(storage)
        self._items: dict[str, RateLimitItem] = {
            bucket: parse(value) for bucket, value in limits.items()
        }

    @classmethod
    def from_settings(cls, redis: Redis, settings: Settings) -> RateLimiter | None:
        if not settings.rate_limits_enabled:
            return None
        return cls(
            redis,
            {bucket: getattr(settings, name) for bucket, name in BUCKET_SETTINGS.items()},
        )

    async def hit(self, bucket: str, key: str) -> None:
        """Count one hit of `key` in `bucket`; RateLimited (with retry_after) once it is full."""
        item = self._items[bucket]
        if await self._strategy.hit(item, bucket, key):
            return
        reset_at, _ = await self._strategy.get_window_stats(item, bucket, key)
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise RateLimited(
            f"rate limit of {item} exceeded; retry in {retry_after} s", retry_after=retry_after
        )


def user_key(user_id: uuid.UUID) -> str:
    return f"user:{user_id}"


def address_key(connection: HTTPConnection) -> str:
    """The client's address: the peer, or what a trusted proxy said (MCDASH_TRUSTED_PROXIES)."""
    return f"addr:{connection.client.host if connection.client else 'unknown'}"


def username_key(username: str) -> str:
    """Logins per account, whatever the case or padding; hashed, so any input makes a short key."""
    digest = hashlib.sha256(username.strip().casefold().encode(errors="replace")).hexdigest()
    return f"username:{digest[:32]}"


class TokenSubjects(Protocol):
    def identify(self, access_token: str) -> uuid.UUID | None: ...


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


class ApiRateLimitMiddleware:
    """The api_general limit on every /api/ request: per user whose token verifies, else per
    client address. The token is only verified here (cached per token), never looked up."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        state: Any = scope["app"].state
        limiter: RateLimiter | None = state.limiter
        if limiter is not None:
            token = _bearer(scope)
            subjects: TokenSubjects = state.authenticator
            user_id = subjects.identify(token) if token else None
            key = user_key(user_id) if user_id else address_key(HTTPConnection(scope))
            try:
                await limiter.hit("api", key)
            except RateLimited as exc:
                response = problem(
                    exc.status,
                    exc.title,
                    exc.detail,
                    slug=exc.slug,
                    instance=scope["path"],
                    headers={"Retry-After": str(exc.extra["retry_after"])},
                    **exc.extra,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
