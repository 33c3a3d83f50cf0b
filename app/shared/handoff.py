"""A live viewer's socket once its ASGI call has returned: what is left of it is what it needs.

A console, log or status viewer spends its life waiting for lines the hub pushes to it. Kept in
its ASGI call, each waits in uvicorn's task with every middleware's frame, FastAPI's exit
stacks and a receive queue: about half of what a viewer costs. Once its backlog is sent, a
`Handoff` detaches the connection from the call (app/shared/wsprotocol.py) and keeps only the
viewer, its watched principal and how to answer what the viewer sends. It then does what the
call did:

- each message the viewer sends is answered in order by `answer` (a typed command, or the rate
  limit's error), in a task that lives while there is something to answer, run in the call's
  context (request id, actor), so it is logged and audited as before;
- the principal's watch ending the socket (4401, 4403) closes it with that code, and a viewer
  that falls behind is dropped with 4008;
- when the connection closes, however it does, the viewer leaves the hub and the watch.

Behind another ASGI server there is nothing to detach from, and the call keeps serving.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

from app.shared.fanout import Detachable, SharedText, Viewer, Wire
from app.shared.principals import PrincipalWatch, WatchedSocket

log = structlog.get_logger(__name__)

Answer = Callable[[str], Awaitable[str | None]]
"""A text message from the viewer -> the reply to send it, if any."""

UNSUPPORTED, POLICY, INTERNAL = 1003, 1008, 1011
PENDING_LIMIT = 64
"""Messages a viewer may send in one burst, before the first is answered."""

_leaving: set[asyncio.Task[None]] = set()
"""Viewers leaving the hub (a coroutine, and nothing else holds the task)."""


def detachable(wire: Wire) -> Detachable | None:
    return wire if hasattr(wire, "detach") else None  # type: ignore[return-value]


class Handoff:
    """One detached viewer: answers its messages, and leaves when its connection does."""

    __slots__ = (
        "_answer",
        "_answering",
        "_context",
        "_leave",
        "_over",
        "_pending",
        "_socket",
        "_viewer",
        "_watch",
        "_wire",
    )

    def __init__(
        self,
        wire: Detachable,
        socket: WatchedSocket,
        viewer: Viewer,
        watch: PrincipalWatch,
        *,
        answer: Answer,
        leave: Callable[[], Coroutine[Any, Any, None]],
    ) -> None:
        self._wire = wire
        self._socket = socket
        self._viewer = viewer
        self._watch = watch
        self._answer = answer
        self._leave = leave
        self._context = contextvars.copy_context()
        self._pending: deque[str] | None = None
        self._answering: asyncio.Task[None] | None = None
        self._over = False

    def start(self) -> bool:
        """Detach; False if the connection is closing already (the call then ends it)."""
        if not self._wire.detach(self):
            return False
        self._socket.ended.add_done_callback(self._ended)
        self._viewer.ended.add_done_callback(self._ended)
        return True

    def receive(self, message: str | bytes) -> None:
        if self._over:
            return
        if isinstance(message, bytes):
            self._close(UNSUPPORTED, "send text messages")
            return
        if self._pending is None:
            self._pending = deque()
        elif len(self._pending) >= PENDING_LIMIT:
            self._close(POLICY, "too many messages at once")
            return
        self._pending.append(message)
        if self._answering is None:
            self._answering = asyncio.create_task(self._answer_all(), context=self._context)

    def gone(self) -> None:
        self._finish()

    async def _answer_all(self) -> None:
        try:
            while self._pending and not self._over:
                reply = await self._answer(self._pending.popleft())
                if reply is not None and not self._over:
                    self._viewer.send(SharedText(reply))
        except Exception as exc:  # noqa: BLE001 - logged like the call's failures, then closed
            log.warning("websocket_failed", error=repr(exc))
            self._close(INTERNAL, "internal error")
        finally:
            self._answering, self._pending = None, None
            if not self._over:
                self._wire.resume()

    def _ended(self, ended: asyncio.Future[tuple[int, str]]) -> None:
        """The watch ended the socket (close with its code), or the viewer was dropped."""
        if ended is self._socket.ended and not self._over:
            self._wire.drop(*ended.result())
        self._finish()

    def _close(self, code: int, reason: str) -> None:
        self._wire.drop(code, reason)
        self._finish()

    def _finish(self) -> None:
        if self._over:
            return
        self._over = True
        self._socket.ended.remove_done_callback(self._ended)
        self._viewer.ended.remove_done_callback(self._ended)
        self._watch.close(self._socket)
        if self._answering is not None:
            self._answering.cancel()
        task = asyncio.get_running_loop().create_task(self._leave())
        _leaving.add(task)
        task.add_done_callback(_leaving.discard)
