"""A request to a node agent whose body the API feeds chunk by chunk as it arrives from the
client: what the files and backups contexts stream to a node, never spooled or held whole.

The chunks pass through a bounded queue to one streamed request, so the API holds at most a
few of them; a node that refuses the body midway ends the next `write` with the node's error.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping

from httpx import Response

from app.shared.agent import AgentClient

QUEUED_CHUNKS = 4  # what an upload may hold in memory between the client and the node


class StreamedUpload:
    def __init__(
        self,
        agents: AgentClient,
        node: str,
        op: str,
        path: str,
        *,
        server: uuid.UUID,
        method: str = "PUT",
        params: Mapping[str, str | int] | None = None,
    ) -> None:
        self._agents = agents
        self._node = node
        self._op = op
        self._path = path
        self._server = server
        self._method = method
        self._params = params
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=QUEUED_CHUNKS)
        self._sending: asyncio.Task[Response] | None = None
        self.size = 0

    @property
    def started(self) -> bool:
        return self._sending is not None

    async def _body(self) -> AsyncIterator[bytes]:
        while (chunk := await self._queue.get()) is not None:
            yield chunk

    def _started(self) -> asyncio.Task[Response]:
        if self._sending is None:
            self._sending = asyncio.create_task(
                self._agents.call(
                    self._node,
                    self._op,
                    self._method,
                    self._path,
                    server=self._server,
                    params=self._params,
                    content=self._body(),
                )
            )
        return self._sending

    async def write(self, chunk: bytes) -> None:
        sending = self._started()
        self.size += len(chunk)
        put = asyncio.ensure_future(self._queue.put(chunk))
        await asyncio.wait({put, sending}, return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()
            sending.result()  # the node refused or went away: its error, here
            raise RuntimeError(f"node {self._node} ended the upload early")

    async def finish(self) -> Response:
        """End the body and wait for the node's answer (its error raised as it was)."""
        sending = self._started()
        await self._queue.put(None)
        return await sending

    async def cancel(self) -> None:
        """Break the body off: the node sees its request end midway."""
        if self._sending is None:
            return
        if not self._sending.done():
            self._sending.cancel()
        with contextlib.suppress(BaseException):
            await self._sending
