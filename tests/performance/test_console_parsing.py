"""Benchmark: console lines are parsed in linear time and a huge line costs little.

Run on demand: `.venv/bin/pytest -n0 --no-cov -m performance -s tests/performance/test_console_parsing.py`.
Before the rewrite, `[` followed by 100 KB of `00:` took 0.87 s to parse (quadratic: 200 KB of
`00:00:00` took 1.34 s); now it takes about 1 ms, and a 1 MB line about 8 ms.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from app.servers.domain.console import LINE_MAX_BYTES, ConsoleLine
from app.servers.infrastructure.files import ServerDirectory
from app.servers.infrastructure.managed import Managed
from app.servers.infrastructure.process import ProcessIdentity
from app.servers.infrastructure.supervisor.tail import read_new_lines

pytestmark = pytest.mark.performance

HOSTILE = {
    "open-bracket-then-00-colon": lambda n: "[" + "00:" * (n // 3),
    "open-bracket-then-times": lambda n: "[" + "00:00:00" * (n // 8),
    "times-in-one-bracket": lambda n: "[" + "00:00:00 " * (n // 9) + "]",
    "open-brackets": lambda n: "[" * n,
}


def timed(function: Callable[[str], object], text: str) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        function(text)
        best = min(best, time.perf_counter() - started)
    return best


@pytest.mark.parametrize("shape", list(HOSTILE), ids=list(HOSTILE))
def test_parsing_grows_linearly(shape: str) -> None:
    small = timed(ConsoleLine.parse, HOSTILE[shape](100_000))
    large = timed(ConsoleLine.parse, HOSTILE[shape](1_000_000))
    print(f"\n{shape}: 100 KB {small * 1000:.2f} ms, 1 MB {large * 1000:.2f} ms")

    assert small < 0.02
    assert large < 0.2


def test_a_1mb_line_without_newline_is_read_quickly(tmp_path: Path) -> None:
    directory = ServerDirectory(tmp_path / "server")
    directory.meta.mkdir(parents=True, mode=0o700)
    (directory.meta / "console.log").write_bytes(b"[" + b"00:" * 350_000)
    managed = Managed(
        server_id=uuid.uuid4(),
        directory=directory,
        identity=ProcessIdentity(1, 1.0),
        port=25565,
        ready=True,
    )

    started = time.perf_counter()
    lines = [ConsoleLine.parse(line) for line in read_new_lines(managed)]
    elapsed = time.perf_counter() - started
    print(f"\nread and parse a 1 MB line: {elapsed * 1000:.2f} ms")

    assert len(lines) == 1
    assert len(managed.partial) <= LINE_MAX_BYTES
    assert elapsed < 0.1
