"""FastAPI dependencies of every context: bus, current principal, permissions, rate limits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.shared.bus import MessageBus
from app.shared.context import set_actor
from app.shared.domain import Forbidden, Unauthorized
from app.shared.ratelimit import RateLimiter, address_key, user_key
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


def rate_limit(bucket: str) -> Callable[[Request], Awaitable[None]]:
    """A dependency counting requests per client address in the named bucket."""

    async def check(request: Request) -> None:
        limiter: RateLimiter | None = request.app.state.limiter
        if limiter is not None:
            await limiter.hit(bucket, address_key(request))

    return check


def user_rate_limit(bucket: str) -> Callable[[Request, Principal], Awaitable[None]]:
    """A dependency counting an authenticated user's requests in the named bucket."""

    async def check(request: Request, principal: CurrentPrincipal) -> None:
        limiter: RateLimiter | None = request.app.state.limiter
        if limiter is not None:
            await limiter.hit(bucket, user_key(principal.user_id))

    return check
