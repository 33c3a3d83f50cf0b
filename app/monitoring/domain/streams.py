"""Server-sent event streams: what one carries, and the console feed it follows.

Each item has an id a client sends back as `Last-Event-ID` when it reconnects; a stream that
cannot resume from that id says so first with a `reset` item (its reason), then starts from
where it can: now, or the oldest line it still holds.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamItem:
    event: str
    data: str
    id: str | None = None


def stream_id(value: str) -> tuple[int, int] | None:
    """A Redis stream id ("ms-seq", or "ms"), or None if it is not one."""
    millis, _, seq = value.strip().partition("-")
    if not millis.isdigit() or (seq and not seq.isdigit()) or len(value) > 41:
        return None
    return int(millis), int(seq or 0)


class ConsoleFeed(Protocol):
    def follow(
        self, server_id: uuid.UUID, *, last_event_id: str | None, backlog: int
    ) -> AsyncIterator[StreamItem]:
        """Lines after `last_event_id` (or the last `backlog` lines), then live lines."""
        ...
