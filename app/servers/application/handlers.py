"""Handlers of the servers context: what owners ask for, and what node workers observe."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from app.servers.application.messages import (
    DeleteServer,
    LifecycleResult,
    RestartServer,
    SendConsoleCommand,
    ServerListItem,
    StartServer,
    StopServer,
    StoredJar,
    UpdateServer,
    UploadServerJar,
)
from app.servers.application.placement import PlacementRules, choose_port, refuse_heap_beyond
from app.servers.domain.console import ConsolePolicy
from app.servers.domain.errors import ServerNotFound
from app.servers.domain.events import ConsoleCommandExecuted
from app.servers.domain.model import (
    MEMORY_RANGE,
    Server,
    ServerState,
    ServerType,
)
from app.servers.domain.ports import (
    JarStore,
    NodeGateway,
    RuntimeStore,
    ServersUnitOfWork,
)
from app.shared.domain import Clock, Conflict, DomainError, InvalidInput, Page, retried
from app.shared.security import Principal

UowFactory = Callable[[], ServersUnitOfWork]


class ServerReadModel(Protocol):
    async def get(self, server_id: uuid.UUID) -> Server | None: ...
    async def active_on_node(self, node: str) -> list[Server]: ...
    async def unclaimed_starts(self, requested_before: datetime) -> list[uuid.UUID]: ...
    async def page(self, filter: object) -> Page[ServerListItem]: ...


class ReleaseCheck(Protocol):
    """Confirms a version can be installed and on which Java, before anything is stored."""

    async def check_version(self, server_type: ServerType, version: str) -> None: ...
    async def check_java(self, node: str, version: str) -> None: ...
    async def check_loader(
        self, server_type: ServerType, version: str, loader_version: str | None
    ) -> str:
        """The loader version that fits (422 naming the valid ones), else the recommended."""
        ...


class NodeCapacity(Protocol):
    """What a node's worker says of its machine; None while it has not said."""

    async def memory_total_mb(self, node: str) -> int | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerPolicy:
    """Settings the handlers apply: placement, port range, heap limit, console, job lifetime."""

    placement: PlacementRules
    max_memory_mb: int
    console: ConsolePolicy
    job_ttl_seconds: int

    def check_limits(self, actor: Principal, *, memory_mb: int | None) -> None:
        """Users stay under the heap limit (and in a node's port range); admins may go beyond."""
        if actor.is_admin:
            return
        if memory_mb is not None and memory_mb > self.max_memory_mb:
            raise InvalidInput(
                f"memory_mb {memory_mb} is above the limit of {self.max_memory_mb} MiB; only an"
                " admin may give a server more",
                field="memory_mb",
                allowed_range=[MEMORY_RANGE[0], self.max_memory_mb],
            )


async def check_fits_node(capacity: NodeCapacity, node: str, memory_mb: int) -> None:
    """A heap larger than the node's memory cannot work, whoever asks for it."""
    refuse_heap_beyond(node, await capacity.memory_total_mb(node), memory_mb)


class NodeOffline(DomainError):
    status = 503
    slug = "node-offline"
    title = "Node offline"


def _by(actor: Principal | None) -> uuid.UUID | None:
    return actor.user_id if actor is not None else None


def visible(server: Server | None, actor: Principal | None, server_id: uuid.UUID) -> Server:
    """Owners see their own servers; operators and admins see all. Others get 404, not 403."""
    if server is None or (
        actor is not None and not actor.sees_everything() and server.owner_id != actor.user_id
    ):
        raise ServerNotFound(f"server {server_id} not found")
    return server


async def handle_update_server(
    cmd: UpdateServer,
    *,
    uow: UowFactory,
    clock: Clock,
    policy: ServerPolicy,
    releases: ReleaseCheck,
    capacity: NodeCapacity,
    nodes: NodeGateway,
) -> list[str]:
    async with uow() as work:
        server = visible(await work.servers.get(cmd.server_id), cmd.actor, cmd.server_id)
        new_port = cmd.port if cmd.port != server.port else None
        new_memory = cmd.memory_mb if cmd.memory_mb != server.config.memory_mb else None
        policy.check_limits(cmd.actor, memory_mb=new_memory)
        if new_memory is not None:
            await check_fits_node(capacity, server.node, new_memory)
        config_changes = {
            key: value
            for key, value in (
                ("version", cmd.version),
                ("memory_mb", cmd.memory_mb),
                ("max_players", cmd.max_players),
                ("motd", cmd.motd),
                ("online_mode", cmd.online_mode),
                ("whitelist", cmd.whitelist),
                ("restart", cmd.restart),
            )
            if value is not None
        }
        config = replace(server.config, **config_changes) if config_changes else None  # type: ignore[arg-type]
        if (
            config is not None
            and config.version != server.config.version
            and config.server_type is not ServerType.CUSTOM
        ):
            await releases.check_version(config.server_type, config.version)
            if config.loader_version is not None:  # a new game needs its own loader build
                loader = await releases.check_loader(config.server_type, config.version, None)
                config = replace(config, loader_version=loader)
        if new_port is not None:
            await work.servers.lock_node(server.node)
            taken = await work.servers.ports_in_use(server.node)
            info = next((n for n in await nodes.nodes() if n.name == server.node), None)
            port_range = (info.port_range if info else None) or policy.placement.port_range
            choose_port(new_port, taken, port_range, server.node, not cmd.actor.is_admin)
        changed = server.update(
            now=clock.now(),
            description=cmd.description,
            port=cmd.port,
            eula_accepted=cmd.eula_accepted,
            config=config,
        )
        await work.commit()
    if changed:
        await nodes.enqueue(server.node, "sync_files", server.id)
    return changed


async def handle_upload_server_jar(
    cmd: UploadServerJar, *, uow: UowFactory, clock: Clock, jars: JarStore
) -> StoredJar:
    async with uow() as work:
        found = _custom(visible(await work.servers.get(cmd.server_id), cmd.actor, cmd.server_id))
    # No transaction is held while it streams to the node.
    sha256, size = await jars.store_upload(found.node, found.id, cmd.chunks)
    async with uow() as work:
        server = _custom(visible(await work.servers.get(cmd.server_id), cmd.actor, cmd.server_id))
        server.update(now=clock.now(), config=replace(server.config, jar_sha256=sha256))
        await work.commit()
    return StoredJar(sha256=sha256, size=size)


def _custom(server: Server) -> Server:
    if server.config.server_type is not ServerType.CUSTOM:
        raise Conflict("only servers of type custom run an uploaded jar", field="server_type")
    return server


async def handle_delete_server(
    cmd: DeleteServer,
    *,
    uow: UowFactory,
    clock: Clock,
    nodes: NodeGateway,
    runtime: RuntimeStore,
) -> None:
    async with uow() as work:
        server = visible(await work.servers.get(cmd.server_id), cmd.actor, cmd.server_id)
        server.delete(now=clock.now())
        for event in server.collect_events():
            work.record_event(event)
        await work.servers.remove(server)
        await work.commit()
    await nodes.enqueue(server.node, "delete_files", server.id)
    await runtime.forget(server.id)


async def _dispatch(
    server: Server,
    action: str,
    verb: str,
    *,
    nodes: NodeGateway,
    policy: ServerPolicy,
) -> LifecycleResult:
    """Queue the job on the server's node, and say what happens."""
    online = await nodes.is_online(server.node)
    job_id = await nodes.enqueue(server.node, action, server.id)
    if online:
        message = f"{verb} queued on node {server.node}"
    else:
        message = (
            f"node {server.node} is offline: the {verb} runs when its worker returns, "
            f"or is abandoned after {policy.job_ttl_seconds} s"
        )
    return LifecycleResult(
        server_id=server.id,
        state=server.state.value,
        job_id=job_id,
        node=server.node,
        node_online=online,
        message=message,
    )


async def _request(
    uow: UowFactory,
    cmd: StartServer | StopServer | RestartServer,
    change: Callable[[Server], Awaitable[str]],
) -> tuple[Server, str]:
    """Apply a lifecycle request to a fresh copy of the server and commit. What the owner asks
    does not depend on the version they saw, so a race with the node's own report (the JVM
    launched or ready at that moment) is retried on a reloaded copy, not answered 409."""

    async def once() -> tuple[Server, str]:
        async with uow() as work:
            server = visible(await work.servers.get(cmd.server_id), cmd.actor, cmd.server_id)
            action = await change(server)
            await work.commit()
            return server, action

    return await retried(once)


async def handle_start_server(
    cmd: StartServer,
    *,
    uow: UowFactory,
    clock: Clock,
    nodes: NodeGateway,
    policy: ServerPolicy,
    releases: ReleaseCheck,
) -> LifecycleResult:
    async def start(server: Server) -> str:
        if server.config.server_type is ServerType.CUSTOM and not server.config.jar_sha256:
            raise Conflict("upload the server jar before the first start", reason="jar-missing")
        server.request_start(by=_by(cmd.actor), now=clock.now())
        if server.config.server_type is not ServerType.CUSTOM:
            await releases.check_java(server.node, server.config.version)
        return "start"

    server, action = await _request(uow, cmd, start)
    return await _dispatch(server, action, "start", nodes=nodes, policy=policy)


async def handle_stop_server(
    cmd: StopServer,
    *,
    uow: UowFactory,
    clock: Clock,
    nodes: NodeGateway,
    policy: ServerPolicy,
) -> LifecycleResult:
    async def stop(server: Server) -> str:
        server.request_stop(by=_by(cmd.actor), kill=cmd.kill, now=clock.now())
        return "kill" if cmd.kill else "stop"

    server, action = await _request(uow, cmd, stop)
    return await _dispatch(server, action, action, nodes=nodes, policy=policy)


async def handle_restart_server(
    cmd: RestartServer,
    *,
    uow: UowFactory,
    clock: Clock,
    nodes: NodeGateway,
    policy: ServerPolicy,
) -> LifecycleResult:
    async def restart(server: Server) -> str:
        if server.state is ServerState.RUNNING:
            server.request_stop(by=_by(cmd.actor), kill=False, now=clock.now())
            return "restart"
        server.request_start(by=_by(cmd.actor), now=clock.now())
        return "start"

    server, action = await _request(uow, cmd, restart)
    return await _dispatch(server, action, "restart", nodes=nodes, policy=policy)


async def handle_send_console_command(
    cmd: SendConsoleCommand,
    *,
    uow: UowFactory,
    clock: Clock,
    nodes: NodeGateway,
    policy: ServerPolicy,
) -> str:
    command = policy.console.check(cmd.command)
    async with uow() as work:
        server = visible(await work.servers.get(cmd.server_id), cmd.actor, cmd.server_id)
        if server.state is not ServerState.RUNNING:
            raise Conflict(
                f"server {server.name} is {server.state.value}; console commands need it running"
            )
        if not await nodes.console_listening(server.node):
            raise NodeOffline(f"node {server.node} is offline; try again when its worker is back")
        work.record_event(
            ConsoleCommandExecuted(
                occurred_at=clock.now(),
                server_id=server.id,
                command=command,
                user_id=_by(cmd.actor),
                via=cmd.via,
            )
        )
        await work.commit()
    await nodes.send_console(server.node, server.id, command)
    return command
