"""The jar cache: verified downloads and checked uploads, stored under their SHA-256."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
import re
import struct
import tempfile
import time
import zipfile
import zlib
from collections.abc import AsyncIterable
from pathlib import Path
from typing import BinaryIO

import httpx

from app.servers.domain.errors import DownloadFailed, InvalidJar, JarTooLarge
from app.servers.infrastructure.catalog import ARTIFACT_MAX_BYTES, JarSpec, bad_status

_SHA1 = re.compile(r"^[0-9a-f]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MANIFEST = "META-INF/MANIFEST.MF"
MANIFEST_MAX_BYTES = 64 * 1024
CENTRAL_DIRECTORY_MAX_BYTES = 16 * 1024 * 1024  # about 150,000 entries; zipfile keeps them all
_END_RECORD = struct.Struct("<4s4H2LH")
_END_RECORD64 = struct.Struct("<4sQ2H2L4Q")
_LOCATOR_SIZE = 20


class JarCache:
    """Jars stored as `<root>/<sha256>.jar`; Mojang's SHA-1s map to them through `<root>/sha1/`."""

    def __init__(self, root: Path, http: httpx.AsyncClient, *, max_upload_bytes: int) -> None:
        self._root = root
        self._http = http
        self._max_upload = max_upload_bytes
        self._locks: dict[str, asyncio.Lock] = {}

    def path_for(self, sha256: str) -> Path | None:
        if not _SHA256.match(sha256):
            return None
        path = self._root / f"{sha256}.jar"
        return path if path.is_file() else None

    async def fetch(self, spec: JarSpec) -> Path:
        """The verified jar for `spec`, downloaded only when it is not cached yet."""
        checksum = _identifying_checksum(spec)
        lock = self._locks.setdefault(checksum, asyncio.Lock())
        async with lock:
            cached = await asyncio.to_thread(self._cached, spec)
            return cached or await self._download(spec)

    async def fetch_pinned(self, spec: JarSpec) -> Path:
        """For an artifact with no published digest (Fabric's launcher): the SHA-256 of its
        first download is pinned under its URL, and every later download must match it."""
        pin = self._root / "pins" / hashlib.sha256(spec.url.encode()).hexdigest()
        lock = self._locks.setdefault(pin.name, asyncio.Lock())
        async with lock:
            pinned = await asyncio.to_thread(_read_pin, pin)
            if pinned is not None:
                spec = dataclasses.replace(spec, sha256=pinned, sha1=None)
                cached = await asyncio.to_thread(self._cached, spec)
                try:
                    return cached or await self._download(spec)
                except DownloadFailed as exc:
                    raise DownloadFailed(
                        f"{exc.detail} (the SHA-256 pinned at its first download)", url=spec.url
                    ) from exc
            path = await self._download(dataclasses.replace(spec, sha256=None, sha1=None))
            await asyncio.to_thread(_write_pin, pin, path.stem)
            return path

    async def store_upload(self, chunks: AsyncIterable[bytes]) -> tuple[str, int]:
        """Store a custom jar after checking its size and that it names a Main-Class."""
        tmp, out = await asyncio.to_thread(self._open_temp, ".upload-")
        try:
            sha256, size = hashlib.sha256(), 0
            async for chunk in chunks:
                size += len(chunk)
                if size > self._max_upload:
                    raise JarTooLarge(
                        f"upload exceeds the limit of {self._max_upload} bytes"
                        f" ({self._max_upload / 2**20:.0f} MiB)",
                        limit=self._max_upload,
                    )
                sha256.update(chunk)
                await asyncio.to_thread(out.write, chunk)
            await asyncio.to_thread(_flush_and_close, out)
            await asyncio.to_thread(_check_runnable_jar, tmp)
            digest = sha256.hexdigest()
            path = self._root / f"{digest}.jar"
            await asyncio.to_thread(os.replace, tmp, path)
        except BaseException:
            _discard(out, tmp)
            raise
        return digest, size

    def _cached(self, spec: JarSpec) -> Path | None:
        sha256 = spec.sha256
        if sha256 is None and spec.sha1:
            index = self._root / "sha1" / spec.sha1
            sha256 = index.read_text().strip() if index.is_file() else None
        path = self.path_for(sha256) if sha256 else None
        if path is None or spec.size is None:
            return path
        return path if path.stat().st_size == spec.size else None

    async def _download(self, spec: JarSpec) -> Path:
        tmp, out = await asyncio.to_thread(self._open_temp, ".download-")
        try:
            sha1, sha256, size = hashlib.sha1(usedforsecurity=False), hashlib.sha256(), 0
            limit = ARTIFACT_MAX_BYTES if spec.size is None else spec.size
            try:
                async with self._http.stream("GET", spec.url) as response:
                    if not response.is_success:
                        raise bad_status(spec.url, response.status_code)
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > limit:
                            break
                        sha1.update(chunk)
                        sha256.update(chunk)
                        await asyncio.to_thread(out.write, chunk)
            except httpx.HTTPError as exc:
                raise DownloadFailed(
                    f"could not download {spec.url}: {exc!r}", url=spec.url
                ) from exc
            if size > limit or (spec.size is not None and size != spec.size):
                raise DownloadFailed(
                    f"{spec.url}: size mismatch: expected {spec.size or f'at most {limit}'}"
                    f" bytes, got {'more' if size > limit else size}",
                    url=spec.url,
                )
            _verify(spec, "sha256", spec.sha256, sha256.hexdigest())
            _verify(spec, "sha1", spec.sha1, sha1.hexdigest())
            await asyncio.to_thread(_flush_and_close, out)
            path = self._root / f"{sha256.hexdigest()}.jar"
            await asyncio.to_thread(os.replace, tmp, path)
        except BaseException:
            _discard(out, tmp)
            raise
        if spec.sha256 is None and spec.sha1:
            await asyncio.to_thread(self._index_sha1, spec.sha1, sha256.hexdigest())
        return path

    def discard_partials(self, *, idle_seconds: float = 600) -> int:
        """Remove what uploads and downloads cut short by a dead worker left behind: partial
        files nobody has written to for `idle_seconds` (another worker may share the cache)."""
        removed, cutoff = 0, time.time() - idle_seconds
        for partial in self._root.glob(".*.part") if self._root.is_dir() else ():
            with contextlib.suppress(FileNotFoundError):
                if partial.stat().st_mtime < cutoff:
                    partial.unlink()
                    removed += 1
        return removed

    def _open_temp(self, prefix: str) -> tuple[Path, BinaryIO]:
        self._root.mkdir(parents=True, exist_ok=True, mode=0o700)  # reached through links only
        fd, name = tempfile.mkstemp(dir=self._root, prefix=prefix, suffix=".part")
        return Path(name), os.fdopen(fd, "wb")

    def _index_sha1(self, sha1: str, sha256: str) -> None:
        index = self._root / "sha1"
        index.mkdir(exist_ok=True)
        fd, name = tempfile.mkstemp(dir=index, prefix=".index-")
        with os.fdopen(fd, "w") as out:
            out.write(sha256)
        os.replace(name, index / sha1)


def _read_pin(pin: Path) -> str | None:
    value = pin.read_text().strip() if pin.is_file() else ""
    return value if _SHA256.match(value) else None


def _write_pin(pin: Path, sha256: str) -> None:
    pin.parent.mkdir(exist_ok=True, mode=0o700)
    fd, name = tempfile.mkstemp(dir=pin.parent, prefix=".pin-")
    with os.fdopen(fd, "w") as out:
        out.write(sha256)
    os.replace(name, pin)


def _identifying_checksum(spec: JarSpec) -> str:
    """The SHA-256, else the SHA-1, that names the jar; a malformed one could escape the root."""
    if spec.sha256 is not None and _SHA256.match(spec.sha256):
        return spec.sha256
    if spec.sha256 is None and spec.sha1 is not None and _SHA1.match(spec.sha1):
        return spec.sha1
    raise DownloadFailed(f"no valid checksum published for {spec.url}", url=spec.url)


def _verify(spec: JarSpec, algorithm: str, expected: str | None, actual: str) -> None:
    if expected is not None and expected.lower() != actual:
        raise DownloadFailed(
            f"{spec.url}: {algorithm} checksum mismatch: expected {expected}, got {actual}",
            url=spec.url,
        )


def _flush_and_close(out: BinaryIO) -> None:
    out.flush()
    os.fsync(out.fileno())
    out.close()


def _discard(out: BinaryIO, tmp: Path) -> None:
    """Inline rather than in a thread, so it still runs when the task is being cancelled."""
    out.close()
    tmp.unlink(missing_ok=True)


def _check_runnable_jar(path: Path) -> None:
    """Blocking: the jar names a Main-Class; never more than a bounded amount is read."""
    try:
        with path.open("rb") as handle:
            directory_size = _central_directory_size(handle)
            if directory_size is not None and directory_size > CENTRAL_DIRECTORY_MAX_BYTES:
                raise InvalidJar(
                    f"not a runnable jar: its central directory declares {directory_size} bytes"
                    f" of entries, more than the {CENTRAL_DIRECTORY_MAX_BYTES} allowed",
                    limit=CENTRAL_DIRECTORY_MAX_BYTES,
                )
            with zipfile.ZipFile(handle) as jar:
                raw = _read_manifest(jar)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise InvalidJar(f"not a runnable jar: the file is not a zip archive ({exc})") from exc
    except (NotImplementedError, RuntimeError, zlib.error) as exc:
        raise InvalidJar(f"not a runnable jar: META-INF/MANIFEST.MF is unreadable ({exc})") from exc
    manifest = raw.decode("utf-8", errors="replace")
    main_section = re.split(r"\r?\n\r?\n", manifest, maxsplit=1)[0]
    if not re.search(r"^Main-Class:[ \t]*\S", main_section, re.MULTILINE):
        raise InvalidJar("not a runnable jar: the manifest names no Main-Class")


def _read_manifest(jar: zipfile.ZipFile) -> bytes:
    """The manifest, refused when it declares or turns out to hold more than MANIFEST_MAX_BYTES."""
    try:
        info = jar.getinfo(MANIFEST)
    except KeyError as exc:
        raise InvalidJar(f"not a runnable jar: {MANIFEST} is missing") from exc
    if info.file_size > MANIFEST_MAX_BYTES:
        raise InvalidJar(
            f"not a runnable jar: {MANIFEST} declares {info.file_size} bytes, more than the"
            f" {MANIFEST_MAX_BYTES} allowed",
            limit=MANIFEST_MAX_BYTES,
        )
    with jar.open(info) as member:  # stops at the declared size, then checks the CRC
        raw = member.read(MANIFEST_MAX_BYTES + 1)
    if len(raw) > MANIFEST_MAX_BYTES:
        raise InvalidJar(
            f"not a runnable jar: {MANIFEST} holds more than {MANIFEST_MAX_BYTES} bytes",
            limit=MANIFEST_MAX_BYTES,
        )
    return raw


def _central_directory_size(handle: BinaryIO) -> int | None:
    """The size zipfile will read into memory as the central directory, found as it finds it:
    the end record (last 22 bytes, else the last one in the final 64 KiB) or its ZIP64 one."""
    size = handle.seek(0, os.SEEK_END)
    start = max(size - _END_RECORD.size - 0xFFFF, 0)
    handle.seek(start)
    tail = handle.read()
    if tail[-_END_RECORD.size : -_END_RECORD.size + 4] == b"PK\x05\x06" and tail[-2:] == b"\0\0":
        at = len(tail) - _END_RECORD.size
    else:
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < _END_RECORD.size:
            return None  # zipfile refuses it
    directory_size: int = _END_RECORD.unpack_from(tail, at)[5]
    end = start + at
    if end >= _LOCATOR_SIZE + _END_RECORD64.size:
        handle.seek(end - _LOCATOR_SIZE - _END_RECORD64.size)
        before = handle.read(_END_RECORD64.size + 4)
        if before[_END_RECORD64.size :] == b"PK\x06\x07" and before[:4] == b"PK\x06\x06":
            directory_size = _END_RECORD64.unpack_from(before)[8]
    return directory_size
