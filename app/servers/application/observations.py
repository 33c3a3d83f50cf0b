"""Handlers of what node workers observe: launches, readiness, exits, players, stale starts."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

from app.servers.application.handlers import (
    ServerPolicy,
    ServerReadModel,
    UowFactory,
)
from app.servers.application.messages import (
    ExpireStaleStarts,
    MarkRestartRequired,
    RecordPlayers,
    RecordProcessExit,
    RecordProcessLaunched,
    RecordServerReady,
    RecordStartFailure,
    RequestAutomaticStart,
    RequestMaintenanceStop,
)
from app.servers.domain.model import Server, ServerState
from app.shared.domain import Clock, retried

# A state change may race an owner's request: every handler here retries on conflict.


async def _on_server(
    uow: UowFactory, server_id: uuid.UUID, change: Callable[[Server], bool], *, attempts: int = 5
) -> bool:
    """Apply `change` to a fresh copy of the server and commit; reload and retry on a race."""

    async def once() -> bool:
        async with uow() as work:
            server = await work.servers.get(server_id)
            if server is None:
                return False
            result = change(server)
            await work.commit()
            return result

    return await retried(once, attempts=attempts)


async def handle_record_process_launched(
    cmd: RecordProcessLaunched, *, uow: UowFactory, clock: Clock
) -> None:
    def change(server: Server) -> bool:
        server.process_launched(
            pid=cmd.pid, process_started_at=cmd.process_started_at, java=cmd.java, now=clock.now()
        )
        return True

    await _on_server(uow, cmd.server_id, change)


async def handle_record_server_ready(
    cmd: RecordServerReady, *, uow: UowFactory, clock: Clock
) -> None:
    def change(server: Server) -> bool:
        if server.state is ServerState.STARTING:
            server.mark_running(detected_by=cmd.detected_by, now=clock.now())
        return True

    await _on_server(uow, cmd.server_id, change)


async def handle_record_start_failure(
    cmd: RecordStartFailure, *, uow: UowFactory, clock: Clock
) -> None:
    def change(server: Server) -> bool:
        if server.state is ServerState.STARTING:
            server.start_failed(reason=cmd.reason, now=clock.now())
        return True

    await _on_server(uow, cmd.server_id, change)


async def handle_record_process_exit(
    cmd: RecordProcessExit, *, uow: UowFactory, clock: Clock
) -> bool:
    def change(server: Server) -> bool:
        if server.state not in (ServerState.STARTING, ServerState.RUNNING, ServerState.STOPPING):
            return False
        restart = server.state is not ServerState.STOPPING and server.should_restart_after_crash()
        server.process_exited(
            exit_code=cmd.exit_code, reason=cmd.reason, will_restart=restart, now=clock.now()
        )
        return restart

    return await _on_server(uow, cmd.server_id, change)


async def handle_expire_stale_starts(
    cmd: ExpireStaleStarts,
    *,
    uow: UowFactory,
    read_model: ServerReadModel,
    clock: Clock,
    policy: ServerPolicy,
) -> list[uuid.UUID]:
    cutoff = clock.now() - timedelta(seconds=policy.job_ttl_seconds)
    expired: list[uuid.UUID] = []
    for server_id in await read_model.unclaimed_starts(cutoff):

        def change(server: Server) -> bool:
            if server.state is not ServerState.STARTING or server.pid is not None:
                return False
            server.start_failed(
                reason=f"node {server.node} did not pick up the start within "
                f"{policy.job_ttl_seconds} s; is its worker running?",
                now=clock.now(),
            )
            return True

        if await _on_server(uow, server_id, change):
            expired.append(server_id)
    return expired


async def handle_request_automatic_start(
    cmd: RequestAutomaticStart, *, uow: UowFactory, clock: Clock
) -> None:
    def change(server: Server) -> bool:
        server.request_start(by=None, now=clock.now())
        return True

    await _on_server(uow, cmd.server_id, change)


async def handle_record_players(cmd: RecordPlayers, *, uow: UowFactory, clock: Clock) -> None:
    def change(server: Server) -> bool:
        server.players_changed(cmd.players, now=clock.now())
        return True

    await _on_server(uow, cmd.server_id, change)


async def handle_mark_restart_required(
    cmd: MarkRestartRequired, *, uow: UowFactory, clock: Clock
) -> bool:
    def change(server: Server) -> bool:
        return server.mark_restart_required(changed_file=cmd.changed_file, now=clock.now())

    return await _on_server(uow, cmd.server_id, change)


async def handle_request_maintenance_stop(
    cmd: RequestMaintenanceStop, *, uow: UowFactory, clock: Clock
) -> bool:
    def change(server: Server) -> bool:
        if server.state is not ServerState.RUNNING:
            return False
        server.request_stop(by=None, kill=False, now=clock.now())
        return True

    return await _on_server(uow, cmd.server_id, change)
