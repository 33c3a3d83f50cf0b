"""What a node observes of its game servers, by psutil: run off the event loop."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import psutil

from app.monitoring.domain.sync import NodeSupervisor, WatchedProcess


def _alive(process: WatchedProcess) -> psutil.Process | None:
    try:
        found = psutil.Process(process.identity.pid)
        if abs(found.create_time() - process.identity.started_at) > 0.05:
            return None
        return None if found.status() == psutil.STATUS_ZOMBIE else found
    except psutil.Error:
        return None


def _ports(process: psutil.Process) -> list[int]:
    ports: set[int] = set()
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            for conn in member.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr:
                    ports.add(conn.laddr.port)
    return sorted(ports)


def observe(supervisor: NodeSupervisor | None, servers_root: Path) -> dict[str, Any]:
    """Blocking: each watched JVM (alive, pid, ports bound) and java processes nobody watches
    whose working directory is under this node's servers directory."""
    servers: dict[str, Any] = {}
    watched: set[int] = set()
    for server_id, managed in dict(supervisor.managed if supervisor else {}).items():
        process = _alive(managed)
        watched.add(managed.identity.pid)
        servers[str(server_id)] = {
            "pid": managed.identity.pid,
            "alive": process is not None,
            "ready": managed.ready,
            "port": managed.port,
            "ports": _ports(process) if process else [],
        }
    root = f"{servers_root.resolve()}/"
    orphans = []
    for process in psutil.process_iter(["pid", "cwd", "cmdline"]):
        info = process.info
        cmdline = info.get("cmdline") or []
        if info["pid"] in watched or not cmdline or not Path(cmdline[0]).name.startswith("java"):
            continue
        if (where := _server_dir(process, info.get("cwd") or "", root)) is not None:
            server = where[len(root) :].split("/", 1)[0]
            orphans.append({"pid": info["pid"], "server_id": server, "cwd": where})
    return {"servers": servers, "orphans": orphans}


def _server_dir(process: psutil.Process, cwd: str, root: str) -> str | None:
    """Where a java process runs under `root`: its working directory, or, for a sandboxed one
    (which sees its directory as /server), the directory its launcher's command line names."""
    if cwd.startswith(root):
        return cwd
    with contextlib.suppress(psutil.Error):
        for parent in process.parents()[:_LAUNCHER_DEPTH]:
            for argument in parent.cmdline():
                if argument.startswith(root) and argument[len(root) :].split("/", 1)[0]:
                    return argument
    return None


_LAUNCHER_DEPTH = 3
