"""A node's mods/ and plugins/: links never followed, disable/enable/remove, and the safety
backup taken through the backups context's commands before a change."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.servers.domain.mods import ModFile
from app.servers.infrastructure.mod_agent import BusSafetyBackups
from app.servers.infrastructure.modfiles import NodeModFiles
from app.shared.domain import Conflict, InvalidInput, NotFound
from app.shared.security import Principal, Role

SID = uuid.uuid4()


@pytest.fixture
def node(tmp_path: Path) -> tuple[NodeModFiles, Path]:
    files = NodeModFiles(
        tmp_path / "servers", tmp_path / "cache", max_bytes=1024, user_agent="test"
    )
    root = tmp_path / "servers" / str(SID)
    root.mkdir(parents=True)
    return files, root


def test_lists_regular_jars_only(node, tmp_path) -> None:
    files, root = node
    (root / "plugins").mkdir()
    (root / "plugins" / "a.jar").write_bytes(b"a")
    (root / "plugins" / "b.jar.disabled").write_bytes(b"b")
    (root / "plugins" / "notes.txt").write_bytes(b"n")
    (root / "plugins" / "big.jar").write_bytes(b"x" * 2048)
    (tmp_path / "secret.jar").write_bytes(b"s")
    (root / "plugins" / "link.jar").symlink_to(tmp_path / "secret.jar")
    listed = files.list(SID, "plugins")
    assert [(j.file_name, j.enabled, j.sha512) for j in listed] == [
        ("a.jar", True, hashlib.sha512(b"a").hexdigest()),
        ("b.jar", False, hashlib.sha512(b"b").hexdigest()),
    ]


def test_a_never_started_server_lists_nothing(tmp_path) -> None:
    files = NodeModFiles(tmp_path / "servers", tmp_path / "c", max_bytes=10, user_agent="t")
    assert files.list(uuid.uuid4(), "mods") == []


def test_a_linked_directory_is_refused(node, tmp_path) -> None:
    files, root = node
    (tmp_path / "elsewhere").mkdir()
    (root / "mods").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(Conflict, match="not a directory"):
        files.list(SID, "mods")
    cached = tmp_path / "c.jar"
    cached.write_bytes(b"c")
    file = ModFile(url="http://x/c.jar", file_name="c.jar", size=1, sha512="0" * 128)
    with pytest.raises(Conflict):
        files._place(SID, "mods", [file], [cached], [])
    assert list((tmp_path / "elsewhere").iterdir()) == []


@pytest.mark.parametrize("directory", ["config", "../mods", "world"])
def test_only_mods_or_plugins(node, directory) -> None:
    with pytest.raises(InvalidInput):
        node[0].list(SID, directory)


def test_disable_enable_remove(node) -> None:
    files, root = node
    (root / "mods").mkdir()
    (root / "mods" / "m.jar").write_bytes(b"m")
    assert files.change(SID, "mods", "m.jar", "disable") == "m.jar.disabled"
    assert sorted(p.name for p in (root / "mods").iterdir()) == ["m.jar.disabled"]
    assert files.change(SID, "mods", "m.jar", "enable") == "m.jar"
    assert files.change(SID, "mods", "m.jar", "remove") == "m.jar"
    assert list((root / "mods").iterdir()) == []
    with pytest.raises(NotFound):
        files.change(SID, "mods", "m.jar", "remove")


def test_places_copies_not_links(node, tmp_path) -> None:
    files, root = node
    cached = tmp_path / "cached.jar"
    cached.write_bytes(b"new")
    (root / "mods").mkdir()
    (root / "mods" / "old.jar").write_bytes(b"old")
    file = ModFile(url="http://x/n.jar", file_name="n.jar", size=3, sha512="0" * 128)
    files._place(SID, "mods", [file], [cached], ["old.jar"])
    placed = root / "mods" / "n.jar"
    assert placed.read_bytes() == b"new"
    assert placed.stat().st_ino != cached.stat().st_ino
    assert not (root / "mods" / "old.jar").exists()


@dataclass
class Stored:
    id: uuid.UUID
    status: Any
    error: str | None = None


class Status:
    def __init__(self, value: str) -> None:
        self.value = value


class FakeBus:
    def __init__(self, statuses: list[str]) -> None:
        self.statuses = statuses
        self.sent: list[Any] = []
        self.backup_id = uuid.uuid4()

    async def handle(self, message: Any) -> Stored:
        self.sent.append(message)
        status = self.statuses.pop(0) if self.statuses else "running"
        return Stored(id=self.backup_id, status=Status(status), error="disk full")


ACTOR = Principal(user_id=uuid.uuid4(), username="o", role=Role.USER, session_id=uuid.uuid4())


async def test_the_safety_backup_is_waited_for() -> None:
    bus = FakeBus(["requested", "running", "completed"])
    backups = BusSafetyBackups(bus, poll=0)  # type: ignore[arg-type]
    assert await backups.take(ACTOR, SID, "before installing x") == bus.backup_id
    assert type(bus.sent[0]).__name__ == "CreateBackup"
    assert bus.sent[0].name == "safety: before installing x"


async def test_a_failed_safety_backup_stops_the_change() -> None:
    backups = BusSafetyBackups(FakeBus(["requested", "failed"]), poll=0)  # type: ignore[arg-type]
    with pytest.raises(Conflict, match="disk full"):
        await backups.take(ACTOR, SID, "before x")


async def test_a_safety_backup_that_never_ends_times_out() -> None:
    backups = BusSafetyBackups(FakeBus([]), timeout=0.05, poll=0.01)  # type: ignore[arg-type]
    with pytest.raises(Conflict, match="did not complete"):
        await backups.take(ACTOR, SID, "before x")


def test_cut_downloads_are_discarded_at_start(node, tmp_path) -> None:
    files, _ = node
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / ".mcdash-mod-0123").write_bytes(b"half")
    kept = tmp_path / "cache" / f"{'0' * 128}.jar"
    kept.write_bytes(b"whole")
    files.discard_partials()
    assert list((tmp_path / "cache").iterdir()) == [kept]
