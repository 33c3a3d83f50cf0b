"""Reading a server's console log: lines are cut at LINE_MAX_BYTES, the partial buffer stays
bounded whatever the server writes."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from app.servers.domain.console import LINE_MAX_BYTES
from app.servers.infrastructure.files import ServerDirectory
from app.servers.infrastructure.managed import Managed
from app.servers.infrastructure.process import ProcessIdentity
from app.servers.infrastructure.supervisor.exits import crash_reason
from app.servers.infrastructure.supervisor.tail import read_new_lines

MARK = f" [... cut: the line was longer than {LINE_MAX_BYTES} bytes]"


@pytest.fixture
def managed(tmp_path: Path) -> Managed:
    directory = ServerDirectory(tmp_path / "server")
    directory.meta.mkdir(parents=True, mode=0o700)
    (directory.meta / "console.log").write_bytes(b"")
    return Managed(
        server_id=uuid.uuid4(),
        directory=directory,
        identity=ProcessIdentity(1, 1.0),
        port=25565,
        ready=True,
    )


def append(managed: Managed, data: bytes) -> None:
    with (managed.directory.meta / "console.log").open("ab") as log:
        log.write(data)


class TestLineCap:
    def test_a_1mb_line_without_newline_is_cut_and_the_buffer_stays_small(
        self, managed: Managed
    ) -> None:
        append(managed, b"x" * (1 << 20))

        lines = read_new_lines(managed)

        assert lines == ["x" * LINE_MAX_BYTES + MARK]
        assert managed.partial == b""
        assert managed.offset == 1 << 20

    def test_the_rest_of_a_cut_line_is_dropped_up_to_its_newline(self, managed: Managed) -> None:
        append(managed, b"x" * (1 << 20))
        read_new_lines(managed)
        append(managed, b"y" * (1 << 20))

        assert read_new_lines(managed) == []
        assert managed.partial == b""

        append(managed, b"still the same line\n[12:00:00] [Server thread/INFO]: next\n")

        assert read_new_lines(managed) == ["[12:00:00] [Server thread/INFO]: next"]

    def test_a_line_growing_in_small_pieces_never_grows_the_buffer_past_the_cap(
        self, managed: Managed
    ) -> None:
        emitted: list[str] = []
        for _ in range(2000):
            append(managed, b"z" * 1000)
            emitted += read_new_lines(managed)
            assert len(managed.partial) <= LINE_MAX_BYTES
        append(managed, b"\nafter\n")
        emitted += read_new_lines(managed)

        assert emitted == ["z" * LINE_MAX_BYTES + MARK, "after"]

    def test_a_long_complete_line_is_cut_and_the_lines_around_it_are_kept(
        self, managed: Managed
    ) -> None:
        append(managed, b"before\n" + b"w" * 100_000 + b"\nafter\npart")

        assert read_new_lines(managed) == ["before", "w" * LINE_MAX_BYTES + MARK, "after"]
        assert managed.partial == b"part"

    @pytest.mark.parametrize(
        ("size", "end"),
        [(LINE_MAX_BYTES, b"\n"), (LINE_MAX_BYTES - 1, b"\r\n")],
        ids=["8192-bytes-lf", "8191-bytes-crlf"],
    )
    def test_lines_up_to_the_cap_are_whole(self, managed: Managed, size: int, end: bytes) -> None:
        append(managed, b"v" * size)

        assert read_new_lines(managed) == []
        append(managed, end)
        assert read_new_lines(managed) == ["v" * size]

    def test_one_byte_over_the_cap_is_cut(self, managed: Managed) -> None:
        append(managed, b"v" * (LINE_MAX_BYTES + 1))

        assert read_new_lines(managed) == ["v" * LINE_MAX_BYTES + MARK]

    def test_final_read_returns_a_short_partial_line(self, managed: Managed) -> None:
        append(managed, b"no newline yet")

        assert read_new_lines(managed, final=True) == ["no newline yet"]
        assert managed.partial == b""

    def test_a_truncated_log_starts_afresh(self, managed: Managed) -> None:
        append(managed, b"x" * 20_000)
        read_new_lines(managed)
        (managed.directory.meta / "console.log").write_bytes(b"new log\n")

        assert read_new_lines(managed) == ["new log"]


class TestLastWords:
    def test_lines_count_in_the_crash_reason_as_soon_as_they_are_read(
        self, managed: Managed
    ) -> None:
        # The JVM may exit while the lines read last are still being published (in CI, under
        # load, the crash reason once came without them): reading is what keeps them.
        append(managed, b"[12:00:00] [main/INFO]: loading\nbye\n")

        read_new_lines(managed)

        assert crash_reason(3, managed) == (
            "the server process ended unexpectedly (exit code 3): [12:00:00] [main/INFO]: loading"
            " | bye"
        )

    def test_the_last_line_without_its_newline_counts_once_the_jvm_is_gone(
        self, managed: Managed
    ) -> None:
        append(managed, b"one\nlast words")

        read_new_lines(managed)
        read_new_lines(managed, final=True)

        assert list(managed.last_lines) == ["one", "last words"]
