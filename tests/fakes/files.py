"""In-memory stand-ins for the ports of the files context: the history in the shared fake
database, and a server directory in memory that refuses what the local file store refuses."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.files.domain.model import (
    FileConflict,
    FileMissing,
    FileState,
    FileVersion,
    Outcome,
    PreconditionFailed,
    looks_like_text,
)
from app.files.domain.paths import CONTROL_DIRECTORY, TEMP_PREFIX, FilePath, PathForbidden
from app.files.domain.ports import Download, FileEntry, ServerAccess
from app.shared.domain import DomainEvent, Page
from tests.fakes.core import FakeEventLog, FakeUnitOfWork, conflict
from tests.fakes.database import FakeDatabase


class FakeFileHistory:
    """`file_versions`: what this unit of work added is visible to it, and kept on commit."""

    def __init__(self, db: FakeDatabase) -> None:
        self._db = db
        self.staged: list[FileVersion] = []
        self.locked: list[tuple[uuid.UUID, str]] = []

    def _of(self, server_id: uuid.UUID, path: str) -> list[FileVersion]:
        staged = [v for v in self.staged if v.server_id == server_id and v.path == path]
        return [*self._db.versions_of(server_id, path), *staged]

    async def lock(self, server_id: uuid.UUID, path: str) -> None:
        self.locked.append((server_id, path))

    async def latest(self, server_id: uuid.UUID, path: str) -> FileVersion | None:
        applied = [v for v in self._of(server_id, path) if v.outcome is Outcome.APPLIED]
        return max(applied, key=lambda v: v.version, default=None)

    async def next_number(self, server_id: uuid.UUID, path: str) -> int:
        return max((v.version for v in self._of(server_id, path)), default=0) + 1

    async def add(self, version: FileVersion) -> None:
        self.staged.append(version)

    async def get(self, server_id: uuid.UUID, path: str, number: int) -> FileVersion | None:
        return next((v for v in self._of(server_id, path) if v.version == number), None)

    async def paths_under(self, server_id: uuid.UUID, prefix: str) -> list[str]:
        versions = [*self._db.file_versions, *self.staged]
        return sorted(
            {
                v.path
                for v in versions
                if v.server_id == server_id and v.path.startswith(f"{prefix}/")
            }
        )

    async def page(
        self, server_id: uuid.UUID, path: str, *, page: int, limit: int
    ) -> Page[FileVersion]:
        """Newest first; a kept content shows as empty bytes, as in the SQL summary."""
        newest = sorted(self._of(server_id, path), key=lambda v: -v.version)
        chosen = newest[(page - 1) * limit : page * limit]
        items = [
            FileVersion(
                **{
                    **{name: getattr(v, name) for name in FileVersion.__dataclass_fields__},
                    "content": b"" if v.content is not None else None,
                }
            )
            for v in chosen
        ]
        return Page(items=items, total=len(newest), page=page, limit=limit)


class FakeFilesUnitOfWork(FakeUnitOfWork):
    """A version can only be kept for a server that exists (the foreign key)."""

    history: FakeFileHistory

    def __init__(self, db: FakeDatabase, events: FakeEventLog) -> None:
        super().__init__(events, before_commit=db.before_commit)
        self.db = db

    def start(self) -> None:
        self.history = FakeFileHistory(self.db)

    def check(self) -> None:
        if any(v.server_id not in self.db.servers for v in self.history.staged):
            raise conflict("file_versions_server_id_fkey")

    def write(self, events: Sequence[DomainEvent]) -> None:
        self.db.file_versions.extend(self.history.staged)
        self.history.staged = []


class Directory:
    """A directory entry of a fake tree."""


DIRECTORY = Directory()


@dataclass(frozen=True, slots=True)
class Link:
    """A symbolic link; `target` is relative to the server directory ("../x" leaves it)."""

    target: str


Node = bytes | Directory | Link
MODIFIED_AT = datetime(2026, 1, 1, tzinfo=UTC)


class FakeFileStore:
    """Each server's directory as a map of relative paths to bytes, directories and links.

    The directory exists once something is written (or `put`) there, as on disk. Paths are
    resolved as the local store resolves them: links followed inside the server only, a file in
    the way is not a directory, a missing parent is a missing file.
    """

    def __init__(self, *, text_max_bytes: int = 1024 * 1024) -> None:
        self.trees: dict[uuid.UUID, dict[str, Node]] = {}
        self.text_max_bytes = text_max_bytes
        self.aborted_uploads = 0

    # What a test sets up or looks at, outside the dashboard.

    def put(self, server_id: uuid.UUID, path: str, content: bytes | str = b"") -> None:
        data = content.encode() if isinstance(content, str) else content
        tree, key = self._locate(server_id, FilePath.parse(path, allow_root=False), create=True)
        tree[key] = data

    def link(self, server_id: uuid.UUID, path: str, target: str) -> None:
        tree, key = self._locate(server_id, FilePath.parse(path), create=True, follow=False)
        tree[key] = Link(target)

    def read(self, server_id: uuid.UUID, path: str) -> bytes | None:
        node = self.trees.get(server_id, {}).get(path)
        return node if isinstance(node, bytes) else None

    def paths(self, server_id: uuid.UUID) -> list[str]:
        return sorted(self.trees.get(server_id, {}))

    # Resolution

    def _tree(self, server_id: uuid.UUID, *, create: bool = False) -> dict[str, Node]:
        if create:
            return self.trees.setdefault(server_id, {})
        if server_id not in self.trees:
            raise FileMissing("the server directory does not exist yet; start it once")
        return self.trees[server_id]

    @staticmethod
    def _resolve(tree: dict[str, Node], path: FilePath) -> FilePath:
        parts, hops = list(path.parts), 0
        index = 0
        while index < len(parts):
            node = tree.get("/".join(parts[: index + 1]))
            if isinstance(node, Link):
                hops += 1
                target = node.target.split("/")
                if hops > 40 or node.target.startswith("/") or ".." in target:
                    raise PathForbidden(
                        "a symbolic link leads outside the server directory", path=str(path)
                    )
                parts, index = [*target, *parts[index + 1 :]], 0
                continue
            index += 1
        resolved = FilePath(tuple(parts))
        resolved.check_allowed()
        return resolved

    def _locate(
        self,
        server_id: uuid.UUID,
        path: FilePath,
        *,
        create: bool = False,
        write: bool = False,
        follow: bool = True,
    ) -> tuple[dict[str, Node], str]:
        tree = self._tree(server_id, create=create)
        real = self._resolve(tree, path) if follow else path
        if real.is_root:
            raise PathForbidden("this path resolves to the server directory itself")
        if write and real != path:
            real.check_writable()
        for index in range(1, len(real.parts)):
            prefix = "/".join(real.parts[:index])
            node = tree.get(prefix)
            if node is None:
                if not create:
                    raise FileMissing(f"{prefix} does not exist")
                tree[prefix] = DIRECTORY
            elif not isinstance(node, Directory):
                raise FileConflict(f"{prefix} is not a directory")
        return tree, str(real)

    def _directory(self, server_id: uuid.UUID, path: FilePath) -> tuple[dict[str, Node], str]:
        tree = self._tree(server_id)
        if path.is_root:
            return tree, ""
        tree, key = self._locate(server_id, path)
        node = tree.get(key)
        if node is None:
            raise FileMissing(f"{path} does not exist")
        if not isinstance(node, Directory):
            raise FileConflict(f"{path} is not a directory")
        return tree, key

    @staticmethod
    def _below(tree: dict[str, Node], key: str) -> list[str]:
        return [name for name in tree if key == "" or name.startswith(f"{key}/")]

    @staticmethod
    def _state(node: Node | None, path: FilePath, keep: int) -> FileState:
        if node is None:
            return FileState(exists=False)
        if isinstance(node, Directory):
            raise FileConflict(f"{path} is a directory", path=str(path))
        if isinstance(node, Link):
            raise PathForbidden("symbolic links are not followed here", path=str(path))
        return FileState(
            exists=True,
            size=len(node),
            sha256=hashlib.sha256(node).hexdigest(),
            content=node if len(node) <= keep else None,
            mode=0o644,
        )

    # FileStore

    async def listing(
        self, server: ServerAccess, path: FilePath, *, page: int, limit: int
    ) -> Page[FileEntry]:
        server_id = server.server_id
        if path.is_root and server_id not in self.trees:
            return Page(items=[], total=0, page=page, limit=limit)
        tree, key = self._directory(server_id, path)
        depth = len(key.split("/")) + 1 if key else 1
        found = [
            (name, tree[name])
            for name in self._below(tree, key)
            if len(name.split("/")) == depth
            and not name.rsplit("/", 1)[-1].startswith(TEMP_PREFIX)
            and not (path.is_root and name == CONTROL_DIRECTORY)
        ]
        found.sort(key=lambda item: (not isinstance(item[1], Directory), item[0].casefold()))
        items = [
            FileEntry(
                name=name.rsplit("/", 1)[-1],
                path=name,
                type=_kind(node),
                size=len(node) if isinstance(node, bytes) else 0,
                modified_at=MODIFIED_AT,
                is_text=isinstance(node, bytes)
                and len(node) <= self.text_max_bytes
                and looks_like_text(node),
            )
            for name, node in found[(page - 1) * limit : page * limit]
        ]
        return Page(items=items, total=len(found), page=page, limit=limit)

    async def state(self, server: ServerAccess, path: FilePath, *, keep: int) -> FileState:
        server_id = server.server_id
        if server_id not in self.trees:
            return FileState(exists=False)
        try:
            tree, key = self._locate(server_id, path)
        except FileMissing:
            return FileState(exists=False)
        return self._state(tree.get(key), path, keep)

    async def write(
        self,
        server: ServerAccess,
        path: FilePath,
        content: bytes,
        *,
        expected: FileState | None = None,
    ) -> FileState:
        server_id = server.server_id
        if expected is not None:
            now = await self.state(server, path, keep=0)
            if (now.exists, now.sha256) != (expected.exists, expected.sha256):
                raise PreconditionFailed(f"{path} changed while it was saved", path=str(path))
        tree, key = self._locate(server_id, path, create=True, write=True)
        if isinstance(tree.get(key), Directory):
            raise FileConflict(f"{path} is a directory", path=str(path))
        tree[key] = content
        return self._state(content, path, len(content))

    async def delete(self, server: ServerAccess, path: FilePath, *, recursive: bool) -> None:
        server_id = server.server_id
        tree, key = self._locate(server_id, path, write=True)
        node = tree.get(key)
        if node is None:
            raise FileMissing(f"{path} does not exist", path=str(path))
        inside = [name for name in self._below(tree, key) if name != key]
        if inside and not recursive:
            raise FileConflict(
                f"{path} is not empty; delete it with recursive=true", path=str(path)
            )
        for name in (key, *inside):
            del tree[name]

    async def is_directory(self, server: ServerAccess, path: FilePath) -> bool:
        server_id = server.server_id
        tree, key = self._locate(server_id, path)
        return isinstance(tree.get(key), Directory)

    async def resolve(self, server: ServerAccess, path: FilePath) -> FilePath:
        server_id = server.server_id
        if server_id not in self.trees:
            return path
        return self._resolve(self.trees[server_id], path)

    async def holds_jar(self, server: ServerAccess, path: FilePath) -> bool:
        server_id = server.server_id
        tree, key = self._directory(server_id, path)
        return any(name.casefold().endswith(".jar") for name in self._below(tree, key))

    async def mkdir(self, server: ServerAccess, path: FilePath) -> None:
        server_id = server.server_id
        tree, key = self._locate(server_id, path, create=True, write=True)
        if key in tree:
            raise FileConflict(f"{path} already exists", path=str(path))
        tree[key] = DIRECTORY

    async def move(self, server: ServerAccess, source: FilePath, target: FilePath) -> None:
        server_id = server.server_id
        tree, old = self._locate(server_id, source, write=True)
        if old not in tree:
            raise FileMissing(f"{source} does not exist", path=str(source))
        _, new = self._locate(server_id, target, create=True, write=True)
        if new in tree:
            raise FileConflict(f"{target} already exists", path=str(target))
        for name in [old, *(n for n in self._below(tree, old) if n != old)]:
            tree[new + name.removeprefix(old)] = tree.pop(name)

    async def download(self, server: ServerAccess, path: FilePath) -> Download:
        server_id = server.server_id
        tree, key = self._locate(server_id, path)
        node = tree.get(key)
        if node is None:
            raise FileMissing(f"{path} does not exist", path=str(path))
        if not isinstance(node, bytes):
            raise FileConflict(f"{path} is a directory", path=str(path))
        return Download(name=path.name, size=len(node), sha256=None, chunks=_chunks(node))

    async def upload(self, server: ServerAccess, path: FilePath) -> FakeUploadSink:
        server_id = server.server_id
        tree, key = self._locate(server_id, path, create=True, write=True)
        if isinstance(tree.get(key), Directory):
            raise FileConflict(f"{path} is a directory", path=str(path))
        return FakeUploadSink(self, tree, key)


class FakeUploadSink:
    """Chunks kept aside until `commit`; nothing is visible in the tree before."""

    def __init__(self, store: FakeFileStore, tree: dict[str, Node], key: str) -> None:
        self._store = store
        self._tree = tree
        self._key = key
        self._content = bytearray()
        self.done = False

    @property
    def size(self) -> int:
        return len(self._content)

    async def write(self, chunk: bytes) -> None:
        self._content += chunk

    async def commit(self, *, replace: bool) -> FileState:
        if not replace and self._key in self._tree:
            raise FileConflict(f"{self._key} already exists; upload with overwrite=true")
        content = bytes(self._content)
        self._tree[self._key] = content
        self.done = True
        path = FilePath.parse(self._key)
        return FakeFileStore._state(content, path, self._store.text_max_bytes)

    async def abort(self) -> None:
        if not self.done:
            self.done = True
            self._store.aborted_uploads += 1


def _kind(node: Node) -> str:
    if isinstance(node, Directory):
        return "directory"
    return "symlink" if isinstance(node, Link) else "file"


async def _chunks(content: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(content), 64 * 1024):
        yield content[start : start + 64 * 1024]


@dataclass(kw_only=True)
class FilesFakes:
    """The files context's adapters, named as its `wire()` names them. Its `servers` port is
    the real one: it asks the (faked) servers context over the bus."""

    uow: Any
    store: FakeFileStore
    servers: Any = None

    @classmethod
    def build(cls, db: FakeDatabase, events: FakeEventLog, *, text_max_bytes: int) -> FilesFakes:
        return cls(
            uow=lambda: FakeFilesUnitOfWork(db, events),
            store=FakeFileStore(text_max_bytes=text_max_bytes),
        )
