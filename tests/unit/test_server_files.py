"""A server's directory: server.properties written, eula.txt, the jar, the FIFO."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from app.servers.domain.model import ServerConfig, ServerType
from app.servers.domain.properties import managed_properties, parse_properties
from app.servers.infrastructure import files
from app.servers.infrastructure.files import ServerDirectory
from app.shared.files import write_atomically


def make_config(**overrides: Any) -> ServerConfig:
    values: dict[str, Any] = {
        "server_type": ServerType.VANILLA,
        "version": "1.21",
        "memory_mb": 2048,
    }
    values.update(overrides)
    return ServerConfig(**values)


# --- the directory -------------------------------------------------------------------------


@pytest.fixture
def directory(tmp_path: Path) -> ServerDirectory:
    return ServerDirectory(tmp_path / "servers" / "abc")


class TestServerDirectoryPaths:
    def test_layout(self, directory: ServerDirectory) -> None:
        root = directory.path

        assert directory.meta == root / ".mcdash"
        assert directory.jar == root / "server.jar"


class TestPrivateDirectory:
    """The game server owns its directory; the worker's .mcdash/ must stay the worker's."""

    def test_is_created_private(self, directory: ServerDirectory) -> None:
        directory.ensure_private()

        st = directory.meta.lstat()
        assert stat.S_ISDIR(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o700
        assert st.st_uid == os.geteuid()

    @pytest.mark.parametrize("replacement", ["symlink-to-outside", "plain-file"])
    def test_a_replaced_one_is_set_aside(
        self, directory: ServerDirectory, tmp_path: Path, replacement: str
    ) -> None:
        outside = tmp_path / "outside"
        outside.mkdir()
        directory.path.mkdir(parents=True)
        if replacement == "symlink-to-outside":
            directory.meta.symlink_to(outside)
        else:
            directory.meta.write_text("not a directory")

        directory.ensure_private()
        directory.write_private("console.offset", b"42")

        assert not directory.meta.is_symlink()
        assert directory.meta.is_dir()
        assert list(outside.iterdir()) == []
        assert [p.name for p in directory.path.glob(".mcdash.replaced-*")]

    def test_files_are_never_opened_through_a_symlink(
        self, directory: ServerDirectory, tmp_path: Path
    ) -> None:
        secret = tmp_path / "secret"
        secret.write_text("worker's secret")
        directory.ensure_private()
        (directory.meta / "console.log").symlink_to(secret)

        with pytest.raises(OSError, match="symbolic links"):
            directory.read_private("console.log", limit=100)
        with pytest.raises(OSError, match="symbolic links"):
            directory.write_private("console.log", b"x")
        assert secret.read_text() == "worker's secret"

    def test_a_directory_swapped_after_the_check_is_refused(
        self, directory: ServerDirectory, tmp_path: Path
    ) -> None:
        directory.ensure_private()
        directory.meta.chmod(0o777)

        with pytest.raises(OSError, match="not the worker's own"):
            directory.write_private("console.offset", b"1")


class TestSettingsFilesOfAHostileServer:
    def test_a_symlinked_server_properties_is_replaced_not_read(
        self, directory: ServerDirectory, tmp_path: Path
    ) -> None:
        secret = tmp_path / "jwt.key"
        secret.write_text("leaked-key=1\n")
        directory.path.mkdir(parents=True)
        (directory.path / "server.properties").symlink_to(secret)

        directory.write_settings(make_config(), port=25565, eula_accepted=False)

        written = directory.path / "server.properties"
        assert not written.is_symlink()
        assert "leaked-key" not in written.read_text()
        assert secret.read_text() == "leaked-key=1\n"

    def test_a_fifo_in_place_of_server_properties_does_not_block(
        self, directory: ServerDirectory
    ) -> None:
        directory.path.mkdir(parents=True)
        os.mkfifo(directory.path / "server.properties")

        directory.write_settings(make_config(), port=25566, eula_accepted=False)

        assert "server-port=25566" in (directory.path / "server.properties").read_text()


class TestWriteSettings:
    def test_fresh_directory_without_eula(self, directory: ServerDirectory) -> None:
        directory.write_settings(make_config(), port=25565, eula_accepted=False)

        assert directory.meta.is_dir()
        assert not (directory.path / "eula.txt").exists()
        properties = (directory.path / "server.properties").read_text(encoding="utf-8")
        assert parse_properties(properties) == managed_properties(make_config(), 25565)

    def test_writes_eula_when_accepted(self, directory: ServerDirectory) -> None:
        directory.write_settings(make_config(), port=25565, eula_accepted=True)

        eula = (directory.path / "eula.txt").read_text()
        assert "eula=true" in eula.splitlines()
        assert parse_properties(eula) == {"eula": "true"}

    def test_keeps_other_keys_of_an_existing_file(self, directory: ServerDirectory) -> None:
        directory.path.mkdir(parents=True)
        (directory.path / "server.properties").write_text(
            "# my comment\nlevel-seed=12345\nserver-port=25565\ndifficulty=hard\n",
            encoding="utf-8",
        )
        config = make_config(motd="§a Hello ✓", whitelist=True, max_players=5)

        directory.write_settings(config, port=25570, eula_accepted=False)

        text = (directory.path / "server.properties").read_text(encoding="utf-8")
        lines = text.splitlines()
        assert lines[:4] == [
            "# my comment",
            "level-seed=12345",
            "server-port=25570",
            "difficulty=hard",
        ]
        parsed = parse_properties(text)
        assert parsed["level-seed"] == "12345"
        assert parsed["difficulty"] == "hard"
        assert parsed["motd"] == "§a Hello ✓"
        assert parsed["white-list"] == "true"
        assert parsed["enforce-whitelist"] == "true"
        assert parsed["max-players"] == "5"
        assert not (directory.path / "eula.txt").exists()

    def test_writes_utf8(self, directory: ServerDirectory) -> None:
        directory.write_settings(make_config(motd="§a ✓"), port=25565, eula_accepted=False)

        raw = (directory.path / "server.properties").read_bytes()
        assert "motd=§a ✓\n".encode() in raw

    def test_rewriting_is_stable_and_leaves_no_temp_files(self, directory: ServerDirectory) -> None:
        config = make_config(motd="#1 = best: server!")
        directory.write_settings(config, port=25565, eula_accepted=True)
        first = (directory.path / "server.properties").read_text(encoding="utf-8")

        directory.write_settings(config, port=25565, eula_accepted=True)

        assert (directory.path / "server.properties").read_text(encoding="utf-8") == first
        assert sorted(p.name for p in directory.path.iterdir()) == [
            ".mcdash",
            "eula.txt",
            "server.properties",
        ]


class TestInstallJar:
    @pytest.fixture
    def cached_jar(self, tmp_path: Path) -> Path:
        cache = tmp_path / "cache"
        cache.mkdir()
        jar = cache / "abc123.jar"
        jar.write_bytes(b"PK\x03\x04 jar one")
        return jar

    def test_hard_links_the_cached_jar(self, directory: ServerDirectory, cached_jar: Path) -> None:
        directory.path.mkdir(parents=True)

        directory.install_jar(cached_jar)

        assert directory.jar.read_bytes() == b"PK\x03\x04 jar one"
        assert os.stat(directory.jar).st_ino == os.stat(cached_jar).st_ino
        assert os.stat(cached_jar).st_nlink == 2
        assert not (directory.path / ".server.jar.tmp").exists()

    def test_replaces_an_existing_jar(
        self, directory: ServerDirectory, cached_jar: Path, tmp_path: Path
    ) -> None:
        directory.path.mkdir(parents=True)
        directory.jar.write_bytes(b"old jar")
        old_inode = os.stat(directory.jar).st_ino

        directory.install_jar(cached_jar)

        assert directory.jar.read_bytes() == b"PK\x03\x04 jar one"
        assert os.stat(directory.jar).st_ino != old_inode
        assert os.stat(directory.jar).st_ino == os.stat(cached_jar).st_ino

    def test_replaces_a_stale_temp_file(self, directory: ServerDirectory, cached_jar: Path) -> None:
        directory.path.mkdir(parents=True)
        (directory.path / ".server.jar.tmp").write_bytes(b"left over")

        directory.install_jar(cached_jar)

        assert directory.jar.read_bytes() == b"PK\x03\x04 jar one"
        assert not (directory.path / ".server.jar.tmp").exists()

    def test_copies_when_a_hard_link_is_impossible(
        self, directory: ServerDirectory, cached_jar: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        directory.path.mkdir(parents=True)

        def cross_device(src: object, dst: object) -> None:
            raise OSError(18, "Invalid cross-device link")

        monkeypatch.setattr(files.os, "link", cross_device)

        directory.install_jar(cached_jar)

        assert directory.jar.read_bytes() == b"PK\x03\x04 jar one"
        assert os.stat(directory.jar).st_ino != os.stat(cached_jar).st_ino
        assert os.stat(cached_jar).st_nlink == 1


class TestConsoleFifo:
    def test_creates_a_private_fifo(self, directory: ServerDirectory) -> None:
        directory.ensure_private()
        directory.ensure_console_fifo()

        mode = os.stat(directory.meta / "console.in").st_mode
        assert stat.S_ISFIFO(mode)
        assert stat.S_IMODE(mode) & 0o077 == 0

    def test_is_idempotent(self, directory: ServerDirectory) -> None:
        directory.ensure_private()
        directory.ensure_console_fifo()
        fifo = directory.meta / "console.in"
        inode = os.stat(fifo).st_ino

        directory.ensure_console_fifo()

        assert stat.S_ISFIFO(os.stat(fifo).st_mode)
        assert os.stat(fifo).st_ino == inode

    def test_a_regular_file_in_its_place_is_replaced(self, directory: ServerDirectory) -> None:
        directory.ensure_private()
        (directory.meta / "console.in").write_text("not a fifo")

        directory.ensure_console_fifo()

        assert stat.S_ISFIFO(os.stat(directory.meta / "console.in").st_mode)


class TestWriteAtomically:
    @pytest.mark.skipif(os.geteuid() != 0, reason="only a root worker writes for other accounts")
    def test_a_new_file_belongs_to_the_directory_owner(self, tmp_path: Path) -> None:
        server_dir = tmp_path / "server"
        server_dir.mkdir()
        os.chown(server_dir, 2_000_123, 2_000_123)

        write_atomically(server_dir / "eula.txt", b"eula=true\n")

        st = (server_dir / "eula.txt").stat()
        assert (st.st_uid, st.st_gid) == (2_000_123, 2_000_123)

    def test_creates_and_replaces_content(self, tmp_path: Path) -> None:
        target = tmp_path / "file.txt"

        write_atomically(target, b"first")
        write_atomically(target, b"second")

        assert target.read_bytes() == b"second"
        assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]

    def test_failure_leaves_the_old_content_and_no_temp_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        target = tmp_path / "file.txt"
        target.write_bytes(b"original")

        def failing_replace(src: object, dst: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(files.os, "replace", failing_replace)

        with pytest.raises(OSError, match="No space left"):
            write_atomically(target, b"new")

        monkeypatch.undo()
        assert target.read_bytes() == b"original"
        assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]


class TestRemove:
    def test_deletes_the_directory(self, directory: ServerDirectory) -> None:
        directory.write_settings(make_config(), port=25565, eula_accepted=True)
        directory.ensure_console_fifo()
        (directory.path / "world" / "region").mkdir(parents=True)
        (directory.path / "world" / "region" / "r.0.0.mca").write_bytes(b"\x00" * 16)

        directory.remove()

        assert not directory.path.exists()
        assert directory.path.parent.exists()

    def test_missing_directory_is_fine(self, directory: ServerDirectory) -> None:
        directory.remove()

        assert not directory.path.exists()
