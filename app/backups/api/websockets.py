"""`/api/v2/ws/notifications`: backup progress and outcomes for the servers the user may see."""

from __future__ import annotations

import json
import uuid

from fastapi import APIRouter, WebSocket

from app.backups.infrastructure.progress import NOTIFICATIONS_CHANNEL
from app.servers.api.websockets import (
    FORBIDDEN,
    TOO_SLOW,
    UNAUTHORIZED,
    _authenticate,
    _drain,
    _serve,
)
from app.servers.application.messages import GetServer
from app.shared.domain import DomainError
from app.shared.realtime import PubSubHub
from app.shared.security import Permission, Principal

router = APIRouter(tags=["websockets"])


class _Visibility:
    """Caches, per connection, whether the viewer may see a server's backups."""

    def __init__(self, websocket: WebSocket, principal: Principal) -> None:
        self._websocket = websocket
        self._principal = principal
        self._known: dict[str, bool] = {}

    async def allows(self, server_id: str) -> bool:
        if self._principal.sees_everything():
            return True
        if server_id not in self._known:
            try:
                await self._websocket.app.state.bus.handle(
                    GetServer(actor=self._principal, server_id=uuid.UUID(server_id))
                )
                self._known[server_id] = True
            except (DomainError, ValueError):
                self._known[server_id] = False
        return self._known[server_id]


async def _forward(websocket: WebSocket, principal: Principal) -> None:
    app = websocket.app
    hub: PubSubHub = app.state.hub
    subscription = await hub.subscribe(
        NOTIFICATIONS_CHANNEL, size=app.state.settings.websocket_queue_size, kind="notifications"
    )
    visibility = _Visibility(websocket, principal)
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
    try:
        principal, subprotocol = await _authenticate(websocket)
    except DomainError as exc:
        await websocket.accept()
        await websocket.close(code=UNAUTHORIZED, reason=exc.detail[:120])
        return
    await websocket.accept(subprotocol=subprotocol)
    if not principal.has(Permission.BACKUP_READ):
        await websocket.close(code=FORBIDDEN, reason=f"needs {Permission.BACKUP_READ.value}")
        return
    await _serve(websocket, _forward(websocket, principal), _drain(websocket))
