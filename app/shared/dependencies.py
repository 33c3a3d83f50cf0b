"""FastAPI dependencies of every context: bus, current principal, permissions, rate limits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase
from fastapi.security.utils import get_authorization_scheme_param

from app.shared.bus import MessageBus
from app.shared.context import set_actor
from app.shared.domain import Forbidden, Unauthorized
from app.shared.ratelimit import RateLimiter, address_key, user_key
from app.shared.security import Authenticator, Permission, Principal


async def get_bus(request: Request) -> MessageBus:
    """Async on purpose: FastAPI runs plain-def dependencies in a thread pool."""
    bus: MessageBus = request.app.state.bus
    return bus


BusDep = Annotated[MessageBus, Depends(get_bus)]


_READS = frozenset({"GET", "HEAD", "OPTIONS"})


class BearerPrincipal(SecurityBase):
    """The principal behind the request's bearer token, holding `permission` if one is named.

    One dependency (documented as the `HTTPBearer` scheme) where reading the header, checking
    the token and checking the permission were three: FastAPI's cost is per dependency, and
    every authenticated route pays it.
    """

    def __init__(self, permission: Permission | None = None) -> None:
        self.model = HTTPBearerModel(description="Access token from POST /api/v2/auth/login")
        self.scheme_name = "HTTPBearer"
        self.permission = permission

    async def __call__(self, request: Request) -> Principal:
        scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
        if not token or scheme.lower() != "bearer":
            raise Unauthorized("a bearer access token is required", reason="token-missing")
        authenticator: Authenticator = request.app.state.authenticator
        # Reads may be served by a check of the last second; a command checks afresh.
        principal = await authenticator.authenticate(token, fresh=request.method not in _READS)
        set_actor(principal.user_id)
        if self.permission is not None and not principal.has(self.permission):
            raise Forbidden(f"this action needs the {self.permission.value} permission")
        return principal


get_principal = BearerPrincipal()
CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
_REQUIRED = {permission: BearerPrincipal(permission) for permission in Permission}


def require(permission: Permission) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that lets the request through only if the principal holds `permission`
    (one instance per permission, so FastAPI solves it once however often a route names it)."""
    return _REQUIRED[permission]


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
