"""Server-sent event streams (`text/event-stream`): a server's console and status.

Authentication is the sockets' (app/shared/websockets.py open_stream): `Authorization: Bearer`
or a one-use `?ticket=` for EventSource. Every event has an `id:`; a client reconnecting with
`Last-Event-ID` resumes after it, and a stream that cannot says so with an event `reset`.
EventSource's own reconnect sends the header, but its ticket is spent: a client that opens a new
EventSource with a new ticket passes the id it saw last as `?last_event_id=` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from app.monitoring.application.streams import FollowConsole
from app.monitoring.domain.streams import StreamItem
from app.monitoring.infrastructure.streams import STATUS_CHANNEL
from app.servers.application.messages import GetServer, GetServerStatus
from app.shared.domain import DomainError
from app.shared.openapi import problems
from app.shared.principals import PrincipalWatch, WatchedSocket
from app.shared.realtime import PubSubHub
from app.shared.security import Permission, Principal
from app.shared.websockets import Visible, open_stream

router = APIRouter(prefix="/api/v2", tags=["streams"])

HEARTBEAT_SECONDS = 15.0
RETRY_MS = 3000
EVENT_STREAM = {"text/event-stream": {"schema": {"type": "string"}}}
STREAM_PROBLEMS = problems(
    {
        401: "no valid token or ticket",
        403: "the role lacks the permission",
        404: "no such server, or not one the user may see",
        429: "too many streams opened",
    }
)
MAX_EVENT_ID = 200


def resume_from(
    header: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            max_length=MAX_EVENT_ID,
            description="The id of the last event seen (an EventSource sends it on reconnect)",
        ),
    ] = None,
    query: Annotated[
        str | None,
        Query(
            alias="last_event_id",
            max_length=MAX_EVENT_ID,
            description="The id of the last event seen, for a new EventSource (which sends no "
            "Last-Event-ID): a reconnect with a new ticket; the Last-Event-ID header wins",
        ),
    ] = None,
) -> str | None:
    """Where a client resumes: the `Last-Event-ID` header, else the `last_event_id` parameter."""
    return header if header is not None else query


LastEventId = Annotated[str | None, Depends(resume_from)]


def frame(item: StreamItem) -> str:
    """One event: `id:`, `event:`, and `data:` lines (one per line of the data), then a blank."""
    lines = [f"id: {item.id}"] if item.id is not None else []
    lines.append(f"event: {item.event}")
    lines.extend(f"data: {part}" for part in item.data.split("\n"))
    return "\n".join(lines) + "\n\n"


def event_stream(
    request: Request, socket: WatchedSocket, items: AsyncIterator[StreamItem]
) -> StreamingResponse:
    """Frames the items, with a comment every HEARTBEAT_SECONDS of silence; ends with `end`
    when the principal's watch ends the stream (logout, disabled, role change, expiry)."""
    watch: PrincipalWatch = request.app.state.principals

    async def body() -> AsyncIterator[str]:
        pending: asyncio.Future[StreamItem] | None = None
        try:
            yield f"retry: {RETRY_MS}\n\n"
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(items))
                waiting: set[asyncio.Future[Any]] = {pending, socket.ended}
                done, _ = await asyncio.wait(
                    waiting,
                    timeout=HEARTBEAT_SECONDS,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if socket.ended in done:
                    code, reason = socket.ended.result()
                    yield frame(
                        StreamItem(event="end", data=json.dumps({"code": code, "reason": reason}))
                    )
                    return
                if pending not in done:
                    yield ": heartbeat\n\n"
                    continue
                try:
                    item = pending.result()
                except StopAsyncIteration:
                    return
                pending = None
                yield frame(item)
        finally:
            watch.close(socket)
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
            with contextlib.suppress(Exception):
                await items.aclose()  # type: ignore[attr-defined]

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


def server_visible(request: Request, server_id: uuid.UUID) -> Visible:
    async def visible(principal: Principal) -> bool:
        try:
            await request.app.state.bus.handle(GetServer(actor=principal, server_id=server_id))
        except DomainError:
            return False
        return True

    return visible


@router.get(
    "/servers/{server_id}/console/stream",
    summary="A server's console lines as server-sent events (id: the Redis stream id)",
    response_class=StreamingResponse,
    responses={200: {"content": EVENT_STREAM}, **STREAM_PROBLEMS},
)
async def console_stream(
    request: Request, server_id: uuid.UUID, last_event_id: LastEventId
) -> StreamingResponse:
    socket = await open_stream(
        request, Permission.SERVER_READ, visible=server_visible(request, server_id)
    )
    try:
        items = await request.app.state.bus.handle(
            FollowConsole(
                actor=socket.principal,
                server_id=server_id,
                last_event_id=last_event_id,
                backlog=request.app.state.settings.console_backlog_lines,
            )
        )
    except BaseException:
        request.app.state.principals.close(socket)
        raise
    return event_stream(request, socket, items)


def _status_id(data: dict[str, Any]) -> int:
    sampled = data.get("sampled_at")
    return int(float(sampled) * 1000) if isinstance(sampled, int | float) else 0


async def _status_items(
    request: Request, socket: WatchedSocket, server_id: uuid.UUID, last_event_id: str | None
) -> AsyncIterator[StreamItem]:
    """The current status, then each sample; ids are `sampled_at` in ms, never repeated."""
    app = request.app
    hub: PubSubHub = app.state.hub
    subscription = await hub.subscribe(
        STATUS_CHANNEL.format(server_id=server_id),
        size=app.state.settings.websocket_queue_size,
        kind="status",
    )
    try:
        last = 0
        if last_event_id is not None:
            if last_event_id.isdigit() and len(last_event_id) < 17:
                last = int(last_event_id)
            else:
                reason = "Last-Event-ID is not a status id; from the current status"
                yield StreamItem(event="reset", data=json.dumps({"reason": reason}))
        view = await app.state.bus.handle(
            GetServerStatus(actor=socket.principal, server_id=server_id)
        )
        current: dict[str, Any] = {"state": view.state, "status_message": view.status_message}
        if view.runtime is not None:
            current.update({k: getattr(view.runtime, k) for k in view.runtime.__dataclass_fields__})
            current["state"] = view.state
            current["players"] = list(view.runtime.players)
        current_id = _status_id(current)
        if current_id == 0 or current_id > last:
            last = max(last, current_id)
            ident = str(last) if current_id else None
            yield StreamItem(id=ident, event="status", data=json.dumps(current))
        while True:
            data = await subscription.next()
            if data is None:
                reason = "viewer fell behind; reconnect"
                yield StreamItem(event="end", data=json.dumps({"code": 4008, "reason": reason}))
                return
            sample_id = _status_id(json.loads(data))
            if sample_id <= last:
                continue
            last = sample_id
            yield StreamItem(id=str(sample_id), event="status", data=data)
    finally:
        await hub.unsubscribe(subscription, kind="status")


@router.get(
    "/servers/{server_id}/status/stream",
    summary="A server's status samples as server-sent events (id: sampled_at in ms)",
    response_class=StreamingResponse,
    responses={200: {"content": EVENT_STREAM}, **STREAM_PROBLEMS},
)
async def status_stream(
    request: Request, server_id: uuid.UUID, last_event_id: LastEventId
) -> StreamingResponse:
    socket = await open_stream(
        request, Permission.SERVER_READ, visible=server_visible(request, server_id)
    )
    return event_stream(request, socket, _status_items(request, socket, server_id, last_event_id))
