"""Request body limits, enforced before anything parses a body: by Content-Length, then by count.

Every route accepts bodies up to MCDASH_MAX_BODY_BYTES. A route that takes more (an upload, a
file edit) says so with `@body_limit(...)`, naming its own setting. The limit is looked up when
the app first reads the body or starts its answer, so the route is known by then (the router
has put it in the scope) and a request that is refused for other reasons (401, 404) is
refused without a byte of its body read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.settings import Settings
from app.shared.domain import DomainError
from app.shared.problems import problem

F = TypeVar("F", bound=Callable[..., Any])
LimitOf = Callable[[Settings], int]

_ATTRIBUTE = "__mcdash_body_limit__"


class BodyTooLarge(DomainError):
    status = 413
    slug = "payload-too-large"
    title = "Payload too large"


class UnsupportedMediaType(DomainError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


def body_limit(limit_of: LimitOf) -> Callable[[F], F]:
    """Declare that a route's bodies may reach `limit_of(settings)` bytes instead of the default."""

    def declare(endpoint: F) -> F:
        setattr(endpoint, _ATTRIBUTE, limit_of)
        return endpoint

    return declare


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class _Refused(Exception):
    """Raised into the app to stop it once the body is refused."""


class BodyLimitMiddleware:
    """Pure ASGI: 413 problem when the declared Content-Length passes the route's limit (before
    a byte is read), or as soon as a streamed (chunked) body does. Whatever the app does with
    the refused body is dropped; only the 413 is sent.
    """

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def _limit(self, scope: Scope) -> int:
        endpoint = getattr(scope.get("route"), "endpoint", None)
        limit_of: LimitOf | None = getattr(endpoint, _ATTRIBUTE, None)
        default = self.settings.max_body_bytes
        return default if limit_of is None else max(default, limit_of(self.settings))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        received = 0
        refused: int | None = None
        started = False

        def refuse(limit: int) -> _Refused:
            nonlocal refused
            refused = limit
            return _Refused()

        async def counted() -> Message:
            nonlocal received
            limit = self._limit(scope)
            if refused is not None or (declared is not None and declared > limit):
                raise refuse(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise refuse(limit)
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if refused is not None:
                raise _Refused()
            if message["type"] == "http.response.start":
                limit = self._limit(scope)
                if declared is not None and declared > limit:
                    raise refuse(limit)
                started = True
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if refused is None:
                raise
        if refused is not None and not started:
            await self._answer(scope, receive, send, refused, declared=declared)

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, limit: int, *, declared: int | None
    ) -> None:
        how = (
            f"the declared Content-Length of {declared} bytes passes"
            if declared is not None and declared > limit
            else "the body passed"
        )
        response = problem(
            413,
            BodyTooLarge.title,
            f"{how} this route's limit of {limit} bytes; nothing was processed",
            slug=BodyTooLarge.slug,
            instance=scope.get("path"),
            headers={"Connection": "close"},
            limit=limit,
        )
        await response(scope, receive, send)
