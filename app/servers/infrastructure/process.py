"""Launching a JVM detached from the worker, finding it again, and signalling its whole group."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from app.servers.infrastructure.files import ServerDirectory
from app.servers.infrastructure.sandbox import Isolation

# The shell (the worker's user) stays as the JVM's parent so the exit status reaches a file that
# a later worker can read, whoever reaps the process. The file is the shell's stderr, opened by
# the worker; the JVM never inherits it (its stderr is its stdout, the console log).
_WRAPPER = '"$@" 2>&1; code=$?; printf "%s" "$code" >&2'
_ROTATE_BYTES = 64 * 1024 * 1024
_JVM_APPEARS_WITHIN = 10.0


class ConsoleUnavailable(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    """A pid alone can be reused; the pid with its start time names one process."""

    pid: int
    started_at: float

    @classmethod
    def of(cls, process: psutil.Process) -> ProcessIdentity:
        return cls(process.pid, process.create_time())


@dataclass(frozen=True, slots=True)
class Launched:
    """The JVM (what is reported and watched) and the wrapper shell that records its exit."""

    jvm: ProcessIdentity
    wrapper: ProcessIdentity
    popen: subprocess.Popen[bytes]


def launch(
    directory: ServerDirectory,
    *,
    java: Path,
    memory_mb: int,
    isolation: Isolation,
    account: tuple[int, int] | None,
    arguments: Sequence[str] = ("-jar", "server.jar", "nogui"),
) -> Launched:
    """Blocking: start `java <heap> <arguments>` confined, as `account` (see
    Isolation.prepare), in its own session, console on a FIFO; returns once the JVM process
    exists (or the wrapper has already ended)."""
    directory.ensure_private()
    directory.ensure_console_fifo()
    if directory.private_size("console.log") > _ROTATE_BYTES:
        directory.replace_private("console.log", "console.log.1")
    executable = java.resolve()
    heap = [f"-Xms{memory_mb}M", f"-Xmx{memory_mb}M"]
    plan = isolation.plan(
        directory.path,
        executable,
        [*heap, *arguments],
        account=account,
        source_env=os.environ,
    )
    console_in = directory.open_private("console.in", os.O_RDWR)
    output = directory.open_private("console.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    exit_file = directory.open_private("exit_code", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        process = subprocess.Popen(
            ["/bin/sh", "-c", _WRAPPER, "mcdash-server", *plan.argv],
            cwd=plan.cwd,
            stdin=console_in,
            stdout=output,
            stderr=exit_file,
            start_new_session=True,
            close_fds=True,
            env=plan.env,
        )
    finally:
        for fd in (console_in, output, exit_file):
            os.close(fd)
    wrapper = ProcessIdentity.of(psutil.Process(process.pid))
    jvm = _await_jvm(process, str(executable)) or wrapper
    return Launched(jvm=jvm, wrapper=wrapper, popen=process)


def _await_jvm(process: subprocess.Popen[bytes], java: str) -> ProcessIdentity | None:
    """The JVM below the wrapper (and bubblewrap), once it has been exec'd."""
    deadline = time.monotonic() + _JVM_APPEARS_WITHIN
    pause = 0.01  # growing: each look reads the whole process table, long with 500 servers
    while time.monotonic() < deadline and process.poll() is None:
        found = find_jvm(process.pid, java)
        if found is not None:
            return found
        time.sleep(pause)
        pause = min(pause * 2, 0.2)
    return None


def find_jvm(root_pid: int, java: str | None = None) -> ProcessIdentity | None:
    """The first process under `root_pid` that runs `java` (any `java` when not given)."""
    try:
        descendants = psutil.Process(root_pid).children(recursive=True)
    except psutil.Error:
        return None
    for process in descendants:
        with contextlib.suppress(psutil.Error):
            command = process.cmdline()
            if command and (command[0] == java or (java is None and _is_java(command[0]))):
                return ProcessIdentity.of(process)
    return None


def _is_java(executable: str) -> bool:
    return Path(executable).name == "java"


def runs_java(identity: ProcessIdentity) -> bool:
    """Whether the process is a JVM (its executable is named `java`)."""
    try:
        command = psutil.Process(identity.pid).cmdline()
    except psutil.Error:
        return False
    return bool(command) and _is_java(command[0])


def is_alive(identity: ProcessIdentity) -> bool:
    try:
        process = psutil.Process(identity.pid)
        if abs(process.create_time() - identity.started_at) > 0.05:
            return False
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def read_exit_code(directory: ServerDirectory) -> int | None:
    """The code the wrapper recorded; None while the JVM runs or when the wrapper was killed."""
    try:
        return int(directory.read_private("exit_code", limit=32).strip())
    except (OSError, ValueError):
        return None


def signal_server(identity: ProcessIdentity, sig: signal.Signals) -> None:
    """SIGTERM goes to the JVM (it runs its shutdown hook); SIGKILL takes the JVM, every process
    below it and its process group, so nothing it started keeps the port."""
    if not is_alive(identity):
        return
    try:
        process = psutil.Process(identity.pid)
        below = process.children(recursive=True) if sig is signal.SIGKILL else []
    except psutil.Error:
        return
    for target in (process, *below):
        with contextlib.suppress(psutil.Error):
            target.send_signal(sig)
    if sig is signal.SIGKILL:
        with contextlib.suppress(OSError):
            group = os.getpgid(identity.pid)
            if group != os.getpgrp():
                os.killpg(group, signal.SIGKILL)


def write_console(directory: ServerDirectory, command: str) -> None:
    """One line into the console FIFO; lines under PIPE_BUF are written whole, never interleaved."""
    data = (command + "\n").encode()
    try:
        fd = directory.open_private("console.in", os.O_WRONLY | os.O_NONBLOCK)
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


def process_children() -> dict[int, list[int]]:
    """Blocking: each process's children, from one scan of the process table."""
    children: dict[int, list[int]] = {}
    for process in psutil.process_iter(["ppid"]):
        children.setdefault(process.info["ppid"], []).append(process.pid)
    return children


@dataclass(slots=True)
class CpuMark:
    """A process's CPU ticks (user and system) when last sampled, and when."""

    ticks: int
    at: float


_TICKS_A_SECOND = os.sysconf("SC_CLK_TCK")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def resource_usage_all(
    trees: list[tuple[ProcessIdentity, dict[int, CpuMark]]],
    children: dict[int, list[int]] | None = None,
) -> list[tuple[float, int]]:
    """Blocking: CPU percent since the last call and resident memory of each process tree, from
    one scan of the process table, or `children` from an earlier one (a tree's own scan reads
    every process's stat file: with hundreds of servers, that was most of the worker's time)."""
    if children is None:
        children = process_children()
    return [_tree_usage(identity.pid, marks, children) for identity, marks in trees]


def _stat(pid: int) -> tuple[int, int] | None:
    """CPU ticks and resident pages of a process from one read of /proc/PID/stat (psutil's
    cpu_percent and memory_info read two files at 24 µs a process, this 8.5: a 500-server
    node's trees are over a thousand processes every status round); None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()  # from field 3 on: the name may hold spaces
    return int(fields[11]) + int(fields[12]), int(fields[21])


def _tree_usage(
    root: int, marks: dict[int, CpuMark], children: dict[int, list[int]]
) -> tuple[float, int]:
    cpu, rss = 0.0, 0
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, ()))
    now = time.monotonic()
    for pid in tree:
        read = _stat(pid)
        if read is None:
            marks.pop(pid, None)
            continue
        ticks, pages = read
        mark = marks.get(pid)
        if mark is not None and now > mark.at:  # the first sample only sets the mark
            cpu += max(0.0, 100.0 * (ticks - mark.ticks) / _TICKS_A_SECOND / (now - mark.at))
        marks[pid] = CpuMark(ticks, now)
        rss += pages * _PAGE_BYTES
    return cpu, rss
