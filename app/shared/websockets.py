"""What every WebSocket does: authenticate, rate-limit, check access, and follow its principal.

A socket is watched (app/shared/principals.py) from the moment it is accepted: it closes with
4401 when its session ends, its account is disabled or its token expires, and with 4403 when
its user's role no longer allows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from fastapi import Request, WebSocket, WebSocketDisconnect
from redis.asyncio import Redis
from starlette.websockets import WebSocketState

from app.shared.context import set_actor
from app.shared.domain import DomainError, Forbidden, NotFound, Unauthorized
from app.shared.principals import FORBIDDEN, REVOKED, Allows, PrincipalWatch, WatchedSocket
from app.shared.ratelimit import RateLimited, RateLimiter, address_key, user_key
from app.shared.security import Permission, Principal

log = structlog.get_logger(__name__)

UNAUTHORIZED, NOT_FOUND, TOO_SLOW, RATE_LIMITED = REVOKED, 4404, 4008, 4429
TICKET_KEY = "ws:ticket:{ticket}"

# Whether the principal may see what the socket shows (a server, say): 4404 if not at first.
Visible = Callable[[Principal], Awaitable[bool]]


async def _everything(_: Principal) -> bool:
    return True


class SocketTickets:
    """One-use tickets for browsers, which cannot put a token in a WebSocket's headers."""

    def __init__(self, redis: Redis, *, ttl_seconds: int) -> None:
        self._redis = redis
        self.ttl_seconds = ttl_seconds

    async def issue(self, access_token: str) -> str:
        ticket = secrets.token_urlsafe(24)
        payload = json.dumps({"token": access_token})
        await self._redis.set(TICKET_KEY.format(ticket=ticket), payload, ex=self.ttl_seconds)
        return ticket

    async def redeem(self, ticket: str) -> str | None:
        """The token the ticket stood for, once: a ticket is gone after its first use."""
        raw = await self._redis.getdel(TICKET_KEY.format(ticket=ticket[:64]))
        return str(json.loads(raw)["token"]) if raw else None


async def authenticate(app: Any, *, token: str | None, ticket: str | None) -> tuple[Principal, str]:
    """A bearer token, or the token a one-use ticket stood for: what sockets and streams accept."""
    if token:
        return await app.state.authenticator.authenticate(token), token
    if ticket:
        tickets: SocketTickets = app.state.tickets
        redeemed = await tickets.redeem(ticket)
        if redeemed is not None:
            return await app.state.authenticator.authenticate(redeemed), redeemed
    raise Unauthorized("a bearer token or a ticket (POST /api/v2/ws/tickets) is required")


async def _authenticate(websocket: WebSocket) -> tuple[Principal, str, str | None]:
    """A token in Sec-WebSocket-Protocol (`bearer, <token>`) or a one-use `ticket` query value."""
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",")]
    if len(offered) == 2 and offered[0].lower() == "bearer":
        principal, token = await authenticate(websocket.app, token=offered[1], ticket=None)
        return principal, token, offered[0]
    ticket = websocket.query_params.get("ticket")
    principal, token = await authenticate(websocket.app, token=None, ticket=ticket)
    return principal, token, None


async def _hit(app: Any, key: str) -> RateLimited | None:
    limiter: RateLimiter | None = app.state.limiter
    if limiter is None:
        return None
    try:
        await limiter.hit("websocket", key)
    except RateLimited as exc:
        return exc
    return None


async def _refuse(websocket: WebSocket, code: int, reason: str) -> None:
    await websocket.close(code=code, reason=reason[:120])


async def open_socket(
    websocket: WebSocket, permission: Permission, *, visible: Visible = _everything
) -> WatchedSocket | None:
    """Accept, then check who it is and whether they may have this socket; close if not.

    Opening counts in the `websocket` rate limit: per user, or per address if the token fails.
    """
    watch: PrincipalWatch = websocket.app.state.principals
    notices_before = watch.notices
    try:
        principal, token, subprotocol = await _authenticate(websocket)
    except DomainError as exc:
        limited = await _hit(websocket.app, address_key(websocket))
        await websocket.accept()
        await _refuse(websocket, RATE_LIMITED if limited else UNAUTHORIZED, exc.detail)
        return None
    await websocket.accept(subprotocol=subprotocol)
    set_actor(principal.user_id)
    if limited := await _hit(websocket.app, user_key(principal.user_id)):
        await _refuse(websocket, RATE_LIMITED, limited.detail)
        return None
    if not principal.has(permission):
        await _refuse(websocket, FORBIDDEN, f"needs {permission.value}")
        return None
    if not await visible(principal):
        await _refuse(websocket, NOT_FOUND, "not found")
        return None
    allows = still_allowed(permission, visible)
    return watch.open(principal, token, allows=allows, notices_before=notices_before)


def still_allowed(permission: Permission, visible: Visible) -> Allows:
    """What a re-check asks of the current principal: the permission, and that it still sees."""

    async def allows(current: Principal) -> str | None:
        if not current.has(permission):
            return f"your role no longer has {permission.value}"
        if not await visible(current):
            return "your role no longer lets you see this"
        return None

    return allows


async def open_stream(
    request: Request, permission: Permission, *, visible: Visible = _everything
) -> WatchedSocket:
    """The same checks as open_socket for a server-sent event stream, as problem+json errors.

    The token is an `Authorization: Bearer` header or a one-use `ticket` query value (an
    EventSource cannot set headers); the stream is watched like a socket, so a revoked session
    or a changed role ends it.
    """
    watch: PrincipalWatch = request.app.state.principals
    notices_before = watch.notices
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    token = credentials.strip() if scheme.lower() == "bearer" else None
    try:
        principal, token = await authenticate(
            request.app, token=token, ticket=request.query_params.get("ticket")
        )
    except DomainError:
        if limited := await _hit(request.app, address_key(request)):
            raise limited from None
        raise
    set_actor(principal.user_id)
    if limited := await _hit(request.app, user_key(principal.user_id)):
        raise limited
    if not principal.has(permission):
        raise Forbidden(f"this stream needs the {permission.value} permission")
    if not await visible(principal):
        raise NotFound("not found")
    allows = still_allowed(permission, visible)
    return watch.open(principal, token, allows=allows, notices_before=notices_before)


async def receive(websocket: WebSocket, socket: WatchedSocket) -> str | None:
    """The next text message, or None (after an error reply) if it is over the rate limit."""
    text = await websocket.receive_text()
    if refusal := await refused(websocket.app, socket):
        await websocket.send_text(refusal)
        return None
    return text


async def refused(app: Any, socket: WatchedSocket) -> str | None:
    """The error reply to a message from `socket` over the rate limit; None if it is within."""
    limited = await _hit(app, user_key(socket.principal.user_id))
    return error_reply(limited) if limited else None


async def watch_only(app: Any, socket: WatchedSocket, _: str) -> str | None:
    """A watch-only socket's answer to a message: none, unless it is over the rate limit."""
    return await refused(app, socket)


def error_reply(exc: DomainError) -> str:
    reply: dict[str, Any] = {"type": "error", "status": exc.status, "detail": exc.detail}
    reply.update({k: v for k, v in exc.extra.items() if k == "retry_after"})
    return json.dumps(reply)


async def drain(websocket: WebSocket, socket: WatchedSocket) -> None:
    """Read and drop what a watch-only socket is sent (it still counts in the rate limit)."""
    while True:
        await receive(websocket, socket)


async def serve_inline(
    websocket: WebSocket,
    socket: WatchedSocket,
    work: Awaitable[bool],
    *ends: asyncio.Future[tuple[int, str]],
) -> None:
    """Run `work` in this task until it ends, or until the principal's watch or one of `ends`
    ends the socket (it is then cancelled); close with the code the socket ended with, unless
    `work` handed the socket off (returned True: app/shared/handoff.py ends it then).

    No task of its own: with live messages pushed by the hub, a viewer costs one task, uvicorn's,
    and none once handed off.
    """
    watch: PrincipalWatch = websocket.app.state.principals
    ends = (socket.ended, *ends)
    task = asyncio.current_task()
    assert task is not None
    interrupted = False

    def interrupt(_: object) -> None:
        nonlocal interrupted
        if not interrupted and serving:
            interrupted = True
            task.cancel()

    serving, handed_off = True, False
    for end in ends:
        end.add_done_callback(interrupt)
    try:
        handed_off = await work
    except asyncio.CancelledError:
        if not interrupted or task.uncancel() > 0:
            raise
    except WebSocketDisconnect:
        pass
    except Exception as exc:  # noqa: BLE001 - logged like serve's tasks, and the socket closed
        log.warning("websocket_failed", error=repr(exc))
    finally:
        serving = False
        for end in ends:
            end.remove_done_callback(interrupt)
        if not handed_off:
            watch.close(socket)
        if not handed_off and websocket.client_state is WebSocketState.CONNECTED:
            ended = [end.result() for end in ends if end.done()]
            code, reason = ended[0] if ended else (1000, "")
            with contextlib.suppress(Exception):
                await websocket.close(code=code, reason=reason)


async def serve(websocket: WebSocket, socket: WatchedSocket, *tasks: Any) -> None:
    """Run the socket's tasks until one ends or the principal's watch ends the socket."""
    watch: PrincipalWatch = websocket.app.state.principals
    running = [asyncio.ensure_future(task) for task in tasks]
    try:
        done, _ = await asyncio.wait([*running, socket.ended], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is socket.ended:
                continue
            if (exc := task.exception()) and not isinstance(exc, WebSocketDisconnect):
                log.warning("websocket_failed", error=repr(exc))
    finally:
        watch.close(socket)
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(BaseException):
                await task
        if websocket.client_state is WebSocketState.CONNECTED:
            code, reason = socket.ended.result() if socket.ended.done() else (1000, "")
            with contextlib.suppress(Exception):
                await websocket.close(code=code, reason=reason)
