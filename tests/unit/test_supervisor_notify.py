"""The supervisor's change notification: a log that grows, a process that ends, and the tail
that reads the logs the kernel names (issue 13: no polling of hundreds of idle servers)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from app.servers.infrastructure.files import ServerDirectory
from app.servers.infrastructure.managed import Managed
from app.servers.infrastructure.process import ProcessIdentity, resource_usage_all
from app.servers.infrastructure.supervisor.notify import LogWatch, unwatch_exit, watch_exit
from app.servers.infrastructure.supervisor.tail import ConsoleTail
from app.settings import Settings


class _Pipeline:
    def __init__(self, redis: _Redis) -> None:
        self._redis = redis
        self._results: list[Any] = []

    def xadd(self, stream: str, fields: dict[str, str], **_: Any) -> None:
        self._redis.streams.setdefault(stream, []).append(fields["line"])
        self._results.append(f"{len(self._redis.streams[stream])}-0")

    def publish(self, channel: str, payload: str) -> None:
        self._redis.published.append((channel, payload))
        self._results.append(1)

    async def execute(self) -> list[Any]:
        self._redis.round_trips += 1
        return self._results


class _Redis:
    def __init__(self) -> None:
        self.streams: dict[str, list[str]] = {}
        self.published: list[tuple[str, str]] = []
        self.round_trips = 0

    def pipeline(self, transaction: bool = False) -> _Pipeline:
        return _Pipeline(self)


class _Bus:
    def __init__(self) -> None:
        self.handled: list[Any] = []

    async def handle(self, message: Any) -> None:
        self.handled.append(message)


def _managed(root: Path) -> Managed:
    directory = ServerDirectory(root / str(uuid.uuid4()))
    directory.path.mkdir(parents=True)
    directory.ensure_private()
    fd = directory.open_private("console.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.close(fd)
    return Managed(
        server_id=uuid.UUID(directory.path.name),
        directory=directory,
        identity=ProcessIdentity(os.getpid(), 0.0),
        port=25565,
        ready=False,
    )


def _append(managed: Managed, text: str) -> None:
    with (managed.directory.meta / "console.log").open("a") as log:
        log.write(text)


async def _until(predicate: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.01)


async def test_a_watched_file_that_grows_is_reported_once_per_take(tmp_path: Path) -> None:
    watch = LogWatch()
    if not watch.start():
        pytest.skip("no inotify here")
    try:
        path = tmp_path / "console.log"
        path.write_text("")
        wd = watch.add(path, "owner")
        assert wd is not None
        assert watch.watching(wd)
        with path.open("a") as log:
            log.write("one\n")
            log.flush()
            log.write("two\n")
        await asyncio.wait_for(watch.changed.wait(), 2)
        assert watch.take() == ({"owner"}, False)
        assert not watch.changed.is_set()
        watch.remove(wd)
        assert not watch.watching(wd)
    finally:
        watch.close()


async def test_the_end_of_a_process_is_told_without_polling() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.1)"])
    ended = asyncio.Event()
    fd = watch_exit(child.pid, ended.set)
    if fd is None:
        pytest.skip("no pidfds here")
    try:
        await asyncio.wait_for(ended.wait(), 5)
    finally:
        unwatch_exit(fd)
        child.wait()


async def test_the_tail_publishes_the_lines_of_every_log_that_grew_in_one_round_trip(
    tmp_path: Path,
) -> None:
    redis, bus = _Redis(), _Bus()
    managed = {m.server_id: m for m in (_managed(tmp_path), _managed(tmp_path))}
    first, second = managed.values()
    _append(first, "[10:00:00] [Server thread/INFO]: before the watch\n")
    settings = Settings(status_interval_seconds=60)
    tail = ConsoleTail(bus=bus, redis=redis, settings=settings, managed=managed)  # type: ignore[arg-type]
    task = asyncio.create_task(tail.run())
    try:
        stream = f"server:{first.server_id}:console"
        await _until(
            lambda: (
                redis.streams.get(stream) == ["[10:00:00] [Server thread/INFO]: before the watch"]
            )
        )
        trips = redis.round_trips
        _append(first, '[10:00:01] [Server thread/INFO]: Done (1.0s)! For help, type "help"\n')
        _append(second, "[10:00:01] [Server thread/INFO]: partial")
        await _until(lambda: first.ready)
        _append(second, " line\n")
        await _until(lambda: len(redis.streams.get(f"server:{second.server_id}:console", [])) == 1)
        assert redis.streams[f"server:{second.server_id}:console"] == [
            "[10:00:01] [Server thread/INFO]: partial line"
        ]
        assert redis.round_trips - trips <= 4  # two per batch: streams, then channels
        assert [type(m).__name__ for m in bus.handled] == ["RecordServerReady"]
        del managed[first.server_id]  # it ended: its log is no longer followed
        await asyncio.sleep(0.4)
        _append(first, "[10:00:02] [Server thread/INFO]: after its end\n")
        await asyncio.sleep(0.3)
        assert len(redis.streams[stream]) == 2
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_usage_of_every_tree_comes_from_one_scan() -> None:
    me = ProcessIdentity(os.getpid(), 0.0)
    gone = ProcessIdentity(2**22 + 12345, 0.0)
    usage = resource_usage_all([(me, {}), (gone, {})])
    assert usage[0][1] > 0
    assert usage[1] == (0.0, 0)


def test_a_busy_process_shows_its_cpu_from_the_second_sample_on() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        tree = [(ProcessIdentity(busy.pid, 0.0), {})]
        first = resource_usage_all(tree)  # sets the marks
        time.sleep(0.5)
        second = resource_usage_all(tree)
    finally:
        busy.kill()
        busy.wait()
    assert first[0][0] == 0.0
    assert 30.0 < second[0][0] <= 110.0, second
    assert second[0][1] > 1_000_000, "resident memory in bytes"
