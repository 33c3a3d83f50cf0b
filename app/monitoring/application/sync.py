"""The sync part of the monitoring context: consistency of the system, repairs, cache stats."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from app.monitoring.domain.sync import (
    Repair,
    RepairReport,
    ServerRecord,
    SyncReport,
    compare,
)
from app.servers.application.messages import ListNodes, RecordProcessExit
from app.shared.bus import Command, MessageBus, Query
from app.shared.domain import DomainError, DomainEvent, Forbidden
from app.shared.projections import Replayable
from app.shared.security import Permission, Principal
from app.shared.wiring import Handler


class SystemProbe(Protocol):
    async def servers(self) -> Sequence[ServerRecord]: ...

    async def observe(self, node: str) -> Mapping[str, Any]:
        """The node's own report: {"servers": {id: {...}}, "orphans": [...]}."""
        ...

    async def events(self) -> Mapping[str, Any]: ...

    async def read_models(self) -> Sequence[Mapping[str, Any]]: ...

    async def retry_failed_events(self) -> int: ...

    async def cache_stats(self) -> Mapping[str, Any]: ...


# How much of a stuck projection one repair replays; the rest is the projector's again.
REPLAY_BATCHES = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class GetSystemSync(Query[SyncReport]):
    actor: Principal


@dataclass(frozen=True, slots=True, kw_only=True)
class RepairSystemSync(Command[RepairReport]):
    actor: Principal


@dataclass(frozen=True, slots=True, kw_only=True)
class GetCacheStats(Query[Mapping[str, Any]]):
    actor: Principal


def _require_admin(actor: Principal) -> None:
    if not actor.has(Permission.ADMIN_ALL):
        raise Forbidden("system sync is for admins")


async def _observation(probe: SystemProbe, node: str) -> Mapping[str, Any] | None:
    try:
        return await probe.observe(node)
    except DomainError:
        return None


async def _report(actor: Principal, probe: SystemProbe, bus: MessageBus) -> SyncReport:
    nodes = await bus.handle(ListNodes(actor=actor))
    online = [node.name for node in nodes if node.online]
    seen = await asyncio.gather(*(_observation(probe, name) for name in online))
    observed = {name: report for name, report in zip(online, seen, strict=True) if report}
    servers = [
        compare(
            server,
            server.node in observed,
            observed.get(server.node, {}).get("servers", {}).get(str(server.id)),
        )
        for server in await probe.servers()
    ]
    return SyncReport(
        servers=servers,
        nodes=[
            {
                "name": node.name,
                "online": node.online,
                "answered": node.name in observed,
                "last_seen": node.info.last_seen if node.info else None,
                "servers_running": node.info.servers_running if node.info else None,
            }
            for node in nodes
        ],
        orphans=[
            {**orphan, "node": name}
            for name, report in observed.items()
            for orphan in report.get("orphans", [])
        ],
        events=await probe.events(),
        read_models=await probe.read_models(),
    )


async def handle_get_system_sync(
    query: GetSystemSync, *, system_probe: SystemProbe, bus: MessageBus
) -> SyncReport:
    _require_admin(query.actor)
    return await _report(query.actor, system_probe, bus)


async def _replay(name: str, projection: Replayable) -> Repair:
    """Drain a stuck projection here and now (its checkpoint lock keeps this safe beside a
    projector that is alive after all)."""
    replayed = 0
    try:
        for _ in range(REPLAY_BATCHES):
            read = await projection.drain()
            replayed += read
            if read == 0:
                break
    except Exception as exc:  # noqa: BLE001 - said in the response; the next repair retries
        detail = f"after {replayed} events: {type(exc).__name__}: {exc}"[:300]
        return Repair(kind="projection", target=name, action="failed", detail=detail)
    return Repair(kind="projection", target=name, action="replayed", detail=f"{replayed} events")


async def handle_repair_system_sync(
    cmd: RepairSystemSync,
    *,
    system_probe: SystemProbe,
    bus: MessageBus,
    projectors: Mapping[str, Replayable],
) -> RepairReport:
    """Repairs what is certain: a recorded JVM its own node says is gone is recorded crashed
    (through the servers context); failing and dead-lettered events are retried; a stuck
    projection is replayed. Orphan JVMs are reported, never killed or adopted (the servers
    context adopts only its own)."""
    _require_admin(cmd.actor)
    report = await _report(cmd.actor, system_probe, bus)
    repairs: list[Repair] = []
    for server in report.servers:
        if server.problem == "no-process":
            await bus.handle(
                RecordProcessExit(
                    server_id=server.server_id,
                    exit_code=None,
                    reason="its node has no process for it (system sync)",
                )
            )
            detail = f"was {server.db_state} (pid {server.db_pid}); its node watches no process"
            repairs.append(
                Repair(kind="server", target=str(server.server_id), action="crashed", detail=detail)
            )
    for orphan in report.orphans:
        target = f"{orphan['node']}:{orphan['pid']}"
        detail = f"java in {orphan.get('cwd')}, watched by no worker; left running"
        repairs.append(Repair(kind="orphan", target=target, action="reported", detail=detail))
    if retried := await system_probe.retry_failed_events():
        repairs.append(Repair(kind="events", target=f"{retried} events", action="retried"))
    for model in report.read_models:
        if model.get("stuck") and (projection := projectors.get(str(model["name"]))):
            repairs.append(await _replay(str(model["name"]), projection))
    return RepairReport(repairs=repairs, after=await _report(cmd.actor, system_probe, bus))


async def handle_get_cache_stats(
    query: GetCacheStats, *, system_probe: SystemProbe
) -> Mapping[str, Any]:
    _require_admin(query.actor)
    return await system_probe.cache_stats()


MESSAGES: dict[type[Any], Handler] = {
    GetSystemSync: handle_get_system_sync,
    RepairSystemSync: handle_repair_system_sync,
    GetCacheStats: handle_get_cache_stats,
}
EVENT_HANDLERS: list[tuple[type[DomainEvent], Handler]] = []
