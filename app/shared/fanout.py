"""Live feeds for WebSocket viewers: each message encoded once, pushed to every viewer in turn.

The hub (app/shared/realtime.py) hands each batch of a channel to every `Viewer` of it. A
viewer turns the batch into messages through its encoder, once per batch however many viewers
share it (`Batch.encoded`), and pushes them down its `Wire` without waiting: no task and no
queue per viewer while it keeps up. Behind uvicorn the wire is the connection itself
(app/shared/wsprotocol.py), which also writes one frame's bytes for every viewer with the same
deflate settings; behind another ASGI server it is a `QueuedWire`: a bounded queue and a task.
A viewer that falls `limit` messages behind is dropped with 4008, and only that viewer waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

import structlog
from fastapi import WebSocket, WebSocketDisconnect
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode

from app.shared.realtime import DROPPED, Batch
from app.shared.websockets import TOO_SLOW

log = structlog.get_logger(__name__)

FANOUT_EXTENSION = "mcdash.fanout"
"""The ASGI scope extension through which a server hands the app a connection's Wire."""

Encoder = Callable[[Sequence[str]], "tuple[SharedText, ...]"]
"""A channel's published messages -> the text messages a viewer is sent."""
Skip = Callable[[Batch], "Batch | None"]
"""What a batch leaves for one viewer (None: nothing); the viewer stops asking once it is all."""


@functools.cache
def _deflate(window_bits: int) -> PerMessageDeflate:
    """A compressor without context takeover: every message on its own, so any viewer reads it."""
    return PerMessageDeflate(True, True, window_bits, window_bits, {"memLevel": 5})


class SharedText:
    """One text message for many viewers, serialized once per wire variant."""

    __slots__ = ("_frames", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._frames: dict[int | None, bytes] = {}

    def frame(self, variant: int | None) -> bytes:
        """The frame's bytes: plain (None) or deflated with `variant` window bits."""
        frame = self._frames.get(variant)
        if frame is None:
            extensions = [_deflate(variant)] if variant else None
            frame = Frame(Opcode.TEXT, self.text.encode()).serialize(
                mask=False, extensions=extensions
            )
            self._frames[variant] = frame
        return frame


class Wire(Protocol):
    def push(self, message: SharedText, *, limit: int) -> bool:
        """Send or hold `message` without waiting; False if `limit` are held already."""
        ...

    def drop(self, code: int, reason: str) -> None:
        """Close the socket with `code` without waiting."""
        ...


class Inbox(Protocol):
    """What a detached connection hands on: each message the viewer sends, and its end."""

    def receive(self, message: str | bytes) -> None:
        """A message; the connection reads no more until the inbox calls its `resume`."""
        ...

    def gone(self) -> None:
        """The connection is closed."""
        ...


class Detachable(Wire, Protocol):
    """A wire that can outlive the socket's ASGI call (app/shared/wsprotocol.py)."""

    def detach(self, inbox: Inbox) -> bool: ...

    def resume(self) -> None: ...


class QueuedWire:
    """A wire over plain ASGI sends: a bounded queue and the task that sends it."""

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket
        self._queue: deque[SharedText] = deque()
        self._ready = asyncio.Event()
        self._task = asyncio.create_task(self._send())

    def push(self, message: SharedText, *, limit: int) -> bool:
        if len(self._queue) >= limit:
            return False
        self._queue.append(message)
        self._ready.set()
        return True

    def drop(self, code: int, reason: str) -> None:
        """Stop sending; the socket's serve closes it with the code the viewer ended with."""
        self.stop()

    def stop(self) -> None:
        self._queue.clear()
        self._task.cancel()

    async def _send(self) -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                while not self._queue:
                    self._ready.clear()
                    await self._ready.wait()
                await self._websocket.send_text(self._queue.popleft().text)


def wire_of(websocket: WebSocket) -> Wire:
    """The connection itself when the server offers the fan-out extension; else a QueuedWire."""
    extension = (websocket.scope.get("extensions") or {}).get(FANOUT_EXTENSION)
    if extension is not None:
        wire: Wire = extension["wire"]
        return wire
    return QueuedWire(websocket)


class Viewer:
    """One socket's live feed: held while its backlog is sent, then pushed as batches come."""

    __slots__ = ("_encode", "_held", "_limit", "_skip", "ended", "wire")

    def __init__(self, wire: Wire, encode: Encoder, *, limit: int) -> None:
        self.wire = wire
        self._encode = encode
        self._limit = limit
        self._held: list[Batch] | None = []
        self._skip: Skip | None = None
        self.ended: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        """Resolves to (4008, reason) when the viewer is dropped for falling behind."""

    def deliver(self, batch: Batch) -> None:
        if self.ended.done():
            return
        if self._held is not None:
            if len(self._held) >= self._limit:
                self._drop()
            else:
                self._held.append(batch)
            return
        self._push(batch)

    def go_live(self, skip: Skip | None = None) -> None:
        """Push what was held, in order, then every batch as it comes.

        `skip` trims the first batches for this viewer alone (what its backlog already showed).
        """
        held, self._held = self._held or [], None
        self._skip = skip
        for batch in held:
            if self.ended.done():
                return
            self._push(batch)

    def send(self, message: SharedText) -> None:
        """One message for this viewer alone (a reply), behind what was pushed before it."""
        if not self.ended.done():
            self._send((message,))

    def stop(self) -> None:
        if isinstance(self.wire, QueuedWire):
            self.wire.stop()

    def _push(self, batch: Batch) -> None:
        if self._skip is None:
            self._send(batch.encoded(self._encode))
            return
        trimmed = self._skip(batch)
        if trimmed is None:
            return
        self._skip = None
        self._send(trimmed.encoded(self._encode))

    def _send(self, messages: tuple[SharedText, ...]) -> None:
        for message in messages:
            if not self.wire.push(message, limit=self._limit):
                self._drop()
                return

    def _drop(self) -> None:
        DROPPED.inc()
        reason = "viewer fell behind; reconnect"
        self.ended.set_result((TOO_SLOW, reason))
        self._held = None
        try:
            self.wire.drop(TOO_SLOW, reason)
        except Exception:
            log.warning("websocket_drop_failed", exc_info=True)
