"""Rate limits: named fixed-window buckets in Redis, keyed per user or per client address.

A hit is counted in Redis by one script call (INCRBY, the window's expiry set on its first
hit, its time left returned), on the event loop. A key that keeps hitting takes leases: the
process counts several hits in one call and serves them from memory until they run out or the
window ends. A lease starts at one hit and doubles with each one taken in the same window, up
to a twentieth of the limit (never more than the window has left), so a limit of 20 or less
per window stays exact, and a dashboard polling at hundreds of requests a second costs a
handful of Redis round trips a window instead of one a request.

Leasing never admits more than the limit: every hit a lease serves was counted in Redis first,
in its own window (a lease ends when the window does). What it can cost is the other way round:
hits leased by one API process and never used there are not available to another process in
that window, at most a twentieth of the limit per process and key.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from limits import RateLimitItem, parse
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

# KEYS[1]: the window's counter; ARGV: hits to count, the window's length in ms.
# Returns the count after these hits and the ms the window has left.
_COUNT = """
local count = redis.call('INCRBY', KEYS[1], ARGV[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    left = tonumber(ARGV[2])
end
return {count, left}
"""
_LEASE_SHARE = 20  # a lease is at most limit / _LEASE_SHARE hits
_LEASES_MAX = 10_000


class RateLimited(DomainError):
    status = 429
    slug = "rate-limited"
    title = "Too many requests"


@dataclass(slots=True)
class _Lease:
    left: int  # hits counted in Redis, not yet served
    until: float  # monotonic: when the window they were counted in ends
    size: int  # hits the last lease asked for


class RateLimiter:
    def __init__(self, redis: Redis, limits: Mapping[str, str]) -> None:
        self._count: Any = redis.register_script(_COUNT)
        self._items: dict[str, RateLimitItem] = {
            bucket: parse(value) for bucket, value in limits.items()
        }
        self._leases: dict[tuple[str, str], _Lease] = {}

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
        slot = (bucket, key)
        now = time.monotonic()
        lease = self._leases.get(slot)
        if lease is not None and now < lease.until:
            if lease.left > 0:
                lease.left -= 1
                return
            size = min(lease.size * 2, max(1, item.amount // _LEASE_SHARE))
        else:
            size = 1
        window_ms = item.get_expiry() * 1000
        count, left_ms = await self._count(keys=[item.key_for(bucket, key)], args=[size, window_ms])
        granted = min(size, item.amount - (int(count) - size))
        if granted <= 0:
            retry_after = max(1, math.ceil(int(left_ms) / 1000))
            raise RateLimited(
                f"rate limit of {item} exceeded; retry in {retry_after} s", retry_after=retry_after
            )
        self._keep(slot, granted - 1, now + int(left_ms) / 1000, size)

    def _keep(self, slot: tuple[str, str], left: int, until: float, size: int) -> None:
        lease = self._leases.get(slot)
        if lease is not None and time.monotonic() < lease.until:
            # Another request of the key took a lease meanwhile: keep both, until the earlier
            # window end (a lease of a window that began since then ends early, never late).
            lease.left += left
            lease.until = min(lease.until, until)
            lease.size = max(lease.size, size)
            return
        if len(self._leases) >= _LEASES_MAX:
            now = time.monotonic()
            for stale in [s for s, held in self._leases.items() if held.until <= now]:
                del self._leases[stale]
            while len(self._leases) >= _LEASES_MAX:
                del self._leases[next(iter(self._leases))]
        self._leases[slot] = _Lease(left=left, until=until, size=size)


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
