"""Launching a JVM detached from the worker, finding it again, and signalling it."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psutil

from app.servers.infrastructure.files import ServerDirectory

# The shell stays as the JVM's parent so its exit status lands in a file that a later
# worker can read, whoever reaps the process.
_WRAPPER = (
    '"$@"; code=$?; printf "%s" "$code" > .mcdash/exit_code.tmp '
    "&& mv -f .mcdash/exit_code.tmp .mcdash/exit_code"
)
_ROTATE_BYTES = 64 * 1024 * 1024


class ConsoleUnavailable(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    """A pid alone can be reused; the pid with its start time names one process."""

    pid: int
    started_at: float


def launch(
    directory: ServerDirectory, *, java: Path, memory_mb: int, extra_env: dict[str, str]
) -> tuple[ProcessIdentity, subprocess.Popen[bytes]]:
    """Blocking: start `java -jar server.jar nogui` in its own session, console on a FIFO."""
    directory.ensure_console_fifo()
    directory.exit_file.unlink(missing_ok=True)
    log = directory.console_log
    if log.exists() and log.stat().st_size > _ROTATE_BYTES:
        os.replace(log, log.with_suffix(".log.1"))
    console_in = os.open(directory.console_in, os.O_RDWR)
    try:
        with log.open("ab") as output:
            process = subprocess.Popen(
                [
                    "/bin/sh",
                    "-c",
                    _WRAPPER,
                    "mcdash-server",
                    str(java),
                    f"-Xms{memory_mb}M",
                    f"-Xmx{memory_mb}M",
                    "-jar",
                    "server.jar",
                    "nogui",
                ],
                cwd=directory.path,
                stdin=console_in,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                env={**os.environ, **extra_env},
            )
    finally:
        os.close(console_in)
    started_at = psutil.Process(process.pid).create_time()
    return ProcessIdentity(process.pid, started_at), process


def is_alive(identity: ProcessIdentity) -> bool:
    try:
        process = psutil.Process(identity.pid)
        if abs(process.create_time() - identity.started_at) > 0.05:
            return False
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def read_exit_code(directory: ServerDirectory) -> int | None:
    try:
        return int(directory.exit_file.read_text().strip())
    except (OSError, ValueError):
        return None


def java_process(identity: ProcessIdentity) -> psutil.Process | None:
    """The JVM under the wrapper shell, if it is still there."""
    try:
        children = psutil.Process(identity.pid).children(recursive=True)
    except psutil.Error:
        return None
    return children[0] if children else None


def signal_server(identity: ProcessIdentity, sig: signal.Signals) -> None:
    """SIGTERM goes to the JVM (it runs its shutdown hook); SIGKILL takes the whole group."""
    if not is_alive(identity):
        return
    if sig is signal.SIGKILL:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(identity.pid, signal.SIGKILL)
        return
    target = java_process(identity)
    with contextlib.suppress(psutil.Error):
        (target or psutil.Process(identity.pid)).send_signal(sig)


def write_console(directory: ServerDirectory, command: str) -> None:
    """One line into the console FIFO; lines under PIPE_BUF are written whole, never interleaved."""
    data = (command + "\n").encode()
    try:
        fd = os.open(directory.console_in, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.ENOENT):
            raise ConsoleUnavailable("the server's console is not open") from exc
        raise
    try:
        os.write(fd, data)
    except BlockingIOError as exc:
        raise ConsoleUnavailable("the server is not reading its console") from exc
    finally:
        os.close(fd)


def resource_usage(
    identity: ProcessIdentity, cache: dict[int, psutil.Process]
) -> tuple[float, int]:
    """CPU percent since the last call and resident memory of the process tree."""
    cpu, rss = 0.0, 0
    try:
        root = psutil.Process(identity.pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return cpu, rss
    for process in tree:
        tracked = cache.setdefault(process.pid, process)
        with contextlib.suppress(psutil.Error):
            cpu += tracked.cpu_percent(None)
            rss += tracked.memory_info().rss
    return cpu, rss
