"""A restarted worker takes over the servers that its predecessor launched on this node."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import structlog

from app.servers.application.messages import ListActiveNodeServers, RecordProcessExit
from app.servers.domain.model import Server, ServerState
from app.servers.domain.ports import NodeHooks
from app.servers.infrastructure.files import ServerDirectory
from app.servers.infrastructure.managed import Managed
from app.servers.infrastructure.process import ProcessIdentity, find_jvm, is_alive, runs_java
from app.servers.infrastructure.supervisor.tail import saved_offset
from app.shared.bus import MessageBus

log = structlog.get_logger(__name__)
_HOOKS_AT_ONCE = 8


async def adopt(
    *,
    node: str,
    bus: MessageBus,
    hooks: NodeHooks,
    managed: dict[uuid.UUID, Managed],
    directory: Callable[[uuid.UUID], ServerDirectory],
    settle: Callable[[uuid.UUID, ServerDirectory], Awaitable[None]],
) -> None:
    """Watch each active server of `node` whose JVM still runs; `settle` those that ended."""
    started = time.monotonic()
    servers = await bus.handle(ListActiveNodeServers(node=node))
    adopted: list[uuid.UUID] = []
    for server in servers:
        here = directory(server.id)
        if server.pid is not None and server.process_started_at is not None:
            identity = ProcessIdentity(server.pid, server.process_started_at)
            if is_alive(identity):
                managed[server.id] = _watched(server, identity, here)
                adopted.append(server.id)
                continue
            await settle(server.id, here)
        elif server.state is ServerState.STOPPING:
            await bus.handle(
                RecordProcessExit(server_id=server.id, exit_code=None, reason="not running")
            )
    log.info("servers_adopted", count=len(adopted), seconds=round(time.monotonic() - started, 2))
    # Every adopted server is watched already; their hooks (a database round trip or more
    # each) run side by side, so that 500 of them do not take minutes one after another.
    semaphore = asyncio.Semaphore(_HOOKS_AT_ONCE)

    async def after(server_id: uuid.UUID) -> None:
        async with semaphore:
            await _after_adopt(hooks, server_id)

    await asyncio.gather(*(after(server_id) for server_id in adopted))


def _watched(server: Server, identity: ProcessIdentity, directory: ServerDirectory) -> Managed:
    """The running JVM as its predecessor left it: readiness, players, a stop under way."""
    # Launched by an older worker that recorded the wrapper shell: watch the JVM. (Looking
    # below a JVM reads the whole process table, so it is done only when it is not one.)
    if not runs_java(identity):
        identity = find_jvm(identity.pid) or identity
    managed = Managed(
        server_id=server.id,
        directory=directory,
        identity=identity,
        port=server.port,
        memory_mb=server.config.memory_mb,
        ready=server.state is ServerState.RUNNING,
        offset=saved_offset(directory),
    )
    managed.players = set(server.players)
    if server.state is ServerState.STOPPING:
        managed.stop_requested_at = time.monotonic()
    return managed


async def _after_adopt(hooks: NodeHooks, server_id: uuid.UUID) -> None:
    for hook in hooks.after_adopt:
        try:
            await hook(server_id)
        except Exception:
            log.exception("after_adopt_hook_failed", server_id=str(server_id))
