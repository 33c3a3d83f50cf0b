"""The server aggregate: its configuration rules and the lifecycle state machine."""

from __future__ import annotations

import enum
import re
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from app.servers.domain.errors import InvalidTransition
from app.servers.domain.events import (
    ServerConfigurationUpdated,
    ServerCrashed,
    ServerCreated,
    ServerDeleted,
    ServerMoved,
    ServerPlayersChanged,
    ServerStarted,
    ServerStartFailed,
    ServerStarting,
    ServerStartRequested,
    ServerStopped,
    ServerStopRequested,
)
from app.shared.domain import Aggregate, Conflict, InvalidInput

NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{3,50}")
VERSION_PATTERN = re.compile(r"[0-9]+\.[0-9]+(\.[0-9]+)?")
MOTD_MAX = 150
MEMORY_RANGE = (512, 32768)
PORT_RANGE = (1024, 65535)


class ServerState(enum.StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    CRASHED = "crashed"


class ServerType(enum.StrEnum):
    VANILLA = "vanilla"
    PAPER = "paper"
    FABRIC = "fabric"
    FORGE = "forge"
    NEOFORGE = "neoforge"
    CUSTOM = "custom"


class RestartMode(enum.StrEnum):
    OFF = "off"
    ON_FAILURE = "on-failure"


LOADER_TYPES = frozenset({ServerType.FABRIC, ServerType.FORGE, ServerType.NEOFORGE})
ACTIVE_STATES = frozenset({ServerState.STARTING, ServerState.RUNNING, ServerState.STOPPING})


def validate_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidInput(
            "name must be 3-50 characters of letters, digits, '_' and '-'", field="name"
        )
    return name


def validate_version(version: str) -> str:
    if not VERSION_PATTERN.fullmatch(version):
        raise InvalidInput("version must look like 1.21 or 1.20.4", field="version")
    return version


def validate_port(port: int) -> int:
    if not PORT_RANGE[0] <= port <= PORT_RANGE[1]:
        raise InvalidInput(
            f"port must be between {PORT_RANGE[0]} and {PORT_RANGE[1]}", field="port"
        )
    return port


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartPolicy:
    mode: RestartMode = RestartMode.OFF
    max_restarts: int = 3
    backoff_seconds: float = 10.0

    def __post_init__(self) -> None:
        if not 0 <= self.max_restarts <= 100:
            raise InvalidInput("max_restarts must be between 0 and 100", field="max_restarts")
        if not 0 <= self.backoff_seconds <= 3600:
            raise InvalidInput(
                "backoff_seconds must be between 0 and 3600", field="backoff_seconds"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """What the owner chose; the keys of server.properties that the dashboard manages."""

    server_type: ServerType
    version: str
    memory_mb: int
    max_players: int = 20
    motd: str = "A Minecraft Server"
    online_mode: bool = True
    whitelist: bool = False
    jar_sha256: str | None = None
    loader_version: str | None = None
    restart: RestartPolicy = field(default_factory=RestartPolicy)

    def __post_init__(self) -> None:
        validate_version(self.version)
        if not MEMORY_RANGE[0] <= self.memory_mb <= MEMORY_RANGE[1]:
            raise InvalidInput(
                f"memory_mb must be between {MEMORY_RANGE[0]} and {MEMORY_RANGE[1]}",
                field="memory_mb",
            )
        if not 1 <= self.max_players <= 10000:
            raise InvalidInput("max_players must be between 1 and 10000", field="max_players")
        if len(self.motd) > MOTD_MAX or any(
            unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in self.motd
        ):
            raise InvalidInput(
                f"motd must be at most {MOTD_MAX} characters on one line", field="motd"
            )


RESTART_KEYS = frozenset(ServerConfig.__dataclass_fields__) - {"restart"}
"""What the JVM reads at start: a change applies at the next one (the restart policy does not)."""


@dataclass(kw_only=True, eq=False)
class Server(Aggregate):
    name: str
    description: str | None
    owner_id: uuid.UUID
    node: str
    port: int
    config: ServerConfig
    eula_accepted: bool
    state: ServerState
    created_at: datetime
    status_message: str | None = None
    state_changed_at: datetime | None = None
    pid: int | None = None
    process_started_at: float | None = None
    started_at: datetime | None = None
    restart_required: bool = False
    restart_count: int = 0
    players: tuple[str, ...] = ()

    @classmethod
    def create(
        cls,
        *,
        server_id: uuid.UUID,
        name: str,
        description: str | None,
        owner_id: uuid.UUID,
        node: str,
        port: int,
        config: ServerConfig,
        eula_accepted: bool,
        now: datetime,
    ) -> Server:
        if description is not None and len(description) > 500:
            raise InvalidInput("description must be at most 500 characters", field="description")
        server = cls(
            id=server_id,
            name=validate_name(name),
            description=description,
            owner_id=owner_id,
            node=node,
            port=validate_port(port),
            config=config,
            eula_accepted=eula_accepted,
            state=ServerState.STOPPED,
            created_at=now,
        )
        server.record(
            ServerCreated(
                occurred_at=now,
                server_id=server_id,
                name=name,
                owner_id=owner_id,
                node=node,
                port=port,
                server_type=config.server_type.value,
                version=config.version,
                memory_mb=config.memory_mb,
                loader_version=config.loader_version,
            )
        )
        return server

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    def update(
        self,
        *,
        now: datetime,
        description: str | None = None,
        port: int | None = None,
        eula_accepted: bool | None = None,
        config: ServerConfig | None = None,
    ) -> list[str]:
        """Apply owner changes; on an active server they take effect at the next restart."""
        changed: list[str] = []
        if description is not None and description != self.description:
            if len(description) > 500:
                raise InvalidInput(
                    "description must be at most 500 characters", field="description"
                )
            self.description = description
            changed.append("description")
        if port is not None and port != self.port:
            self.port = validate_port(port)
            changed.append("port")
        if eula_accepted is not None and eula_accepted != self.eula_accepted:
            if not eula_accepted and self.is_active:
                raise Conflict("the EULA cannot be withdrawn while the server runs")
            self.eula_accepted = eula_accepted
            changed.append("eula_accepted")
        if config is not None and config != self.config:
            changed.extend(
                name
                for name in ServerConfig.__dataclass_fields__
                if getattr(config, name) != getattr(self.config, name)
            )
            self.config = config
        if not changed:
            return changed
        needs_restart = self.is_active and (
            "port" in changed or any(key in RESTART_KEYS for key in changed)
        )
        self.restart_required = self.restart_required or needs_restart
        self.record(
            ServerConfigurationUpdated(
                occurred_at=now,
                server_id=self.id,
                changed_fields=tuple(changed),
                restart_required=self.restart_required,
            )
        )
        return changed

    def delete(self, *, now: datetime) -> None:
        if self.is_active:
            raise InvalidTransition(f"server {self.name} is {self.state.value}; stop it first")
        self.record(ServerDeleted(occurred_at=now, server_id=self.id, node=self.node))

    def move(self, *, node: str, port: int, now: datetime) -> None:
        """Live on `node` from now on; its directory was copied there while it was stopped."""
        if self.is_active:
            raise InvalidTransition(f"server {self.name} is {self.state.value}; stop it first")
        if node == self.node:
            raise Conflict(f"server {self.name} is already on node {node}", field="node")
        self.record(
            ServerMoved(
                occurred_at=now,
                server_id=self.id,
                from_node=self.node,
                to_node=node,
                port=validate_port(port),
            )
        )
        self.node, self.port = node, port

    def request_start(self, *, by: uuid.UUID | None, now: datetime) -> None:
        if self.state not in (ServerState.STOPPED, ServerState.CRASHED):
            raise InvalidTransition(f"server {self.name} is already {self.state.value}")
        if not self.eula_accepted:
            raise Conflict(
                "the Minecraft EULA (https://aka.ms/MinecraftEULA) must be accepted before the "
                "first start: set eula_accepted to true",
                reason="eula-not-accepted",
            )
        self._enter(ServerState.STARTING, "start requested", now)
        self.restart_required = False
        if by is not None:
            self.restart_count = 0
        self.record(
            ServerStartRequested(
                occurred_at=now, server_id=self.id, node=self.node, requested_by=by
            )
        )

    def process_launched(
        self, *, pid: int, process_started_at: float, java: str, now: datetime
    ) -> None:
        self._expect(ServerState.STARTING)
        self.pid, self.process_started_at = pid, process_started_at
        self.status_message = "starting"
        self.record(
            ServerStarting(
                occurred_at=now,
                server_id=self.id,
                pid=pid,
                process_started_at=process_started_at,
                java=java,
            )
        )

    def mark_running(self, *, detected_by: str, now: datetime) -> None:
        self._expect(ServerState.STARTING)
        self._enter(ServerState.RUNNING, None, now)
        self.started_at = now
        self.record(
            ServerStarted(
                occurred_at=now, server_id=self.id, pid=self.pid or 0, detected_by=detected_by
            )
        )

    def start_failed(self, *, reason: str, now: datetime) -> None:
        self._expect(ServerState.STARTING)
        self._clear_process(ServerState.STOPPED, f"start failed: {reason}", now)
        self.record(ServerStartFailed(occurred_at=now, server_id=self.id, reason=reason))

    def request_stop(self, *, by: uuid.UUID | None, kill: bool, now: datetime) -> None:
        if self.state not in ACTIVE_STATES or (self.state is ServerState.STOPPING and not kill):
            raise InvalidTransition(f"server {self.name} is {self.state.value}")
        self._enter(ServerState.STOPPING, "kill requested" if kill else "stop requested", now)
        self.record(
            ServerStopRequested(
                occurred_at=now, server_id=self.id, node=self.node, requested_by=by, kill=kill
            )
        )

    def process_exited(
        self, *, exit_code: int | None, reason: str, will_restart: bool, now: datetime
    ) -> None:
        """The JVM is gone: a stop we asked for, or a crash (which may be restarted)."""
        if self.state is ServerState.STOPPING:
            self._clear_process(ServerState.STOPPED, None, now)
            self.record(ServerStopped(occurred_at=now, server_id=self.id, exit_code=exit_code))
            return
        if self.state not in (ServerState.STARTING, ServerState.RUNNING):
            raise InvalidTransition(f"server {self.name} is {self.state.value}")
        self._clear_process(ServerState.CRASHED, reason, now)
        if will_restart:
            self.restart_count += 1
        self.record(
            ServerCrashed(
                occurred_at=now,
                server_id=self.id,
                exit_code=exit_code,
                reason=reason,
                will_restart=will_restart,
            )
        )

    def should_restart_after_crash(self) -> bool:
        policy = self.config.restart
        return policy.mode is RestartMode.ON_FAILURE and self.restart_count < policy.max_restarts

    def mark_restart_required(self, *, changed_file: str, now: datetime) -> bool:
        """A file the JVM read at start was edited: the change applies at the next start."""
        if not self.is_active or self.restart_required:
            return False
        self.restart_required = True
        self.record(
            ServerConfigurationUpdated(
                occurred_at=now,
                server_id=self.id,
                changed_fields=(changed_file,),
                restart_required=True,
            )
        )
        return True

    def players_changed(self, players: tuple[str, ...], *, now: datetime) -> None:
        if players != self.players:
            self.players = players
            self.record(ServerPlayersChanged(occurred_at=now, server_id=self.id, players=players))

    def _expect(self, state: ServerState) -> None:
        if self.state is not state:
            raise InvalidTransition(f"server {self.name} is {self.state.value}, not {state.value}")

    def _enter(self, state: ServerState, message: str | None, now: datetime) -> None:
        self.state = state
        self.status_message = message
        self.state_changed_at = now

    def _clear_process(self, state: ServerState, message: str | None, now: datetime) -> None:
        self._enter(state, message, now)
        self.pid = self.process_started_at = None
        self.started_at = None
        self.players = ()
