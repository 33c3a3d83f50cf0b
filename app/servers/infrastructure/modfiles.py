"""A node's side of mods and plugins: downloads verified against Modrinth's SHA-512 into a cache
by hash (`<data dir>/mods-cache/<sha512>.jar`, shared by the node's servers), copied into a
server's mods/ or plugins/, which is opened without following links.

Copied, not hard linked: the sandbox hands a server's files to its account at start, and a linked
inode would let one game server rewrite the jar every other server gets from the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import stat
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from app.servers.domain.mods import (
    DISABLED,
    SHA512,
    ModDownloadFailed,
    ModFile,
    ModHashMismatch,
    NodeJar,
    validate_file_name,
)
from app.shared.domain import Conflict, InvalidInput, NotFound

DIRECTORIES = ("mods", "plugins")
LIST_MAX = 500
CHUNK = 1024 * 1024
_TEMP = ".mcdash-mod-"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _sha512_of(fd: int) -> str:
    digest = hashlib.sha512()
    while chunk := os.read(fd, CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


class NodeModFiles:
    def __init__(
        self, servers_dir: Path, cache_dir: Path, *, max_bytes: int, user_agent: str
    ) -> None:
        self._servers = servers_dir
        self._cache = cache_dir
        self._max = max_bytes
        self._user_agent = user_agent
        self._locks: dict[str, asyncio.Lock] = {}

    def discard_partials(self) -> None:
        """Downloads a dead worker cut off; none of them ever became a cached jar."""
        if self._cache.is_dir():
            for partial in self._cache.glob(f"{_TEMP}*"):
                partial.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _directory(self, server_id: uuid.UUID, directory: str, *, create: bool) -> Iterator[int]:
        if directory not in DIRECTORIES:
            raise InvalidInput("the directory is mods or plugins", field="directory")
        root = self._servers / str(server_id)
        if create:
            root.mkdir(parents=True, exist_ok=True)
        try:
            top = os.open(root, _DIR_FLAGS)
        except FileNotFoundError:
            yield -1  # never started and nothing installed: an empty directory
            return
        try:
            try:
                fd = os.open(directory, _DIR_FLAGS, dir_fd=top)
            except FileNotFoundError:
                if not create:
                    fd = -1
                else:
                    os.mkdir(directory, 0o755, dir_fd=top)
                    info = os.fstat(top)
                    if os.geteuid() == 0 and info.st_uid != 0:
                        os.chown(
                            directory, info.st_uid, info.st_gid, dir_fd=top, follow_symlinks=False
                        )
                    fd = os.open(directory, _DIR_FLAGS, dir_fd=top)
            except OSError:
                raise Conflict(
                    f"{directory}/ of this server is not a directory (a link or a file)"
                ) from None
        finally:
            os.close(top)
        try:
            yield fd
        finally:
            if fd >= 0:
                os.close(fd)

    def list(self, server_id: uuid.UUID, directory: str) -> list[NodeJar]:
        """Blocking: regular .jar and .jar.disabled files, hashed; links and others skipped."""
        with self._directory(server_id, directory, create=False) as fd:
            if fd < 0:
                return []
            jars = []
            for name in sorted(os.listdir(fd))[: LIST_MAX * 2]:
                enabled = name.endswith(".jar")
                if not (enabled or name.endswith(".jar" + DISABLED)) or name.startswith(_TEMP):
                    continue
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if not stat.S_ISREG(info.st_mode) or info.st_size > self._max:
                    continue
                file = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
                try:
                    sha512 = _sha512_of(file)
                finally:
                    os.close(file)
                jars.append(
                    NodeJar(
                        file_name=name.removesuffix(DISABLED),
                        enabled=enabled,
                        size=info.st_size,
                        sha512=sha512,
                    )
                )
                if len(jars) >= LIST_MAX:
                    break
            return jars

    async def install(
        self, server_id: uuid.UUID, directory: str, files: Sequence[ModFile], replace: Sequence[str]
    ) -> None:
        """Every file downloaded and verified first; only then are they copied into place."""
        for file in files:
            validate_file_name(file.file_name)
            if not SHA512.fullmatch(file.sha512):
                raise InvalidInput("a file needs its SHA-512", field="sha512")
        for name in replace:
            validate_file_name(name)
        cached = [await self._cached(file) for file in files]
        await asyncio.to_thread(self._place, server_id, directory, files, cached, replace)

    async def _cached(self, file: ModFile) -> Path:
        lock = self._locks.setdefault(file.sha512, asyncio.Lock())
        async with lock:
            path = self._cache / f"{file.sha512}.jar"
            if await asyncio.to_thread(path.is_file):
                return path
            await asyncio.to_thread(self._cache.mkdir, parents=True, exist_ok=True)
            tmp = self._cache / f"{_TEMP}{secrets.token_hex(8)}"
            try:
                await self._download(file, tmp)
                await asyncio.to_thread(os.replace, tmp, path)
            finally:
                await asyncio.to_thread(tmp.unlink, missing_ok=True)
            return path

    async def _download(self, file: ModFile, tmp: Path) -> None:
        if not file.url.startswith(("https://", "http://")):
            raise InvalidInput("a mod's url is http(s)", field="url")
        limit = min(file.size or self._max, self._max)
        digest, size = hashlib.sha512(), 0
        headers = {"User-Agent": self._user_agent}
        out = await asyncio.to_thread(open, tmp, "wb")
        try:
            async with (
                httpx.AsyncClient(timeout=60, follow_redirects=True, headers=headers) as http,
                http.stream("GET", file.url) as response,
            ):
                if not response.is_success:
                    raise ModDownloadFailed(
                        f"{file.url} answered {response.status_code}", url=file.url
                    )
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise ModHashMismatch(
                            f"{file.file_name} is larger than the {limit} bytes listed; refused",
                            file_name=file.file_name,
                        )
                    digest.update(chunk)
                    await asyncio.to_thread(out.write, chunk)
        except httpx.HTTPError as exc:
            raise ModDownloadFailed(
                f"could not download {file.file_name}: {type(exc).__name__}", url=file.url
            ) from exc
        finally:
            await asyncio.to_thread(out.close)
        if digest.hexdigest() != file.sha512:
            raise ModHashMismatch(
                f"{file.file_name} does not have the SHA-512 Modrinth lists; nothing was installed",
                file_name=file.file_name,
                expected=file.sha512,
            )

    def _place(
        self,
        server_id: uuid.UUID,
        directory: str,
        files: Sequence[ModFile],
        cached: Sequence[Path],
        replace: Sequence[str],
    ) -> None:
        with self._directory(server_id, directory, create=True) as fd:
            owner = os.fstat(fd)
            for file, source in zip(files, cached, strict=True):
                temp = f"{_TEMP}{secrets.token_hex(8)}"
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                out = os.open(temp, flags, 0o644, dir_fd=fd)
                try:
                    if os.geteuid() == 0 and owner.st_uid != 0:
                        os.fchown(out, owner.st_uid, owner.st_gid)
                    with source.open("rb") as data:
                        while chunk := data.read(CHUNK):
                            os.write(out, chunk)
                    os.fsync(out)
                finally:
                    os.close(out)
                os.rename(temp, file.file_name, src_dir_fd=fd, dst_dir_fd=fd)
            placed = {f.file_name for f in files}
            for name in replace:
                if name not in placed:
                    with contextlib.suppress(FileNotFoundError):
                        self._unlink_regular(fd, name)

    @staticmethod
    def _unlink_regular(fd: int, name: str) -> None:
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if stat.S_ISDIR(info.st_mode):
            raise Conflict(f"{name} is a directory")
        os.unlink(name, dir_fd=fd)

    def change(self, server_id: uuid.UUID, directory: str, file_name: str, action: str) -> str:
        """Blocking: disable (to .jar.disabled), enable, or remove a jar; its name afterwards."""
        if action not in ("disable", "enable", "remove"):
            raise InvalidInput("the action is disable, enable or remove", field="action")
        name = validate_file_name(file_name).removesuffix(DISABLED)
        with self._directory(server_id, directory, create=False) as fd:
            present = [
                n for n in (name, name + DISABLED) if fd >= 0 and _is_regular(fd, n) is not None
            ]
            if not present:
                raise NotFound(f"{directory}/ holds no {name}", file_name=name)
            if action == "remove":
                for found in present:
                    os.unlink(found, dir_fd=fd)
                return name
            source, target = (
                (name, name + DISABLED) if action == "disable" else (name + DISABLED, name)
            )
            if source in present:
                os.rename(source, target, src_dir_fd=fd, dst_dir_fd=fd)
            return target


def _is_regular(fd: int, name: str) -> bool | None:
    try:
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        raise Conflict(f"{name} is not a regular file")
    return True
