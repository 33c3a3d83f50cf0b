"""WebSockets of a server: console (backlog, live lines, typed commands), logs and status."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import uuid
from typing import Any

import structlog
from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from app.servers.api.schemas import TicketResponse
from app.servers.application.messages import GetServer, SendConsoleCommand
from app.servers.domain.ports import RuntimeStore
from app.servers.infrastructure.runtime import CONSOLE_CHANNEL, STATUS_CHANNEL
from app.shared.dependencies import CurrentPrincipal
from app.shared.domain import DomainError, Unauthorized
from app.shared.realtime import PubSubHub
from app.shared.security import Permission, Principal

log = structlog.get_logger(__name__)
router = APIRouter(tags=["websockets"])
tickets_router = APIRouter(prefix="/api/v2/ws", tags=["websockets"])

UNAUTHORIZED, FORBIDDEN, NOT_FOUND, TOO_SLOW = 4401, 4403, 4404, 4008
_TICKET_KEY = "ws:ticket:{ticket}"


@tickets_router.post(
    "/tickets",
    summary="A one-use ticket (30 s) for browsers: open the WebSocket with ?ticket=...",
)
async def create_ticket(request: Request, principal: CurrentPrincipal) -> TicketResponse:
    ttl = request.app.state.settings.websocket_ticket_ttl_seconds
    ticket = secrets.token_urlsafe(24)
    payload = json.dumps({"token": request.headers["authorization"].split(" ", 1)[1]})
    await request.app.state.container.redis.set(_TICKET_KEY.format(ticket=ticket), payload, ex=ttl)
    return TicketResponse(ticket=ticket, expires_in=ttl)


async def _authenticate(websocket: WebSocket) -> tuple[Principal, str | None]:
    """A token in Sec-WebSocket-Protocol (`bearer, <token>`) or a one-use `ticket` query value."""
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",")]
    app = websocket.app
    if len(offered) == 2 and offered[0].lower() == "bearer":
        return await app.state.authenticator.authenticate(offered[1]), offered[0]
    ticket = websocket.query_params.get("ticket")
    if ticket:
        raw = await app.state.container.redis.getdel(_TICKET_KEY.format(ticket=ticket[:64]))
        if raw:
            token = json.loads(raw)["token"]
            return await app.state.authenticator.authenticate(token), None
    raise Unauthorized("a token (Sec-WebSocket-Protocol: bearer, <token>) or a ticket is required")


async def _open(
    websocket: WebSocket, server_id: uuid.UUID, permission: Permission
) -> Principal | None:
    """Accept, then check who it is and whether they may watch this server; close if not."""
    try:
        principal, subprotocol = await _authenticate(websocket)
    except DomainError as exc:
        await websocket.accept()
        await websocket.close(code=UNAUTHORIZED, reason=exc.detail[:120])
        return None
    await websocket.accept(subprotocol=subprotocol)
    if not principal.has(permission):
        await websocket.close(code=FORBIDDEN, reason=f"needs {permission.value}")
        return None
    try:
        await websocket.app.state.bus.handle(GetServer(actor=principal, server_id=server_id))
    except DomainError:
        await websocket.close(code=NOT_FOUND, reason="server not found")
        return None
    return principal


def _stream_id(value: str) -> tuple[int, int]:
    millis, _, seq = value.partition("-")
    return int(millis), int(seq or 0)


async def _pump(websocket: WebSocket, channel: str, kind: str, *, backlog: int) -> None:
    """Send the backlog, then live messages, until the viewer leaves or falls too far behind."""
    app = websocket.app
    hub: PubSubHub = app.state.hub
    runtime: RuntimeStore = app.state.container.servers.runtime
    subscription = await hub.subscribe(
        channel, size=app.state.settings.websocket_queue_size, kind=kind
    )
    try:
        last_seen = (0, 0)
        if backlog:
            server_id = uuid.UUID(channel.split(":")[1])
            entries = list(await runtime.console_page(server_id, before=None, limit=backlog))
            entries.reverse()
            if entries:
                last_seen = _stream_id(entries[-1].id)
                lines = [{"id": e.id, "line": e.line, "at": e.at} for e in entries]
                await websocket.send_text(json.dumps({"type": "backlog", "lines": lines}))
        # Live messages may repeat the end of the backlog until one goes past it; after that
        # the published JSON is wrapped as it is, without decoding it again for every viewer.
        overlapping = last_seen > (0, 0)
        while True:
            data = await subscription.next()
            if data is None:
                await websocket.close(code=TOO_SLOW, reason="viewer fell behind; reconnect")
                return
            if kind != "console":
                await websocket.send_text(f'{{"type":"{kind}","data":{data}}}')
            elif not overlapping:
                await websocket.send_text(f'{{"type":"lines","lines":{data}}}')
            else:
                lines = [line for line in json.loads(data) if _stream_id(line["id"]) > last_seen]
                if lines:
                    overlapping = False
                    await websocket.send_text(json.dumps({"type": "lines", "lines": lines}))
    finally:
        await hub.unsubscribe(subscription, kind=kind)


async def _receive_commands(
    websocket: WebSocket, principal: Principal, server_id: uuid.UUID
) -> None:
    bus = websocket.app.state.bus
    while True:
        text = await websocket.receive_text()
        reply: dict[str, Any]
        try:
            message = json.loads(text)
            command = message["command"] if isinstance(message, dict) else None
            if not isinstance(command, str):
                raise ValueError
        except (ValueError, KeyError):
            reply = {"type": "error", "status": 422, "detail": 'send {"command": "..."}'}
        else:
            try:
                sent = await bus.handle(
                    SendConsoleCommand(
                        actor=principal, server_id=server_id, command=command, via="websocket"
                    )
                )
                reply = {"type": "sent", "command": sent}
            except DomainError as exc:
                reply = {"type": "error", "status": exc.status, "detail": exc.detail}
        await websocket.send_text(json.dumps(reply))


async def _serve(websocket: WebSocket, *tasks: Any) -> None:
    running = [asyncio.ensure_future(task) for task in tasks]
    try:
        done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if (exc := task.exception()) and not isinstance(exc, WebSocketDisconnect):
                log.warning("websocket_failed", error=repr(exc))
    finally:
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(BaseException):
                await task
        if websocket.client_state is WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close()


@router.websocket("/ws/servers/{server_id}/console")
async def console_socket(websocket: WebSocket, server_id: uuid.UUID) -> None:
    principal = await _open(websocket, server_id, Permission.SERVER_CONSOLE)
    if principal is None:
        return
    backlog = websocket.app.state.settings.console_backlog_lines
    channel = CONSOLE_CHANNEL.format(server_id=server_id)
    await _serve(
        websocket,
        _pump(websocket, channel, "console", backlog=backlog),
        _receive_commands(websocket, principal, server_id),
    )


async def _drain(websocket: WebSocket) -> None:
    while True:
        await websocket.receive_text()


@router.websocket("/ws/servers/{server_id}/logs")
async def logs_socket(websocket: WebSocket, server_id: uuid.UUID) -> None:
    if await _open(websocket, server_id, Permission.SERVER_READ) is None:
        return
    backlog = websocket.app.state.settings.console_backlog_lines
    channel = CONSOLE_CHANNEL.format(server_id=server_id)
    await _serve(
        websocket, _pump(websocket, channel, "console", backlog=backlog), _drain(websocket)
    )


@router.websocket("/ws/servers/{server_id}/status")
async def status_socket(websocket: WebSocket, server_id: uuid.UUID) -> None:
    if await _open(websocket, server_id, Permission.SERVER_READ) is None:
        return
    channel = STATUS_CHANNEL.format(server_id=server_id)
    await _serve(websocket, _pump(websocket, channel, "status", backlog=0), _drain(websocket))
