"""Archive storage against the real file system and an S3-compatible server (moto) via minio."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from pathlib import Path

import pytest
from minio import Minio

from app.backups.domain.errors import InvalidArchive
from app.backups.domain.model import Compression
from app.backups.infrastructure.archive import extract_archive, inspect_archive, write_archive
from app.backups.infrastructure.s3 import S3BackupStorage
from app.backups.infrastructure.storage import LocalBackupStorage, StorageError
from tests.s3 import S3Endpoint, closed_port

PART = 5 * 1024 * 1024


def s3(endpoint: S3Endpoint, bucket: str) -> S3BackupStorage:
    return S3BackupStorage(
        endpoint=endpoint.endpoint,
        bucket=bucket,
        access_key=endpoint.access_key,
        secret_key=endpoint.secret_key,
        secure=False,
        region="us-east-1",
        part_size=PART,
        timeout_seconds=5,
    )


def make_world(root: Path, *, random_mb: int = 0) -> None:
    (root / "world" / "region").mkdir(parents=True)
    (root / "world" / "level.dat").write_bytes(b"generation=3\n")
    for i in range(3):
        (root / "world" / "region" / f"r.{i}.0.mca").write_bytes(f"r.{i};".encode() * 5000)
    if random_mb:
        (root / "world" / "region" / "big.mca").write_bytes(os.urandom(random_mb * 1024 * 1024))
    (root / ".mcdash").mkdir()
    (root / ".mcdash" / "console.log").write_text("runtime")
    os.mkfifo(root / ".mcdash" / "console.in")
    (root / "server.jar").write_bytes(b"jar")


def produce_from(world: Path, compression: Compression, out: list[tuple[int, str]]):
    def produce(sink) -> None:
        out.append(write_archive(world, sink, compression=compression, level=3))

    return produce


@pytest.mark.parametrize("compression", list(Compression), ids=lambda c: c.value)
def test_local_storage_round_trip_excludes_runtime_files(tmp_path, compression):
    world = tmp_path / "server"
    make_world(world)
    storage = LocalBackupStorage(tmp_path / "backups")
    result: list[tuple[int, str]] = []
    key = f"s/{uuid.uuid4()}{compression.extension}"
    storage.write(key, produce_from(world, compression, result))
    stored = tmp_path / "backups" / key
    size, sha = result[0]
    assert stored.stat().st_size == size
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha
    facts = inspect_archive(stored)
    assert facts.compression is compression
    assert facts.sha256 == sha
    target = tmp_path / "restored"
    target.mkdir()
    extract_archive(stored, compression, target)
    assert (target / "world" / "level.dat").read_bytes() == b"generation=3\n"
    assert not (target / ".mcdash").exists()
    assert not (target / "server.jar").exists()
    assert list((tmp_path / "backups" / "s").iterdir()) == [stored]


def test_local_write_that_fails_leaves_no_file(tmp_path):
    storage = LocalBackupStorage(tmp_path / "backups")

    def produce(sink) -> None:
        sink.write(b"half an archive")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        storage.write("s/x.tar.gz", produce)
    assert list((tmp_path / "backups" / "s").iterdir()) == []


def test_s3_multipart_round_trip_through_minio(tmp_path, moto_s3):
    world = tmp_path / "server"
    make_world(world, random_mb=12)  # incompressible: the archive spans three 5 MiB parts
    storage = s3(moto_s3, "mcdash-multipart")
    result: list[tuple[int, str]] = []
    key = f"{uuid.uuid4()}/{uuid.uuid4()}.tar.gz"
    storage.write(key, produce_from(world, Compression.GZIP, result))
    size, sha = result[0]
    assert size > 2 * PART
    assert storage.size(key) == size
    client = Minio(moto_s3.endpoint, access_key="testing", secret_key="testing", secure=False)
    etag = client.stat_object("mcdash-multipart", key).etag
    assert etag.endswith("-3")  # S3 marks multipart objects with the part count
    downloaded = tmp_path / "down.tar.gz"
    storage.download_to(key, downloaded)
    assert hashlib.sha256(downloaded.read_bytes()).hexdigest() == sha

    async def streamed() -> bytes:
        return b"".join([chunk async for chunk in storage.chunks(key)])

    assert hashlib.sha256(asyncio.run(streamed())).hexdigest() == sha
    storage.delete(key)
    assert storage.size(key) is None


def test_s3_upload_that_fails_midway_leaves_no_object(tmp_path, moto_s3):
    storage = s3(moto_s3, "mcdash-abort")
    key = "server/broken.tar.gz"

    def produce(sink) -> None:
        sink.write(os.urandom(PART + 1024 * 1024))  # the first part is already uploaded
        raise RuntimeError("the archiver crashed")

    with pytest.raises(RuntimeError, match="archiver crashed"):
        storage.write(key, produce)
    assert storage.size(key) is None
    client = Minio(moto_s3.endpoint, access_key="testing", secret_key="testing", secure=False)
    assert list(client.list_objects("mcdash-abort", recursive=True)) == []


def test_s3_unreachable_is_a_storage_error_with_the_reason():
    endpoint = S3Endpoint(host="127.0.0.1", port=closed_port())
    storage = s3(endpoint, "nowhere")
    with pytest.raises(StorageError, match="unreachable"):
        storage.write("k.tar.gz", lambda sink: sink.write(b"x"))


def test_extract_refuses_duplicate_members_and_garbage(tmp_path):
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"\x1f\x8b" + os.urandom(100))
    with pytest.raises(InvalidArchive, match="cannot be read"):
        inspect_archive(garbage)


def test_a_swap_cut_between_its_renames_is_undone(tmp_path):
    from app.backups.infrastructure.swap import RestoreWorkspace

    server_dir = tmp_path / "servers" / "abc"
    old = tmp_path / "servers" / ".restore-abc-0123456789ab.old"
    old.mkdir(parents=True)
    (old / "level.dat").write_text("before")
    assert RestoreWorkspace.recover(server_dir)
    assert (server_dir / "level.dat").read_text() == "before"
    assert not RestoreWorkspace.recover(server_dir)


def test_a_failed_swap_leaves_the_directory_as_it_was(tmp_path, monkeypatch):
    from app.backups.infrastructure import swap
    from app.backups.infrastructure.swap import RestoreWorkspace

    server_dir = tmp_path / "servers" / "abc"
    (server_dir / ".mcdash").mkdir(parents=True)
    (server_dir / ".mcdash" / "console.log").write_text("log")
    (server_dir / "level.dat").write_text("before")
    workspace = RestoreWorkspace(server_dir, uuid.uuid4())
    workspace.staging.mkdir()
    (workspace.staging / "level.dat").write_text("after")
    real_rename = os.rename

    def failing_rename(source, target):
        if Path(source) == workspace.staging:
            raise OSError(5, "I/O error")
        real_rename(source, target)

    monkeypatch.setattr(swap.os, "rename", failing_rename)
    with pytest.raises(OSError, match="I/O error"):
        workspace.swap()
    assert (server_dir / "level.dat").read_text() == "before"
    assert (server_dir / ".mcdash" / "console.log").read_text() == "log"
    assert not workspace.old.exists()
