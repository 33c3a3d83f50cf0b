"""Notifications (monitoring): the stored list, read marks, and the live socket and stream.

`/api/v2/ws/notifications` and `GET /api/v2/notifications/stream` carry the user's own
notifications (pushed on their channel once stored) and the backup and restore progress of the
servers they may see (published by nodes on `notifications:backups`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, WebSocket
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from app.monitoring.api import sockets_metrics, streams
from app.monitoring.api.streams import STREAM_PROBLEMS, LastEventId, event_stream
from app.monitoring.application.notifications import (
    ListNotifications,
    ListNotificationsAfter,
    MarkAllNotificationsRead,
    MarkNotificationRead,
)
from app.monitoring.application.notifications_visibility import ServerVisibility
from app.monitoring.domain.notifications import NotificationView
from app.monitoring.domain.streams import StreamItem
from app.monitoring.infrastructure.notifications import BACKUPS_CHANNEL, USER_CHANNEL
from app.settings import Settings
from app.shared.agent import NodeTokens
from app.shared.dependencies import BusDep, require
from app.shared.openapi import problems
from app.shared.principals import WatchedSocket
from app.shared.realtime import PubSubHub, Subscription
from app.shared.security import Permission, Principal
from app.shared.websockets import TOO_SLOW, drain, open_socket, open_stream, serve

router = APIRouter(prefix="/api/v2", tags=["notifications"])
sockets = APIRouter(tags=["websockets"])
Reader = Annotated[Principal, Depends(require(Permission.SERVER_READ))]
PERMISSION = Permission.SERVER_READ  # every role: what each user sees is filtered per user
_REPLAY_PAGE = 200


class NotificationResponse(BaseModel):
    id: uuid.UUID
    created_at: datetime
    type: str
    severity: str
    title: str
    body: str
    server_id: uuid.UUID | None
    data: dict[str, Any]
    read_at: datetime | None

    @classmethod
    def of(cls, view: NotificationView) -> NotificationResponse:
        return cls(**{k: getattr(view, k) for k in cls.model_fields})


class NotificationPageResponse(BaseModel):
    items: list[NotificationResponse]
    unread: int
    next_before: uuid.UUID | None


class ReadAllResponse(BaseModel):
    marked: int


@router.get("/notifications", summary="The user's notifications, newest first")
async def list_notifications(
    actor: Reader,
    bus: BusDep,
    unread: bool = False,
    before: Annotated[uuid.UUID | None, Query(description="next_before of the last page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> NotificationPageResponse:
    page = await bus.handle(
        ListNotifications(actor=actor, unread_only=unread, before=before, limit=limit)
    )
    return NotificationPageResponse(
        items=[NotificationResponse.of(v) for v in page.items],
        unread=page.unread,
        next_before=page.next_before,
    )


@router.post(
    "/notifications/{notification_id}/read",
    summary="Mark one notification read",
    responses=problems({404: "no such notification of this user"}),
)
async def mark_read(notification_id: uuid.UUID, actor: Reader, bus: BusDep) -> NotificationResponse:
    view = await bus.handle(MarkNotificationRead(actor=actor, notification_id=notification_id))
    return NotificationResponse.of(view)


@router.post("/notifications/read-all", summary="Mark every notification of the user read")
async def mark_all_read(actor: Reader, bus: BusDep) -> ReadAllResponse:
    return ReadAllResponse(marked=await bus.handle(MarkAllNotificationsRead(actor=actor)))


async def _subscribe(app: Any, principal: Principal) -> tuple[Subscription, Subscription]:
    hub: PubSubHub = app.state.hub
    size = app.state.settings.websocket_queue_size
    own = await hub.subscribe(
        USER_CHANNEL.format(user_id=principal.user_id), size=size, kind="notifications"
    )
    backups = await hub.subscribe(BACKUPS_CHANNEL, size=size, kind="notifications")
    return own, backups


async def _unsubscribe(app: Any, *subscriptions: Subscription) -> None:
    for subscription in subscriptions:
        await app.state.hub.unsubscribe(subscription, kind="notifications")


async def _merged(
    app: Any, socket: WatchedSocket, own: Subscription, backups: Subscription
) -> AsyncIterator[tuple[str, str] | None]:
    """("own" | "backup", data) from both channels; None once either viewer fell behind.
    Backup messages are only those of servers the principal may see."""
    visibility = ServerVisibility(app.state.bus, lambda: socket.principal)
    tasks = {"own": None, "backup": None}
    sources = {"own": own, "backup": backups}
    running: dict[str, asyncio.Future[str | None]] = {}
    try:
        while True:
            for name in tasks:
                if name not in running:
                    running[name] = asyncio.ensure_future(sources[name].next())
            done, _ = await asyncio.wait(running.values(), return_when=asyncio.FIRST_COMPLETED)
            for name, task in list(running.items()):
                if task not in done:
                    continue
                del running[name]
                data = task.result()
                if data is None:
                    yield None
                    return
                if name == "backup":
                    server_id = str(json.loads(data).get("server_id", ""))
                    if not await visibility.allows(server_id):
                        continue
                yield name, data
    finally:
        for task in running.values():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


async def _forward(websocket: WebSocket, socket: WatchedSocket) -> None:
    app = websocket.app
    own, backups = await _subscribe(app, socket.principal)
    try:
        async for message in _merged(app, socket, own, backups):
            if message is None:
                await websocket.close(code=TOO_SLOW, reason="viewer fell behind; reconnect")
                return
            await websocket.send_text(message[1])
    finally:
        await _unsubscribe(app, own, backups)


@sockets.websocket("/api/v2/ws/notifications")
async def notifications_socket(websocket: WebSocket) -> None:
    socket = await open_socket(websocket, PERMISSION)
    if socket is None:
        return
    await serve(websocket, socket, _forward(websocket, socket), drain(websocket, socket))


def _notification_item(notification: dict[str, Any]) -> StreamItem:
    return StreamItem(
        id=str(notification["id"]), event="notification", data=json.dumps(notification)
    )


async def _stream_items(
    request: Request, socket: WatchedSocket, last_event_id: str | None
) -> AsyncIterator[StreamItem]:
    """Subscribed first, then what was missed after Last-Event-ID, then live without repeats.

    Ids are the notifications' ids; progress events carry none (they are not kept)."""
    app = request.app
    own, backups = await _subscribe(app, socket.principal)
    replayed: set[str] = set()
    try:
        if last_event_id is not None:
            try:
                after: uuid.UUID | None = uuid.UUID(last_event_id)
            except ValueError:
                after = None
            missed = None
            while after is not None:
                missed = await app.state.bus.handle(
                    ListNotificationsAfter(actor=socket.principal, after=after, limit=_REPLAY_PAGE)
                )
                if missed is None:
                    break
                for view in missed:
                    replayed.add(str(view.id))
                    yield _notification_item(view.as_json())
                after = missed[-1].id if len(missed) == _REPLAY_PAGE else None
            if missed is None:
                reason = "Last-Event-ID is not a notification of yours (or it expired); from now"
                yield StreamItem(event="reset", data=json.dumps({"reason": reason}))
        async for message in _merged(app, socket, own, backups):
            if message is None:
                reason = "viewer fell behind; reconnect"
                yield StreamItem(event="end", data=json.dumps({"code": 4008, "reason": reason}))
                return
            source, data = message
            if source == "backup":
                parsed = json.loads(data)
                yield StreamItem(event=str(parsed.get("type", "backup")), data=data)
                continue
            notification = json.loads(data)["notification"]
            if notification["id"] in replayed:
                continue
            yield _notification_item(notification)
    finally:
        await _unsubscribe(app, own, backups)


@router.get(
    "/notifications/stream",
    summary="The user's notifications as server-sent events (id: the notification's id)",
    response_class=StreamingResponse,
    responses={200: {"content": streams.EVENT_STREAM}, **STREAM_PROBLEMS},
)
async def notifications_stream(request: Request, last_event_id: LastEventId) -> StreamingResponse:
    socket = await open_stream(request, PERMISSION)
    return event_stream(request, socket, _stream_items(request, socket, last_event_id))


def routers() -> list[APIRouter]:
    return [router, sockets, streams.router, sockets_metrics.router]


def node_routers(
    settings: Settings, tokens: NodeTokens, node: str, servers: Any
) -> list[APIRouter]:
    return []
