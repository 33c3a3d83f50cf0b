"""Whether a viewer may see a server's messages, asked once per server and connection."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from app.servers.application.messages import GetServer
from app.shared.bus import MessageBus
from app.shared.domain import DomainError
from app.shared.security import Principal


class ServerVisibility:
    """Caches, per connection, the servers the viewer may see; forgotten when the viewer's
    principal changes (a role change re-authenticates it)."""

    def __init__(self, bus: MessageBus, principal: Callable[[], Principal]) -> None:
        self._bus = bus
        self._current = principal
        self._principal: Principal | None = None
        self._known: dict[str, bool] = {}

    async def allows(self, server_id: str) -> bool:
        principal = self._current()
        if principal is not self._principal:
            self._principal, self._known = principal, {}
        if principal.sees_everything():
            return True
        if server_id not in self._known:
            try:
                await self._bus.handle(GetServer(actor=principal, server_id=uuid.UUID(server_id)))
                self._known[server_id] = True
            except (DomainError, ValueError):
                self._known[server_id] = False
            if len(self._known) > 10_000:
                self._known.clear()
        return self._known.get(server_id, False)
