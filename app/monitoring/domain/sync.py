"""System sync: what the database says of each server against what its node observes."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# States in which the database expects a live JVM on the server's node.
EXPECTS_PROCESS = frozenset({"running", "stopping"})
# A healthy projection passes an event within a poll interval, or within its gap wait when a
# transaction committed late; one replaying a long history moves its checkpoint every batch.
PROJECTION_STUCK_SECONDS = 30.0


def projection_stuck(*, behind: int, lag_seconds: float, idle_seconds: float) -> bool:
    """Stuck: events wait behind its checkpoint, the oldest for a while, and the checkpoint has
    not moved for as long."""
    return (
        behind > 0
        and lag_seconds > PROJECTION_STUCK_SECONDS
        and idle_seconds > PROJECTION_STUCK_SECONDS
    )


class WatchedIdentity(Protocol):
    @property
    def pid(self) -> int: ...

    @property
    def started_at(self) -> float: ...


class WatchedProcess(Protocol):
    """What sync needs of a JVM a node's supervisor watches."""

    @property
    def identity(self) -> WatchedIdentity: ...

    @property
    def port(self) -> int: ...

    @property
    def ready(self) -> bool: ...


class NodeSupervisor(Protocol):
    @property
    def managed(self) -> Mapping[uuid.UUID, WatchedProcess]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerRecord:
    id: uuid.UUID
    name: str
    node: str
    state: str
    pid: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSync:
    """One server: the database's state beside the node's observation, and what is wrong."""

    server_id: uuid.UUID
    name: str
    node: str
    db_state: str
    db_pid: int | None
    observed: Mapping[str, Any] | None
    problem: str | None


def compare(
    server: ServerRecord, node_online: bool, observed: Mapping[str, Any] | None
) -> ServerSync:
    """`observed` is the node's report for this server (None: it watches no JVM for it)."""
    problem: str | None = None
    alive = bool(observed and observed.get("alive"))
    if not node_online:
        if server.state in EXPECTS_PROCESS:
            problem = "node-offline"
    elif server.state in EXPECTS_PROCESS and not alive:
        problem = "no-process"
    elif server.state not in EXPECTS_PROCESS | {"starting"} and alive:
        problem = "unexpected-process"
    elif alive and observed and not observed.get("ports") and server.state == "running":
        problem = "port-not-bound"
    return ServerSync(
        server_id=server.id,
        name=server.name,
        node=server.node,
        db_state=server.state,
        db_pid=server.pid,
        observed=observed,
        problem=problem,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncReport:
    servers: Sequence[ServerSync]
    nodes: Sequence[Mapping[str, Any]]
    orphans: Sequence[Mapping[str, Any]]
    events: Mapping[str, Any]
    read_models: Sequence[Mapping[str, Any]]

    @property
    def consistent(self) -> bool:
        return not self.orphans and all(s.problem is None for s in self.servers)


@dataclass(frozen=True, slots=True, kw_only=True)
class Repair:
    kind: str
    target: str
    action: str
    detail: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RepairReport:
    repairs: Sequence[Repair] = field(default_factory=tuple)
    after: SyncReport | None = None
