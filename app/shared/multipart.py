"""Streaming multipart/form-data: file parts are yielded as they arrive, never buffered whole."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from python_multipart.exceptions import ParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from app.shared.domain import DomainError


class MalformedUpload(DomainError):
    status = 400
    slug = "malformed-upload"
    title = "Malformed upload"


@dataclass(frozen=True, slots=True)
class FilePart:
    field: str
    filename: str
    chunks: AsyncIterator[bytes]


class MultipartStream:
    """Feeds the request body to python-multipart and turns its callbacks into async parts."""

    def __init__(self, request: Request) -> None:
        content_type, options = parse_options_header(request.headers.get("content-type"))
        boundary = options.get(b"boundary")
        if content_type != b"multipart/form-data" or not boundary:
            raise MalformedUpload("send the file as multipart/form-data with a boundary")
        self._body = request.stream().__aiter__()
        self._events: deque[tuple[str, bytes]] = deque()
        self._header = [b"", b""]
        self._headers: dict[bytes, bytes] = {}
        self._done = False
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": lambda: self._events.append(("begin", b"")),
                "on_part_data": lambda data, start, end: self._events.append(
                    ("data", bytes(data[start:end]))
                ),
                "on_part_end": lambda: self._events.append(("end", b"")),
                "on_header_field": lambda data, start, end: self._add_header(0, data[start:end]),
                "on_header_value": lambda data, start, end: self._add_header(1, data[start:end]),
                "on_header_end": self._header_end,
                "on_headers_finished": lambda: self._events.append(("headers", b"")),
            },
        )

    def _add_header(self, index: int, data: bytes) -> None:
        self._header[index] += bytes(data)

    def _header_end(self) -> None:
        self._headers[self._header[0].strip().lower()] = self._header[1].strip()
        self._header = [b"", b""]

    async def _next(self) -> tuple[str, bytes] | None:
        while not self._events:
            if self._done:
                return None
            try:
                chunk = await self._body.__anext__()
            except StopAsyncIteration:
                self._done = True
                self._parser.finalize()
                continue
            try:
                self._parser.write(chunk)
            except ParseError as exc:
                raise MalformedUpload(f"the multipart body is malformed: {exc}") from None
        return self._events.popleft()

    async def _data(self) -> AsyncIterator[bytes]:
        while (event := await self._next()) is not None and event[0] != "end":
            if event[0] == "data" and event[1]:
                yield event[1]
        if event is None:
            raise MalformedUpload("the upload ended before its last part was complete")

    async def files(self) -> AsyncIterator[FilePart]:
        """Each part's chunks must be consumed before the next part is asked for."""
        while (event := await self._next()) is not None:
            if event[0] == "begin":
                self._headers = {}
            elif event[0] == "headers":
                _, options = parse_options_header(self._headers.get(b"content-disposition"))
                filename = options.get(b"filename")
                field = options.get(b"name", b"").decode("utf-8", "replace")
                chunks = self._data()
                if filename is None:
                    async for _ in chunks:
                        pass
                    continue
                yield FilePart(field, filename.decode("utf-8", "replace"), chunks)
                async for _ in chunks:
                    pass
