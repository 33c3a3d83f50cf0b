"""The servers context as files sees it, reached through the message bus."""

from __future__ import annotations

import asyncio
import uuid

from app.files.domain.ports import ServerAccess
from app.servers.application.messages import GetServer, MarkRestartRequired
from app.servers.domain.properties import managed_properties, parse_properties
from app.shared.bus import MessageBus
from app.shared.security import Principal


class BusServers:
    """Visibility comes from `GetServer` (others' servers are 404), the flag from a command."""

    def __init__(self, bus: MessageBus) -> None:
        self._bus = bus

    async def visible(self, actor: Principal, server_id: uuid.UUID) -> ServerAccess:
        server = await self._bus.handle(GetServer(actor=actor, server_id=server_id))
        return ServerAccess(
            server_id=server.id,
            node=server.node,
            active=server.is_active,
            managed_properties=managed_properties(server.config, server.port),
        )

    async def mark_restart_required(self, server_id: uuid.UUID, changed_file: str) -> bool:
        return await self._bus.handle(
            MarkRestartRequired(server_id=server_id, changed_file=changed_file)
        )

    async def managed_overrides(self, access: ServerAccess, content: bytes) -> tuple[str, ...]:
        """Every start rewrites these keys from the server's settings, so say so now (parsed
        off the event loop: a 1 MiB file takes a tenth of a second)."""
        found = await asyncio.to_thread(parse_properties, content.decode("utf-8", "replace"))
        return tuple(
            f"{key}={found[key]} will be reset to {key}={value} at the next start: the dashboard "
            f"manages {key} (change it with PUT /api/v2/servers/{access.server_id})"
            for key, value in access.managed_properties.items()
            if key in found and found[key] != value
        )
