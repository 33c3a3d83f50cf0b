"""WebSockets of a server: console (backlog, live lines, typed commands), logs and status.

Every socket lives under `/api/v2/ws/`; the first paths, `/ws/servers/{id}/...`, stay as
documented aliases (README, "WebSockets and streams").
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request, WebSocket

from app.servers.api.schemas import TicketResponse
from app.servers.application.messages import GetConsoleLog, GetServer, SendConsoleCommand
from app.servers.infrastructure.runtime import CONSOLE_CHANNEL, STATUS_CHANNEL
from app.shared.dependencies import CurrentPrincipal
from app.shared.domain import DomainError
from app.shared.fanout import SharedText, Skip, Viewer, wire_of
from app.shared.handoff import Answer, Handoff, detachable
from app.shared.principals import WatchedSocket
from app.shared.ratelimit import RateLimiter, user_key
from app.shared.realtime import Batch, PubSubHub
from app.shared.security import Permission, Principal
from app.shared.websockets import (
    SocketTickets,
    Visible,
    error_reply,
    open_socket,
    refused,
    serve_inline,
    watch_only,
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
    bus = websocket.app.state.bus  # not the socket: its watch keeps this while it is open

    async def visible(principal: Principal) -> bool:
        try:
            await bus.handle(GetServer(actor=principal, server_id=server_id))
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


def console_messages(items: Sequence[str]) -> tuple[SharedText, ...]:
    """The published batches (JSON arrays of lines) as one `lines` message, joined undecoded."""
    parts = [inner for item in items if (inner := item.strip()[1:-1].strip())]
    if not parts:
        return ()
    return (SharedText('{"type":"lines","lines":[' + ",".join(parts) + "]}"),)


def status_messages(items: Sequence[str]) -> tuple[SharedText, ...]:
    return tuple(SharedText(f'{{"type":"status","data":{item}}}') for item in items)


def _after(last_seen: tuple[int, int]) -> Skip:
    """Live lines may repeat the end of the backlog until one goes past it: leave those out."""

    def skip(batch: Batch) -> Batch | None:
        lines = [line for item in batch.items for line in json.loads(item)]
        fresh = [line for line in lines if _stream_id(line["id"]) > last_seen]
        if len(fresh) == len(lines):
            return batch
        return Batch([json.dumps(fresh)]) if fresh else None

    return skip


async def _send_backlog(
    websocket: WebSocket, socket: WatchedSocket, server_id: uuid.UUID, limit: int
) -> Skip | None:
    """The last `limit` lines, oldest first; what the live lines must skip after them."""
    page = GetConsoleLog(actor=socket.principal, server_id=server_id, before=None, limit=limit)
    entries = list(await websocket.app.state.bus.handle(page))
    if not entries:
        return None
    entries.reverse()
    lines = [{"id": e.id, "line": e.line, "at": e.at} for e in entries]
    await websocket.send_text(json.dumps({"type": "backlog", "lines": lines}))
    return _after(_stream_id(entries[-1].id))


async def _watch(
    websocket: WebSocket,
    socket: WatchedSocket,
    server_id: uuid.UUID,
    kind: str,
    answer: Answer,
) -> None:
    """Serve one socket: the backlog, then live messages pushed by the hub as they come, and
    `answer` to each message the viewer sends; until it leaves or falls too far behind.

    Once live, the socket is handed off (app/shared/handoff.py) and this call returns."""
    app = websocket.app
    hub: PubSubHub = app.state.hub
    if kind == "console":
        channel, encode = CONSOLE_CHANNEL.format(server_id=server_id), console_messages
        backlog = app.state.settings.console_backlog_lines
    else:
        channel, encode = STATUS_CHANNEL.format(server_id=server_id), status_messages
        backlog = 0
    wire = wire_of(websocket)
    viewer = Viewer(wire, encode, limit=app.state.settings.websocket_queue_size)

    async def leave() -> None:
        await hub.detach(channel, viewer, kind=kind)
        viewer.stop()

    async def follow() -> bool:
        await hub.attach(channel, viewer, kind=kind)
        handed_off = False
        try:
            viewer.go_live(
                await _send_backlog(websocket, socket, server_id, backlog) if backlog else None
            )
            detached = detachable(wire)
            if detached is not None:
                handoff = Handoff(
                    detached, socket, viewer, app.state.principals, answer=answer, leave=leave
                )
                handed_off = handoff.start()
            if not handed_off:
                await _answer_each(websocket, answer)
            return handed_off
        finally:
            if not handed_off:
                await leave()

    await serve_inline(websocket, socket, follow(), viewer.ended)


async def _answer_each(websocket: WebSocket, answer: Answer) -> None:
    """Behind a server with nothing to detach from: read and answer in this call."""
    while True:
        reply = await answer(await websocket.receive_text())
        if reply is not None:
            await websocket.send_text(reply)


async def _answer_command(
    app: Any, socket: WatchedSocket, server_id: uuid.UUID, text: str
) -> str | None:
    """A typed command: it counts in the console rate limit, and the user is checked first.
    None once the socket must close (its watch then closes it)."""
    if refusal := await refused(app, socket):
        return refusal
    try:
        message = json.loads(text)
        command = message["command"] if isinstance(message, dict) else None
        if not isinstance(command, str):
            raise ValueError
    except (ValueError, KeyError):
        return json.dumps({"type": "error", "status": 422, "detail": 'send {"command": "..."}'})
    if not await socket.recheck():
        return None
    limiter: RateLimiter | None = app.state.limiter
    try:
        if limiter is not None:
            await limiter.hit("console", user_key(socket.principal.user_id))
        sent = await app.state.bus.handle(
            SendConsoleCommand(
                actor=socket.principal, server_id=server_id, command=command, via="websocket"
            )
        )
    except DomainError as exc:
        return error_reply(exc)
    return json.dumps({"type": "sent", "command": sent})


@router.websocket("/api/v2/ws/servers/{server_id}/console")
@router.websocket("/ws/servers/{server_id}/console")
async def console_socket(websocket: WebSocket, server_id: uuid.UUID) -> None:
    socket = await _open(websocket, server_id, Permission.SERVER_CONSOLE)
    if socket is not None:
        answer = functools.partial(_answer_command, websocket.app, socket, server_id)
        await _watch(websocket, socket, server_id, "console", answer)


@router.websocket("/api/v2/ws/servers/{server_id}/logs")
@router.websocket("/ws/servers/{server_id}/logs")
async def logs_socket(websocket: WebSocket, server_id: uuid.UUID) -> None:
    socket = await _open(websocket, server_id, Permission.SERVER_READ)
    if socket is not None:
        answer = functools.partial(watch_only, websocket.app, socket)
        await _watch(websocket, socket, server_id, "console", answer)


@router.websocket("/api/v2/ws/servers/{server_id}/status")
@router.websocket("/ws/servers/{server_id}/status")
async def status_socket(websocket: WebSocket, server_id: uuid.UUID) -> None:
    socket = await _open(websocket, server_id, Permission.SERVER_READ)
    if socket is not None:
        answer = functools.partial(watch_only, websocket.app, socket)
        await _watch(websocket, socket, server_id, "status", answer)
