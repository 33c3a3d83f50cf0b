"""ops.json and whitelist.json in a server directory: reading what is there, writing ours."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.groups.domain.access import OpEntry, WhitelistEntry
from app.shared.files import read_regular, write_atomically

OPS = "ops.json"
WHITELIST = "whitelist.json"
LIST_MAX_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class ListFiles:
    """What the files hold now; None for a file that exists but cannot be understood."""

    ops: list[OpEntry] | None
    whitelist: list[WhitelistEntry] | None
    raw_ops: bytes
    raw_whitelist: bytes


def _objects(raw: bytes) -> list[dict[str, Any]] | None:
    if not raw.strip():
        return []
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        return None
    return [item for item in data if isinstance(item.get("name"), str)]


def read_lists(directory: Path) -> ListFiles:
    """Blocking: read both files; a missing file is an empty list."""
    raw_ops = _read(directory / OPS)
    raw_whitelist = _read(directory / WHITELIST)
    op_objects = _objects(raw_ops)
    whitelist_objects = _objects(raw_whitelist)
    ops = (
        None
        if op_objects is None
        else [
            OpEntry(
                uuid=str(item.get("uuid", "")),
                name=item["name"],
                level=int(item["level"]) if isinstance(item.get("level"), int) else 4,
                bypasses_player_limit=item.get("bypassesPlayerLimit") is True,
            )
            for item in op_objects
        ]
    )
    whitelist = (
        None
        if whitelist_objects is None
        else [
            WhitelistEntry(uuid=str(item.get("uuid", "")), name=item["name"])
            for item in whitelist_objects
        ]
    )
    return ListFiles(ops=ops, whitelist=whitelist, raw_ops=raw_ops, raw_whitelist=raw_whitelist)


def ops_json(entries: tuple[OpEntry, ...]) -> bytes:
    return _dump(
        [
            {
                "uuid": e.uuid,
                "name": e.name,
                "level": e.level,
                "bypassesPlayerLimit": e.bypasses_player_limit,
            }
            for e in entries
        ]
    )


def whitelist_json(entries: tuple[WhitelistEntry, ...]) -> bytes:
    return _dump([{"uuid": e.uuid, "name": e.name} for e in entries])


def write_list(directory: Path, name: str, content: bytes) -> None:
    """Blocking: replace the file atomically (the directory is created for a new server)."""
    directory.mkdir(parents=True, exist_ok=True)
    write_atomically(directory / name, content)


def _dump(items: list[dict[str, Any]]) -> bytes:
    return (json.dumps(items, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _read(path: Path) -> bytes:
    """A link or a special file in the list's place reads as unreadable, never its target."""
    try:
        return read_regular(path, limit=LIST_MAX_BYTES)
    except OSError:
        return b"\0"  # not JSON: the file is reported and, unless authoritative, left alone
