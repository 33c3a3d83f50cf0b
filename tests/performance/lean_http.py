"""A lean HTTP/1.1 client for benchmarks that time requests from Python: keep-alive connections
over asyncio streams, parsed with h11.

httpx costs about 2 ms of CPU a request (measured in the command benchmark: its pool, its
request and response models, its transports); on a 2-core box that CPU comes out of what the
API under test gets. This client does one request at a time per connection, as the benchmarks'
lanes do, for some 0.1 ms.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
from typing import Any
from urllib.parse import urlsplit

import h11


class Response:
    __slots__ = ("content", "status_code")

    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code = status_code
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


class Connection:
    """One kept-alive connection: requests on it go one after another."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._headers = [("Host", parts.netloc), *headers.items()]
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._h11 = h11.Connection(h11.CLIENT)

    async def request(self, method: str, path: str, *, json: object = None) -> Response:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        body = b"" if json is None else jsonlib.dumps(json).encode()
        headers = [*self._headers, ("Content-Length", str(len(body)))]
        if json is not None:
            headers.append(("Content-Type", "application/json"))
        self._writer.write(
            self._h11.send(h11.Request(method=method, target=path, headers=headers))
            + self._h11.send(h11.Data(data=body))
            + self._h11.send(h11.EndOfMessage())
        )
        status, content = 0, bytearray()
        while True:
            event = self._h11.next_event()
            if event is h11.NEED_DATA:
                data = await self._reader.read(65536)
                if not data:
                    raise ConnectionError("the server closed the connection mid-response")
                self._h11.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                content += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        if self._h11.our_state is h11.MUST_CLOSE or self._h11.their_state is h11.MUST_CLOSE:
            await self.close()
        else:
            self._h11.start_next_cycle()
        return Response(status, bytes(content))

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()
        self._reader = self._writer = None
        self._h11 = h11.Connection(h11.CLIENT)
