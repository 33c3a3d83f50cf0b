"""The streaming multipart reader fed the way real clients send: the whole body in one chunk."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from app.shared.multipart import MalformedUpload, MultipartStream

BOUNDARY = "------------------------d74496d66958873e"


def body(*parts: tuple[str, str | None, bytes]) -> bytes:
    out = b""
    for field, filename, data in parts:
        disposition = f'form-data; name="{field}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += (
            (
                f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    return out + f"--{BOUNDARY}--\r\n".encode()


def request(chunks: list[bytes]) -> Request:
    pending = list(chunks)

    async def receive() -> dict:
        chunk = pending.pop(0) if pending else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode())],
    }
    return Request(scope, receive)


async def collect(stream: MultipartStream) -> list[tuple[str, str, bytes]]:
    return [
        (part.field, part.filename, b"".join([chunk async for chunk in part.chunks]))
        async for part in stream.files()
    ]


def split_every(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize(
    "chunking",
    [
        pytest.param(lambda data: [data], id="whole-body-in-one-chunk"),
        pytest.param(lambda data: split_every(data, 7), id="seven-byte-chunks"),
        pytest.param(lambda data: split_every(data, 1), id="one-byte-chunks"),
    ],
)
async def test_every_file_part_is_found_however_the_body_is_chunked(chunking):
    data = body(
        ("comment", None, b"not a file"),
        ("file", "a.txt", b"alpha\r\n--not-the-boundary"),
        ("file", "b.bin", bytes(range(256)) * 4),
    )
    parts = await collect(MultipartStream(request(chunking(data))))
    assert parts == [
        ("file", "a.txt", b"alpha\r\n--not-the-boundary"),
        ("file", "b.bin", bytes(range(256)) * 4),
    ]


async def test_file_returns_the_named_part_from_a_single_chunk():
    data = body(("other", "x.txt", b"skipped"), ("file", "world.tar.gz", b"\x1f\x8b payload"))
    part = await MultipartStream(request([data])).file()
    assert (part.field, part.filename) == ("file", "world.tar.gz")
    assert b"".join([chunk async for chunk in part.chunks]) == b"\x1f\x8b payload"


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        pytest.param(body(("comment", None, b"x")), "no file part", id="no-file-part"),
        pytest.param(body(("file", "a", b"abc"))[:-30], "ended before", id="truncated-body"),
        pytest.param(
            f"--{BOUNDARY}\r\nX-Pad: {'a' * 20000}\r\n\r\n".encode(),
            "header size exceeded",
            id="endless-part-headers",
        ),
    ],
)
async def test_bad_bodies_are_malformed_uploads(data, needle):
    async def read_whole_upload() -> None:
        part = await MultipartStream(request([data])).file()
        async for _ in part.chunks:
            pass

    with pytest.raises(MalformedUpload, match=needle):
        await read_whole_upload()
