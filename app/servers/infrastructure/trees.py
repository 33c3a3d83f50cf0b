"""A server's directory as its node hands it to another in a move, and as the other takes it.

The source streams an uncompressed PAX tar of the tree, made in a thread and passed on through
a bounded queue (never the whole tree in memory), without the jar link and the worker's
private `.mcdash*` files: the target links its own cached jar and keeps its own private files
at launch. Symlinks stay symlinks; special files, and links that point out of the tree (at the
source's own disk), are left out. The target extracts into `<servers>/.incoming-<id>` with
tarfile's `data` filter (no absolute paths, `..`, links out of the tree or devices), until the
API commits it into place. Both sides compute the same digest of the tree to compare.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import shutil
import stat
import tarfile
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from app.servers.infrastructure.files import PRIVATE
from app.shared.domain import Conflict, InvalidInput

CHUNK = 256 * 1024
DEPTH = 8
"""Chunks in flight between the event loop and the tar thread."""
TRAILER_MAX = 1024 * 1024
"""What may follow the end of the archive (its zero blocks and padding)."""
_LEFT_OUT = frozenset(
    {"server.jar", ".server.jar.tmp", "fabric-server-launch.jar", ".fabric-server-launch.jar.tmp"}
)


class UnsafeTree(InvalidInput):
    slug = "unsafe-tree"
    title = "Tree refused"


@dataclass(frozen=True, slots=True)
class Entry:
    path: str
    kind: str
    """`d` directory, `f` regular file, `l` symlink."""
    size: int = 0
    link: str = ""


def _left_out(name: str) -> bool:
    return name in _LEFT_OUT or name.startswith(PRIVATE)


def _inside(path: str, link: str) -> bool:
    if os.path.isabs(link):
        return False
    resolved = os.path.normpath(os.path.join(os.path.dirname(path), link))
    return resolved != ".." and not resolved.startswith("../")


def walk(root: Path) -> Iterator[Entry]:
    """Blocking: the tree's entries, parents before children, names sorted in each directory."""
    if not stat.S_ISDIR(_lstat(root)):
        return
    pending = [""]
    while pending:
        parent = pending.pop()
        names = sorted(os.listdir(root / parent) if parent else os.listdir(root))
        children: list[str] = []
        for name in names:
            if not parent and _left_out(name):
                continue
            path = f"{parent}/{name}" if parent else name
            st = os.lstat(root / path)
            if stat.S_ISDIR(st.st_mode):
                yield Entry(path, "d")
                children.append(path)
            elif stat.S_ISREG(st.st_mode):
                yield Entry(path, "f", st.st_size)
            elif stat.S_ISLNK(st.st_mode):
                link = os.readlink(root / path)
                if _inside(path, link):
                    yield Entry(path, "l", link=link)
        pending.extend(reversed(children))


def _lstat(path: Path) -> int:
    try:
        return path.lstat().st_mode
    except FileNotFoundError:
        return 0


def _open_regular(path: Path) -> io.BufferedReader:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} stopped being a regular file")
    return os.fdopen(fd, "rb")


def digest_line(entry: Entry, detail: str) -> bytes:
    """What a tree's digest takes of one entry: path, type, size and content digest (or link)."""
    return f"{entry.path}\0{entry.kind}\0{entry.size}\0{detail}\n".encode(
        "utf-8", "surrogateescape"
    )


def tree_digest(root: Path) -> str:
    """Blocking: SHA-256 over each entry's path, type, size and content (or link target)."""
    digest = hashlib.sha256()
    for entry in walk(root):
        detail = entry.link
        if entry.kind == "f":
            with _open_regular(root / entry.path) as handle:
                detail = hashlib.file_digest(handle, "sha256").hexdigest()
        digest.update(digest_line(entry, detail))
    return digest.hexdigest()


def entry_info(root: Path, entry: Entry) -> tarfile.TarInfo:
    """The tar header of an entry (a regular file's size is set by whoever adds its content)."""
    info = tarfile.TarInfo(entry.path)
    st = os.lstat(root / entry.path)
    info.mtime, info.mode = int(st.st_mtime), stat.S_IMODE(st.st_mode)
    if entry.kind == "d":
        info.type = tarfile.DIRTYPE
    elif entry.kind == "l":
        info.type, info.linkname = tarfile.SYMTYPE, entry.link
    return info


def write_tree(root: Path, out: BinaryIO) -> None:
    """Blocking: the tree as an uncompressed PAX tar written to `out`."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for entry in walk(root):
            info = entry_info(root, entry)
            if entry.kind != "f":
                tar.addfile(info)
                continue
            with _open_regular(root / entry.path) as handle:
                info.size = os.fstat(handle.fileno()).st_size
                tar.addfile(info, handle)


class _Pipe:
    """Chunks between the event loop and one thread, at most DEPTH of them in flight; None
    ends them. Abandoned, the thread's next put or get fails."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(DEPTH)
        self._abandoned = False

    def put(self, chunk: bytes | None) -> None:
        if self._abandoned:
            raise BrokenPipeError("the receiving side went away")
        asyncio.run_coroutine_threadsafe(self._queue.put(chunk), self._loop).result()

    def get(self) -> bytes | None:
        if self._abandoned:
            raise BrokenPipeError("the sending side went away")
        return asyncio.run_coroutine_threadsafe(self._queue.get(), self._loop).result()

    async def next(self) -> bytes | None:
        return await self._queue.get()

    async def feed[T](self, chunk: bytes | None, worker: asyncio.Future[T]) -> bool:
        """Hand `chunk` to the thread; False when the thread ended instead of taking it."""
        if not self._queue.full():
            self._queue.put_nowait(chunk)
            return True
        put = asyncio.ensure_future(self._queue.put(chunk))
        ended = asyncio.ensure_future(_ended(worker))
        try:
            await asyncio.wait([put, ended], return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            if not put.done():
                put.cancel()
        return not put.cancelled()

    @property
    def abandoned(self) -> bool:
        return self._abandoned

    def abandon(self) -> None:
        self._abandoned = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)


async def _ended[T](worker: asyncio.Future[T]) -> None:
    await asyncio.wait([worker])


async def _settled[T](worker: asyncio.Future[T]) -> None:
    """Wait for a thread given up on; its error is the other side having gone, not news."""
    await asyncio.wait([worker])
    if not worker.cancelled():
        worker.exception()


class _Writer:
    """The file a tar is written to in the thread: CHUNK-sized pieces into the pipe."""

    def __init__(self, pipe: _Pipe) -> None:
        self._pipe = pipe
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        if len(self._buffer) >= CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._buffer:
            self._pipe.put(bytes(self._buffer))
            self._buffer.clear()


class _Reader:
    """The file a tar is read from in the thread: the chunks the event loop feeds the pipe."""

    def __init__(self, pipe: _Pipe) -> None:
        self._pipe = pipe
        self._buffer = b""
        self._ended = False

    def read(self, size: int = -1) -> bytes:
        while not self._buffer and not self._ended:
            chunk = self._pipe.get()
            self._ended = chunk is None
            self._buffer = chunk or b""
        size = len(self._buffer) if size < 0 else size
        taken, self._buffer = self._buffer[:size], self._buffer[size:]
        return taken

    def drain(self, limit: int) -> None:
        left = limit
        while chunk := self.read(CHUNK):
            left -= len(chunk)
            if left < 0:
                raise UnsafeTree("more data follows the end of the tree's archive")


def _relative(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """The members, refusing an absolute name (which the data filter would make relative)."""
    for member in tar:
        if member.name.startswith("/") or ".." in member.name.split("/"):
            raise UnsafeTree(f"the tree holds {member.name!r}, a path out of its directory")
        yield member


class NodeTrees:
    """This node's side of moves: its servers' trees sent, received, committed, discarded."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._arriving: set[uuid.UUID] = set()

    def live(self, server_id: uuid.UUID) -> Path:
        return self._root / str(server_id)

    def staging(self, server_id: uuid.UUID) -> Path:
        return self._root / f".incoming-{server_id}"

    async def send(self, server_id: uuid.UUID) -> AsyncIterator[bytes]:
        """The tree as a tar, made in a thread while it is sent."""
        pipe = _Pipe(asyncio.get_running_loop())
        worker = asyncio.ensure_future(asyncio.to_thread(self._write, server_id, pipe))
        try:
            while (chunk := await pipe.next()) is not None:
                yield chunk
            await worker
        finally:
            pipe.abandon()
            await _settled(worker)

    def _write(self, server_id: uuid.UUID, pipe: _Pipe) -> None:
        writer = _Writer(pipe)
        try:
            write_tree(self.live(server_id), writer)  # type: ignore[arg-type]
            writer.flush()
        finally:
            if not pipe.abandoned:
                pipe.put(None)

    async def digest(self, server_id: uuid.UUID) -> str:
        return await asyncio.to_thread(tree_digest, self.live(server_id))

    async def receive(self, server_id: uuid.UUID, chunks: AsyncIterable[bytes]) -> str:
        """Extract a tree into the server's staging directory; the digest of what arrived."""
        if server_id in self._arriving:
            raise Conflict(f"a copy of server {server_id} is already arriving on this node")
        self._arriving.add(server_id)
        try:
            await asyncio.to_thread(self._prepare, server_id)
            pipe = _Pipe(asyncio.get_running_loop())
            worker = asyncio.ensure_future(asyncio.to_thread(self._extract, server_id, pipe))
            try:
                async for chunk in chunks:
                    if chunk and not await pipe.feed(chunk, worker):
                        break
                await pipe.feed(None, worker)
                return await worker
            except BaseException:
                pipe.abandon()
                await _settled(worker)
                await asyncio.to_thread(shutil.rmtree, self.staging(server_id), True)
                raise
        finally:
            self._arriving.discard(server_id)

    def _prepare(self, server_id: uuid.UUID) -> None:
        if _lstat(self.live(server_id)):
            raise Conflict(
                f"server {server_id} already has a directory on this node; a copy left by an"
                " earlier move is removed by its delete_files job",
                reason="server-files-present",
            )
        shutil.rmtree(self.staging(server_id), ignore_errors=True)
        self._root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.staging(server_id).mkdir(mode=0o700)

    def _extract(self, server_id: uuid.UUID, pipe: _Pipe) -> str:
        staging = self.staging(server_id)
        reader = _Reader(pipe)
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
                tar.extractall(staging, members=_relative(tar), filter="data")
            reader.drain(TRAILER_MAX)
        except (tarfile.TarError, ValueError) as exc:
            raise UnsafeTree(f"the server's tree was refused: {exc}") from exc
        return tree_digest(staging)

    async def commit(self, server_id: uuid.UUID) -> None:
        await asyncio.to_thread(self._commit, server_id)

    def _commit(self, server_id: uuid.UUID) -> None:
        if server_id in self._arriving or not stat.S_ISDIR(_lstat(self.staging(server_id))):
            raise Conflict(f"no complete copy of server {server_id} is staged on this node")
        if _lstat(self.live(server_id)):
            raise Conflict(f"server {server_id} already has a directory on this node")
        os.rename(self.staging(server_id), self.live(server_id))

    async def discard(self, server_id: uuid.UUID, *, live: bool) -> None:
        """Remove the staged copy (not one still arriving), and with `live` the directory."""
        targets = [] if server_id in self._arriving else [self.staging(server_id)]
        for path in [*targets, *([self.live(server_id)] if live else [])]:
            await asyncio.to_thread(shutil.rmtree, path, True)
