"""FastAPI dependencies of every context: bus, current principal, permissions, rate limits."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits import parse
from slowapi import Limiter

from app.shared.bus import MessageBus
from app.shared.context import set_actor
from app.shared.domain import DomainError, Forbidden, Unauthorized
from app.shared.security import Authenticator, Permission, Principal

_bearer = HTTPBearer(auto_error=False, description="Access token from POST /api/v2/auth/login")


async def get_bus(request: Request) -> MessageBus:
    """Async on purpose: FastAPI runs plain-def dependencies in a thread pool."""
    bus: MessageBus = request.app.state.bus
    return bus


BusDep = Annotated[MessageBus, Depends(get_bus)]


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("a bearer access token is required", reason="token-missing")
    authenticator: Authenticator = request.app.state.authenticator
    principal = await authenticator.authenticate(credentials.credentials)
    set_actor(principal.user_id)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require(permission: Permission) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets the request through only if the principal holds `permission`."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if not principal.has(permission):
            raise Forbidden(f"this action needs the {permission.value} permission")
        return principal

    return check


class RateLimited(DomainError):
    status = 429
    slug = "rate-limited"
    title = "Too many requests"


def rate_limit(name: str) -> Callable[[Request], Awaitable[None]]:
    """Limit requests per client address with the app's slowapi limiter and the named setting."""

    async def check(request: Request) -> None:
        limiter: Limiter | None = request.app.state.limiter
        if limiter is None:
            return
        item = parse(getattr(request.app.state.settings, f"rate_limit_{name}"))
        key = limiter._key_func(request)
        strategy = limiter.limiter
        if await asyncio.to_thread(strategy.hit, item, name, key):
            return
        reset_at, _ = await asyncio.to_thread(strategy.get_window_stats, item, name, key)
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise RateLimited(
            f"rate limit of {item} exceeded; retry in {retry_after} s", retry_after=retry_after
        )

    return check
