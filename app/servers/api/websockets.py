"""WebSockets of a server: console (backlog, live lines, typed commands), logs and status.

Every socket lives under `/api/v2/ws/`; the first paths, `/ws/servers/{id}/...`, stay as
documented aliases (README, "WebSockets and streams").
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Request, WebSocket

from app.servers.api.schemas import TicketResponse
from app.servers.application.messages import GetConsoleLog, GetServer, SendConsoleCommand
from app.servers.infrastructure.runtime import CONSOLE_CHANNEL, STATUS_CHANNEL
from app.shared.dependencies import CurrentPrincipal
from app.shared.domain import DomainError
from app.shared.principals import WatchedSocket
from app.shared.ratelimit import RateLimiter, user_key
from app.shared.realtime import PubSubHub
from app.shared.security import Permission, Principal
from app.shared.websockets import (
    TOO_SLOW,
    SocketTickets,
    Visible,
    drain,
    open_socket,
    receive,
    send_error,
    serve,
)

router = APIRouter(tags=["websockets"])
tickets_router = APIRouter(prefix="/api/v2/ws", tags=["websockets"])


@tickets_router.post(
    "/tickets",
    summary="A one-use ticket (30 s) for browsers: open the WebSocket with ?ticket=...",
)
async def create_ticket(request: Request, principal: CurrentPrincipal) -> TicketResponse:
    tickets: SocketTickets = request.app.state.tickets
    ticket = await tickets.issue(request.headers["authorization"].split(" ", 1)[1])
    return TicketResponse(ticket=ticket, expires_in=tickets.ttl_seconds)


def _server_visible(websocket: WebSocket, server_id: uuid.UUID) -> Visible:
    async def visible(principal: Principal) -> bool:
        try:
            await websocket.app.state.bus.handle(GetServer(actor=principal, server_id=server_id))
        except DomainError:
            return False
        return True

    return visible


async def _open(
    websocket: WebSocket, server_id: uuid.UUID, permission: Permission
) -> WatchedSocket | None:
    return await open_socket(websocket, permission, visible=_server_visible(websocket, server_id))


def _stream_id(value: str) -> tuple[int, int]:
    millis, _, seq = value.partition("-")
    return int(millis), int(seq or 0)


async def _pump(
    websocket: WebSocket, socket: WatchedSocket, channel: str, kind: str, *, backlog: int
) -> None:
    """Send the backlog, then live messages, until the viewer leaves or falls too far behind."""
    app = websocket.app
    hub: PubSubHub = app.state.hub
    subscription = await hub.subscribe(
        channel, size=app.state.settings.websocket_queue_size, kind=kind
    )
    try:
        last_seen = (0, 0)
        if backlog:
            server_id = uuid.UUID(channel.split(":")[1])
            page = GetConsoleLog(
                actor=socket.principal, server_id=server_id, before=None, limit=backlog
            )
            entries = list(await app.state.bus.handle(page))
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
    websocket: WebSocket, socket: WatchedSocket, server_id: uuid.UUID
) -> None:
    """Typed commands: each counts in the console rate limit, and the user is checked first."""
    bus = websocket.app.state.bus
    limiter: RateLimiter | None = websocket.app.state.limiter
    while True:
        text = await receive(websocket, socket)
        if text is None:
            continue
        reply: dict[str, Any]
        try:
            message = json.loads(text)
            command = message["command"] if isinstance(message, dict) else None
            if not isinstance(command, str):
                raise ValueError
        except (ValueError, KeyError):
            reply = {"type": "error", "status": 422, "detail": 'send {"command": "..."}'}
        else:
            if not await socket.recheck():
                return
            try:
                if limiter is not None:
                    await limiter.hit("console", user_key(socket.principal.user_id))
                sent = await bus.handle(
                    SendConsoleCommand(
                        actor=socket.principal,
                        server_id=server_id,
                        command=command,
                        via="websocket",
                    )
                )
                reply = {"type": "sent", "command": sent}
            except DomainError as exc:
                await send_error(websocket, exc)
                continue
        await websocket.send_text(json.dumps(reply))


@router.websocket("/api/v2/ws/servers/{server_id}/console")
@router.websocket("/ws/servers/{server_id}/console")
async def console_socket(websocket: WebSocket, server_id: uuid.UUID) -> None:
    socket = await _open(websocket, server_id, Permission.SERVER_CONSOLE)
    if socket is None:
        return
    backlog = websocket.app.state.settings.console_backlog_lines
    channel = CONSOLE_CHANNEL.format(server_id=server_id)
    await serve(
        websocket,
        socket,
        _pump(websocket, socket, channel, "console", backlog=backlog),
        _receive_commands(websocket, socket, server_id),
    )


@router.websocket("/api/v2/ws/servers/{server_id}/logs")
@router.websocket("/ws/servers/{server_id}/logs")
async def logs_socket(websocket: WebSocket, server_id: uuid.UUID) -> None:
    socket = await _open(websocket, server_id, Permission.SERVER_READ)
    if socket is None:
        return
    backlog = websocket.app.state.settings.console_backlog_lines
    channel = CONSOLE_CHANNEL.format(server_id=server_id)
    await serve(
        websocket,
        socket,
        _pump(websocket, socket, channel, "console", backlog=backlog),
        drain(websocket, socket),
    )


@router.websocket("/api/v2/ws/servers/{server_id}/status")
@router.websocket("/ws/servers/{server_id}/status")
async def status_socket(websocket: WebSocket, server_id: uuid.UUID) -> None:
    socket = await _open(websocket, server_id, Permission.SERVER_READ)
    if socket is None:
        return
    channel = STATUS_CHANNEL.format(server_id=server_id)
    await serve(
        websocket,
        socket,
        _pump(websocket, socket, channel, "status", backlog=0),
        drain(websocket, socket),
    )
