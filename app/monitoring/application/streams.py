"""Server-sent event streams of the monitoring context: following a server's console."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from app.monitoring.domain.streams import ConsoleFeed, StreamItem
from app.servers.application.messages import GetServer
from app.shared.bus import MessageBus, Query
from app.shared.domain import DomainEvent
from app.shared.security import Principal
from app.shared.wiring import Handler


@dataclass(frozen=True, slots=True, kw_only=True)
class FollowConsole(Query[AsyncIterator[StreamItem]]):
    actor: Principal
    server_id: uuid.UUID
    last_event_id: str | None
    backlog: int


async def handle_follow_console(
    query: FollowConsole, *, bus: MessageBus, console_feed: ConsoleFeed
) -> AsyncIterator[StreamItem]:
    """404 for a server the actor may not see, before anything is streamed."""
    await bus.handle(GetServer(actor=query.actor, server_id=query.server_id))
    return console_feed.follow(
        query.server_id, last_event_id=query.last_event_id, backlog=query.backlog
    )


MESSAGES: dict[type[Any], Handler] = {FollowConsole: handle_follow_console}
EVENT_HANDLERS: list[tuple[type[DomainEvent], Handler]] = []
