"""The console feed of server-sent event streams: a server's Redis stream of console lines.

The keys are the servers context's (app/servers/infrastructure/runtime.py; a test checks they
match): monitoring may not import another context's infrastructure. Following is XRANGE after
the client's last id, then XREAD BLOCK from the last id sent, so a reconnecting client gets
every line after the one it saw, once. Lines trimmed from the stream (console_history_lines)
are detected with XINFO's max-deleted-entry-id.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from app.monitoring.domain.streams import StreamItem, stream_id

CONSOLE_STREAM = "server:{server_id}:console"
STATUS_CHANNEL = "server:{server_id}:status"
_BATCH = 500
Entries = list[tuple[str, dict[str, str]]]
_BLOCK_MS = 5000


def _line(entry_id: str, fields: dict[str, str]) -> StreamItem:
    data = {"id": entry_id, "line": fields.get("line", ""), "at": float(fields.get("at", 0))}
    return StreamItem(id=entry_id, event="line", data=json.dumps(data))


def _reset(reason: str, **extra: Any) -> StreamItem:
    return StreamItem(event="reset", data=json.dumps({"reason": reason, **extra}))


class RedisConsoleFeed:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def _info(self, key: str) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = await self._redis.xinfo_stream(key)
            return info
        except ResponseError:  # no such key: nothing was ever written, or it was forgotten
            return None

    async def follow(
        self, server_id: uuid.UUID, *, last_event_id: str | None, backlog: int
    ) -> AsyncIterator[StreamItem]:
        key = CONSOLE_STREAM.format(server_id=server_id)
        info = await self._info(key)
        newest = str(info["last-generated-id"]) if info else "0-0"
        cursor = newest
        if last_event_id is None:
            if backlog:
                rows = cast(Entries, await self._redis.xrevrange(key, count=backlog))
                for entry_id, fields in reversed(rows):
                    yield _line(entry_id, fields)
                if rows:
                    cursor = rows[0][0]
        else:
            wanted = stream_id(last_event_id)
            newest_id = stream_id(newest) or (0, 0)
            if wanted is None:
                yield _reset("Last-Event-ID is not a console line id; following from now")
            elif wanted > newest_id:
                yield _reset("Last-Event-ID is newer than any line; following from now")
            else:
                cursor = f"{wanted[0]}-{wanted[1]}"
                deleted = stream_id(str((info or {}).get("max-deleted-entry-id", "0-0")))
                if deleted is not None and deleted > wanted:
                    first = (info or {}).get("first-entry")
                    yield _reset(
                        "lines after Last-Event-ID were trimmed; from the oldest kept",
                        lost_up_to=f"{deleted[0]}-{deleted[1]}",
                        oldest=first[0] if first else None,
                    )
                while True:
                    rows = cast(
                        Entries, await self._redis.xrange(key, min=f"({cursor}", count=_BATCH)
                    )
                    for entry_id, fields in rows:
                        yield _line(entry_id, fields)
                    if rows:
                        cursor = rows[-1][0]
                    if len(rows) < _BATCH:
                        break
        while True:
            found = cast(
                list[tuple[str, Entries]],
                await self._redis.xread({key: cursor}, count=_BATCH, block=_BLOCK_MS),
            )
            for _, entries in found or ():
                for entry_id, fields in entries:
                    cursor = entry_id
                    yield _line(entry_id, fields)
