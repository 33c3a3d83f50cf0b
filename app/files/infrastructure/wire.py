"""How a file's state crosses between the API and a node's agent: its metadata in a header,
the bytes it keeps (a text file's content) as the body."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from fastapi import Response

from app.files.domain.model import FileState
from app.shared.domain import InvalidInput

STATE_HEADER = "x-mcdash-file-state"
EXPECTED_HEADER = "x-mcdash-expected-state"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def state_response(state: FileState) -> Response:
    meta = {
        "exists": state.exists,
        "size": state.size,
        "sha256": state.sha256,
        "mode": state.mode,
        "kept": state.content is not None,
    }
    return Response(
        content=state.content or b"",
        media_type="application/octet-stream",
        headers={STATE_HEADER: json.dumps(meta)},
    )


def state_of(headers: Mapping[str, str], body: bytes) -> FileState:
    meta = json.loads(headers[STATE_HEADER])
    return FileState(
        exists=bool(meta["exists"]),
        size=int(meta["size"]),
        sha256=meta["sha256"],
        content=body if meta["kept"] else None,
        mode=meta["mode"],
    )


def encode_expected(state: FileState) -> str:
    return json.dumps({"exists": state.exists, "sha256": state.sha256})


def decode_expected(raw: str | None) -> FileState | None:
    if raw is None:
        return None
    try:
        meta = json.loads(raw)
        exists, sha256 = meta["exists"], meta["sha256"]
    except (ValueError, TypeError, KeyError):
        raise InvalidInput(f"{EXPECTED_HEADER} is not a file state") from None
    if not isinstance(exists, bool) or not (
        sha256 is None or (isinstance(sha256, str) and _SHA256.match(sha256))
    ):
        raise InvalidInput(f"{EXPECTED_HEADER} is not a file state")
    return FileState(exists=exists, sha256=sha256)
