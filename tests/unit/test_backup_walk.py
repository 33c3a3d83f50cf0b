"""Backups read a directory its game server controls: links are never followed, even swapped in."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from app.backups.domain.model import Compression
from app.backups.infrastructure import walk
from app.backups.infrastructure.archive import copy_tree, write_archive


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "jwt.key"
    path.write_text("the worker's secret")
    return path


@pytest.fixture
def server(tmp_path: Path, secret: Path) -> Path:
    root = tmp_path / "server"
    (root / "world" / "region").mkdir(parents=True)
    (root / "world" / "level.dat").write_text("generation=1\n")
    (root / "world" / "region" / "r.0.0.mca").write_bytes(b"\x00" * 5000)
    (root / ".mcdash").mkdir()
    (root / ".mcdash" / "console.log").write_text("private")
    (root / "server.jar").write_bytes(b"PK")
    (root / "fabric-server-launch.jar").write_bytes(b"PK")  # a link into the jar cache too
    (root / "key-link").symlink_to(secret)
    (root / "etc-link").symlink_to(secret.parent, target_is_directory=True)
    os.mkfifo(root / "a-fifo")
    return root


def archive_members(server: Path) -> dict[str, bytes | None]:
    sink = io.BytesIO()
    write_archive(server, sink, compression=Compression.GZIP, level=1)
    sink.seek(0)
    with tarfile.open(fileobj=sink, mode="r:gz") as tar:
        return {
            member.name: (tar.extractfile(member).read() if member.isfile() else None)  # type: ignore[union-attr]
            for member in tar.getmembers()
        }


def test_an_archive_holds_directories_and_regular_files_only(server: Path) -> None:
    members = archive_members(server)

    assert members == {
        "world": None,
        "world/level.dat": b"generation=1\n",
        "world/region": None,
        "world/region/r.0.0.mca": b"\x00" * 5000,
    }


@pytest.mark.parametrize("swapped", ["file-swapped-for-link", "directory-swapped-for-link"])
def test_a_link_swapped_in_after_the_look_is_not_followed(
    server: Path, secret: Path, monkeypatch: pytest.MonkeyPatch, swapped: str
) -> None:
    """The game server replaces an entry by a link between the walk's stat and its open."""
    name = "world/level.dat" if swapped == "file-swapped-for-link" else "world/region"
    real_stat = os.stat

    def stat_then_swap(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        result = real_stat(path, *args, **kwargs)
        target = server / name
        if kwargs.get("dir_fd") is not None and path == target.name and not target.is_symlink():
            os.rename(target, server / f"{name}.moved")
            target.symlink_to(secret if swapped.startswith("file") else secret.parent)
        return result

    monkeypatch.setattr(walk.os, "stat", stat_then_swap)
    members = archive_members(server)

    assert all(b"the worker's secret" not in (data or b"") for data in members.values())
    assert name not in members


def test_the_snapshot_copy_follows_no_link_either(server: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"

    copy_tree(server, copy)

    copied = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*"))
    assert copied == ["world", "world/level.dat", "world/region", "world/region/r.0.0.mca"]
    assert not any(p.is_symlink() for p in copy.rglob("*"))


def test_only_the_directories_on_the_way_down_are_open(tmp_path: Path) -> None:
    """A wide tree does not run the process out of descriptors."""
    root = tmp_path / "wide"
    for index in range(300):
        (root / f"d{index:03}").mkdir(parents=True)
    before = len(os.listdir("/proc/self/fd"))
    most = 0
    for _ in walk.walk_tree(root, excluded=frozenset()):
        most = max(most, len(os.listdir("/proc/self/fd")) - before)

    assert most <= 4
