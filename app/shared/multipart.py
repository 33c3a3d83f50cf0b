"""Streaming multipart/form-data: file parts are yielded as they arrive, never buffered whole."""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

from python_multipart.exceptions import ParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from app.shared.bodies import UnsupportedMediaType
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


@dataclass(frozen=True, slots=True)
class _PartHeaders:
    field: str
    filename: str | None


_Event = tuple[str, bytes] | _PartHeaders

# What boundaries and part headers add to the files of an upload, for body limits.
MULTIPART_OVERHEAD = 64 * 1024


def multipart_file_body(description: str, *, many: bool = False) -> dict[str, Any]:
    """`openapi_extra` documenting a multipart body with a binary `file` field (for /docs)."""
    file: dict[str, Any] = {"type": "string", "format": "binary", "description": description}
    if many:
        file = {"type": "array", "items": file}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": file},
                    }
                }
            },
        }
    }


class MultipartStream:
    """Feeds the request body to python-multipart and turns its callbacks into async parts.

    The parser calls back synchronously while a chunk is written, so one chunk may hold the end
    of a part, the next part's headers and its first bytes: each part's headers are taken as a
    whole when they end, in the callback, and queued with the data in order.
    """

    def __init__(self, request: Request) -> None:
        content_type, options = parse_options_header(request.headers.get("content-type"))
        boundary = options.get(b"boundary")
        if content_type != b"multipart/form-data":
            raise UnsupportedMediaType("send the file as multipart/form-data")
        if not boundary:
            raise MalformedUpload("the multipart/form-data Content-Type names no boundary")
        self._body = request.stream().__aiter__()
        self._events: deque[_Event] = deque()
        self._header = [b"", b""]
        self._headers: dict[bytes, bytes] = {}
        self._done = False
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_part_data": lambda data, start, end: self._events.append(
                    ("data", bytes(data[start:end]))
                ),
                "on_part_end": lambda: self._events.append(("end", b"")),
                "on_header_field": lambda data, start, end: self._add_header(0, data[start:end]),
                "on_header_value": lambda data, start, end: self._add_header(1, data[start:end]),
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
            },
        )

    def _part_begin(self) -> None:
        self._headers = {}
        self._header = [b"", b""]

    def _add_header(self, index: int, data: bytes) -> None:
        self._header[index] += bytes(data)

    def _header_end(self) -> None:
        self._headers[self._header[0].strip().lower()] = self._header[1].strip()
        self._header = [b"", b""]

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition"))
        filename = options.get(b"filename")
        self._events.append(
            _PartHeaders(
                field=options.get(b"name", b"").decode("utf-8", "replace"),
                filename=None if filename is None else filename.decode("utf-8", "replace"),
            )
        )

    async def _next(self) -> _Event | None:
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
        while (event := await self._next()) is not None and event != ("end", b""):
            if isinstance(event, tuple) and event[0] == "data" and event[1]:
                yield event[1]
        if event is None:
            raise MalformedUpload("the upload ended before its last part was complete")

    async def files(self) -> AsyncGenerator[FilePart]:
        """Each part's chunks must be consumed before the next part is asked for."""
        while (event := await self._next()) is not None:
            if not isinstance(event, _PartHeaders):
                continue
            chunks = self._data()
            if event.filename is None:
                async for _ in chunks:
                    pass
                continue
            yield FilePart(event.field, event.filename, chunks)
            async for _ in chunks:
                pass

    async def file(self, field: str = "file") -> FilePart:
        """The first file part named `field`; the parts before it are read past."""
        async with contextlib.aclosing(self.files()) as parts:
            async for part in parts:
                if part.field == field:
                    return part
        raise MalformedUpload(f"the form holds no file part named {field!r}")
