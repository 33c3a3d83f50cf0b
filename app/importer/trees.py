"""A V1 server directory put onto its mcdash node the way a move puts one there: an uncompressed
tar PUT to the node agent's staging directory, its digest compared, then committed into place.

The jar, the worker's private files and V1's `server.pid` stay behind (the node links its own
verified jar at start). The commit is a rename on the node, so a directory there is complete:
a re-run finds it and copies nothing, a killed run left at most a staging copy, discarded.
"""

from __future__ import annotations

import asyncio
import hashlib
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from app.importer.run import Run, file_chunks
from app.servers.infrastructure.trees import Entry, digest_line, entry_info, walk

LEFT_BEHIND = frozenset({"server.pid"})
EMPTY_DIGEST = hashlib.sha256().hexdigest()


class TreeMismatch(RuntimeError):
    """What the node received is not what was sent."""


def _entries(root: Path) -> Iterator[Entry]:
    for entry in walk(root):
        if entry.path.split("/", 1)[0] not in LEFT_BEHIND:
            yield entry


def digest_and_pack(root: Path, out: Path) -> tuple[str, int]:
    """Blocking: tar the tree into `out`; the digest the node will compute (as
    trees.tree_digest does) and the bytes of file content."""
    digest = hashlib.sha256()
    total = 0
    with tarfile.open(out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in _entries(root):
            info = entry_info(root, entry)
            detail = entry.link
            if entry.kind != "f":
                tar.addfile(info)
            else:
                with (root / entry.path).open("rb") as handle:
                    detail = hashlib.file_digest(handle, "sha256").hexdigest()
                    handle.seek(0)
                    info.size = entry.size
                    tar.addfile(info, handle)
                total += entry.size
            digest.update(digest_line(entry, detail))
    return digest.hexdigest(), total


async def node_has_tree(run: Run, node: str, server_id: uuid.UUID) -> bool:
    trees = run.deps("servers")["trees"]
    return str(await trees.digest(node, server_id)) != EMPTY_DIGEST


async def copy_tree(run: Run, node: str, server_id: uuid.UUID, source: Path, label: str) -> bool:
    """Put `source` onto the node as the server's directory; False when it already is there."""
    trees = run.deps("servers")["trees"]
    if await node_has_tree(run, node, server_id):
        return False
    await trees.discard(node, server_id, live=False)
    with tempfile.TemporaryDirectory(prefix="mcdash-import-") as scratch:
        packed = Path(scratch) / "tree.tar"
        expected, _ = await asyncio.to_thread(digest_and_pack, source, packed)
        with run.copies.copy(f"server {label}", packed.stat().st_size) as bar:
            received = await trees.receive(node, server_id, file_chunks(packed, bar))
    if received != expected:
        await trees.discard(node, server_id, live=False)
        raise TreeMismatch(f"node {node} received a different tree for server {label}")
    await trees.commit(node, server_id)
    return True
