"""The servers context as files sees it, reached through the message bus."""

from __future__ import annotations

import uuid

from app.files.domain.ports import ServerAccess
from app.servers.application.messages import GetServer, MarkRestartRequired
from app.shared.bus import MessageBus
from app.shared.security import Principal


class BusServers:
    """Visibility comes from `GetServer` (others' servers are 404), the flag from a command."""

    def __init__(self, bus: MessageBus) -> None:
        self._bus = bus

    async def visible(self, actor: Principal, server_id: uuid.UUID) -> ServerAccess:
        server = await self._bus.handle(GetServer(actor=actor, server_id=server_id))
        return ServerAccess(server_id=server.id, active=server.is_active)

    async def mark_restart_required(self, server_id: uuid.UUID, changed_file: str) -> bool:
        return await self._bus.handle(
            MarkRestartRequired(server_id=server_id, changed_file=changed_file)
        )
