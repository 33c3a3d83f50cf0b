"""S3/MinIO archive storage through the minio client: streamed multipart uploads."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, BinaryIO, cast

import urllib3
from minio import Minio
from minio.error import S3Error

from app.backups.infrastructure.archive import BUFFER
from app.backups.infrastructure.storage import StorageError


class _Aborted(Exception):
    pass


class ChunkPipe:
    """A bounded pipe between the archiving thread and minio's reader thread.

    `abort()` makes the reader fail instead of seeing a clean end, so a broken archive can
    never be completed as an object.
    """

    def __init__(self, depth: int = 8) -> None:
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=depth)
        self._buffer = bytearray()
        self._ended = False
        self._pending = bytearray()
        self.reader_error: BaseException | None = None

    def _put(self, item: bytes | None) -> None:
        while True:
            if self.reader_error is not None:
                raise StorageError(f"S3 upload failed: {_describe(self.reader_error)}")
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def write(self, data: bytes) -> int:
        self._pending += data
        if len(self._pending) >= BUFFER:
            self._put(bytes(self._pending))
            self._pending.clear()
        return len(data)

    def flush(self) -> None:
        """Chunks are handed over by size; `close` delivers the rest."""

    def close(self) -> None:
        if self._pending:
            self._put(bytes(self._pending))
            self._pending.clear()
        self._put(None)

    def abort(self, reason: BaseException) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._queue.put(reason)

    def read(self, size: int = -1) -> bytes:
        while not self._ended and (size < 0 or len(self._buffer) < size):
            item = self._queue.get()
            if item is None:
                self._ended = True
            elif isinstance(item, BaseException):
                raise _Aborted(str(item)) from item
            else:
                self._buffer += item
        cut = len(self._buffer) if size < 0 else size
        data = bytes(self._buffer[:cut])
        del self._buffer[:cut]
        return data


class S3BackupStorage:
    name = "s3"
    shared = True

    def __init__(
        self,
        *,
        endpoint: str,
        bucket: str,
        access_key: str | None,
        secret_key: str | None,
        secure: bool,
        region: str | None,
        part_size: int,
        timeout_seconds: float = 30.0,
    ) -> None:
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout_seconds, read=timeout_seconds),
            retries=urllib3.Retry(
                total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
            ),
            maxsize=10,
        )
        self._client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=http,
        )
        self.bucket = bucket
        self.part_size = part_size
        self._bucket_ready = False

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        try:
            if not self._client.bucket_exists(self.bucket):
                self._client.make_bucket(self.bucket)
        except (S3Error, urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageError(f"S3 storage unreachable: {_describe(exc)}") from exc
        self._bucket_ready = True

    def write(self, key: str, produce: Callable[[BinaryIO], None]) -> None:
        self._ensure_bucket()
        pipe = ChunkPipe()
        failure: list[BaseException] = []

        def upload() -> None:
            try:
                self._client.put_object(
                    self.bucket,
                    key,
                    cast(BinaryIO, pipe),
                    length=-1,
                    part_size=self.part_size,
                )
            except BaseException as exc:  # noqa: BLE001 - handed over to the producing thread
                failure.append(exc)
                pipe.reader_error = exc

        uploader = threading.Thread(target=upload, name=f"s3-upload-{key}", daemon=True)
        uploader.start()
        try:
            produce(cast(BinaryIO, pipe))
        except BaseException as exc:
            pipe.abort(exc)
            uploader.join()
            self._remove_quietly(key)
            raise
        with contextlib.suppress(StorageError):
            pipe.close()
        uploader.join()
        if failure:
            self._remove_quietly(key)
            raise StorageError(f"S3 upload failed: {_describe(failure[0])}") from failure[0]

    def _remove_quietly(self, key: str) -> None:
        with contextlib.suppress(Exception):
            self._client.remove_object(self.bucket, key)

    def upload_file(self, key: str, path: Path) -> None:
        self._ensure_bucket()
        try:
            self._client.fput_object(self.bucket, key, str(path), part_size=self.part_size)
        except (S3Error, urllib3.exceptions.HTTPError, OSError) as exc:
            self._remove_quietly(key)
            raise StorageError(f"S3 upload failed: {_describe(exc)}") from exc

    def download_to(self, key: str, path: Path) -> None:
        try:
            self._client.fget_object(self.bucket, key, str(path))
        except (S3Error, urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageError(f"S3 download failed: {_describe(exc)}") from exc

    def size(self, key: str) -> int | None:
        try:
            stat = self._client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket", "NoSuchObject"):
                return None
            raise StorageError(f"S3 storage error: {_describe(exc)}") from exc
        return stat.size

    def discard_partials(self, prefix: str) -> int:
        """An interrupted multipart upload never becomes an object; the bucket's lifecycle rule
        (AbortIncompleteMultipartUpload) reclaims its parts."""
        return 0

    def delete_all(self, prefix: str) -> int:
        try:
            keys = [
                item.object_name
                for item in self._client.list_objects(self.bucket, prefix=prefix, recursive=True)
                if item.object_name
            ]
            for key in keys:
                self._client.remove_object(self.bucket, key)
        except (S3Error, urllib3.exceptions.HTTPError) as exc:
            raise StorageError(f"S3 delete failed: {_describe(exc)}") from exc
        return len(keys)

    def delete(self, key: str) -> None:
        try:
            self._client.remove_object(self.bucket, key)
        except (S3Error, urllib3.exceptions.HTTPError) as exc:
            raise StorageError(f"S3 delete failed: {_describe(exc)}") from exc

    async def chunks(self, key: str) -> AsyncIterator[bytes]:
        response: Any = await asyncio.to_thread(self._client.get_object, self.bucket, key)
        try:
            stream = response.stream(BUFFER)
            while True:
                chunk = await asyncio.to_thread(next, stream, b"")
                if not chunk:
                    break
                yield chunk
        finally:
            response.close()
            response.release_conn()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, S3Error):
        return f"{exc.code}: {exc.message}"
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        return f"{type(exc.reason).__name__}: {exc.reason}"
    return f"{type(exc).__name__}: {exc}"
