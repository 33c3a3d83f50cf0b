"""uvicorn's WebSocket protocol, made for fan-out: shared frames pushed without a task per viewer.

Two changes to uvicorn's websockets (sans-I/O) implementation:

- permessage-deflate is negotiated without context takeover either way. Each message is then
  compressed on its own, so one compressed frame serves every viewer that negotiated the same
  window, and a connection keeps no zlib state between messages (uvicorn's default keeps a
  compressor and a decompressor per connection: about 45 KB a viewer).
- The app can push a `SharedText` (app/shared/fanout.py) synchronously, through the ASGI scope
  extension `mcdash.fanout`: the frame is encoded once for all viewers and written to the
  transport. While the transport is paused (the viewer reads slower than it is sent to) the
  messages wait in a bounded queue; a push refused because that queue is full tells the caller
  to drop the viewer, which it does with `drop()` (a close frame, no waiting).
- A live viewer's connection can be detached from its ASGI call (`detach`, app/shared/handoff.py):
  the call returns, its task and everything it held (middleware frames, exit stacks, the
  receive queue, the scope) go, and the connection stays open, handing what the viewer sends
  to an `Inbox` one message at a time (reading pauses until the inbox asks for more).

Everything else (handshake, receive, keepalive, ASGI sends) is uvicorn's.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from uvicorn._types import ASGISendEvent
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.protocol import State
from websockets.server import ServerProtocol

from app.shared.fanout import FANOUT_EXTENSION, Inbox, SharedText

if TYPE_CHECKING:
    from websockets.http11 import Request

WINDOW_BITS = 12
"""Both directions' deflate window: 4 KB, and only for the message being compressed."""
DROP_GRACE_SECONDS = 5.0
"""How long a dropped viewer has to read its close frame before the connection is cut."""


class _Unread:
    """The receive queue of a detached connection: nobody reads it, so nothing is kept."""

    __slots__ = ()

    def put_nowait(self, _: object) -> None:
        pass

    def empty(self) -> bool:
        return True


_UNREAD: Any = _Unread()


def deflate_factory() -> ServerPerMessageDeflateFactory:
    return ServerPerMessageDeflateFactory(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=WINDOW_BITS,
        client_max_window_bits=WINDOW_BITS,
        compress_settings={"memLevel": 5},
    )


class FanoutWebSocketProtocol(WebSocketsSansIOProtocol):
    """One viewer's connection; `push` writes a shared frame, `drop` closes without waiting."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.config.ws_per_message_deflate:
            self.conn = ServerProtocol(
                extensions=[deflate_factory()],
                max_size=self.config.ws_max_size,
                logger=logging.getLogger("uvicorn.error"),
            )
        self.variant: int | None = None
        """The negotiated deflate window bits, or None for plain frames: what a frame depends on."""
        self.waiting: deque[SharedText] | None = None
        """Pushed messages held while the transport is paused; None while it is not."""
        self.inbox: Inbox | None = None
        """Where a detached connection's messages go; None while its ASGI call reads them."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if self.response.status_code != 101:
            return
        deflate = [e for e in self.conn.extensions if isinstance(e, PerMessageDeflate)]
        self.variant = deflate[0].local_max_window_bits if deflate else None
        self.scope["extensions"][FANOUT_EXTENSION] = {"wire": self}

    def push(self, message: SharedText, *, limit: int) -> bool:
        """Send `message` or hold it; False if `limit` messages are held already (too slow)."""
        if self.close_sent or self.disconnected or self.conn.state is not State.OPEN:
            return True
        if self.waiting is not None:
            if len(self.waiting) >= limit:
                return False
            self.waiting.append(message)
            return True
        self.transport.write(message.frame(self.variant))
        return True

    def drop(self, code: int, reason: str) -> None:
        """Close now: the close frame follows what is already written, held messages are not."""
        self.waiting = None
        if self.close_sent or self.disconnected or self.conn.state is not State.OPEN:
            return
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(DROP_GRACE_SECONDS, self.transport.abort)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.waiting is None:
            self.waiting = deque()

    def resume_writing(self) -> None:
        super().resume_writing()
        waiting, self.waiting = self.waiting, None
        while waiting:
            self.transport.write(waiting.popleft().frame(self.variant))
            if self.waiting is not None:  # paused again by that write
                self.waiting.extendleft(reversed(waiting))
                return

    def detach(self, inbox: Inbox) -> bool:
        """Outlive the ASGI call: keep the connection open once it returns, and hand `inbox`
        what the viewer sends from now on. False if the connection is closing already."""
        if self.close_sent or self.disconnected or self.conn.state is not State.OPEN:
            return False
        queued, self.queue = self.queue, _UNREAD
        self.inbox = inbox
        forwarded = False
        while not queued.empty():  # sent before the call stopped reading: the inbox's now
            event = queued.get_nowait()
            if event["type"] == "websocket.receive":
                text = event.get("text")
                inbox.receive(text if text is not None else event.get("bytes") or b"")
                forwarded = True
        if not forwarded:
            self.resume()
        return True

    def resume(self) -> None:
        """Read again: the inbox is done with what it was handed."""
        if self.read_paused and not self.disconnected:
            self.read_paused = False
            self.transport.resume_reading()

    def send_receive_event_to_app(self) -> None:
        inbox = self.inbox
        if inbox is None:
            super().send_receive_event_to_app()
            return
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.close_sent:
            return
        if self.curr_msg_data_type == "text":
            try:
                message: str | bytes = data.decode()
            except UnicodeDecodeError:
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
        else:
            message = data
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()
        inbox.receive(message)

    async def run_asgi(self) -> None:
        """uvicorn's, except that a connection detached by the app stays open after the call."""
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            self.send_500_response()
        else:
            if not self.handshake_complete:
                self.logger.error("ASGI callable returned without completing handshake.")
                self.send_500_response()
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
        if self.inbox is not None:
            del self.scope  # what the call was given: the inbox keeps what it needs
        elif self.close_timer is None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.waiting = None
        super().connection_lost(exc)
        inbox, self.inbox = self.inbox, None
        if inbox is not None:
            inbox.gone()

    async def send(self, message: ASGISendEvent) -> None:
        """uvicorn's, except that a message sent after `drop` is a disconnect, not an error."""
        if self.close_sent and message["type"] in ("websocket.send", "websocket.close"):
            raise ClientDisconnected
        await super().send(message)
        if message["type"] == "websocket.accept" and hasattr(self, "response"):
            del self.request, self.response  # the handshake's headers: not needed once open
