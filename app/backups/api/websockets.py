"""`/api/v2/ws/notifications`: backup progress and outcomes for the servers the user may see."""

from __future__ import annotations

import json
import uuid

from fastapi import APIRouter, WebSocket

from app.backups.infrastructure.progress import NOTIFICATIONS_CHANNEL
from app.servers.application.messages import GetServer
from app.shared.domain import DomainError
from app.shared.principals import WatchedSocket
from app.shared.realtime import PubSubHub
from app.shared.security import Permission, Principal
from app.shared.websockets import TOO_SLOW, drain, open_socket, serve

router = APIRouter(tags=["websockets"])


class _Visibility:
    """Caches, per connection, whether the viewer may see a server's backups; forgotten when the
    viewer's role changes."""

    def __init__(self, websocket: WebSocket, socket: WatchedSocket) -> None:
        self._websocket = websocket
        self._socket = socket
        self._principal: Principal | None = None
        self._known: dict[str, bool] = {}

    async def allows(self, server_id: str) -> bool:
        principal = self._socket.principal
        if principal is not self._principal:
            self._principal, self._known = principal, {}
        if principal.sees_everything():
            return True
        if server_id not in self._known:
            try:
                await self._websocket.app.state.bus.handle(
                    GetServer(actor=principal, server_id=uuid.UUID(server_id))
                )
                self._known[server_id] = True
            except (DomainError, ValueError):
                self._known[server_id] = False
        return self._known[server_id]


async def _forward(websocket: WebSocket, socket: WatchedSocket) -> None:
    app = websocket.app
    hub: PubSubHub = app.state.hub
    subscription = await hub.subscribe(
        NOTIFICATIONS_CHANNEL, size=app.state.settings.websocket_queue_size, kind="notifications"
    )
    visibility = _Visibility(websocket, socket)
    try:
        while True:
            data = await subscription.next()
            if data is None:
                await websocket.close(code=TOO_SLOW, reason="viewer fell behind; reconnect")
                return
            message = json.loads(data)
            if await visibility.allows(str(message.get("server_id", ""))):
                await websocket.send_text(data)
    finally:
        await hub.unsubscribe(subscription, kind="notifications")


@router.websocket("/api/v2/ws/notifications")
async def notifications_socket(websocket: WebSocket) -> None:
    socket = await open_socket(websocket, Permission.BACKUP_READ)
    if socket is None:
        return
    await serve(websocket, socket, _forward(websocket, socket), drain(websocket, socket))
