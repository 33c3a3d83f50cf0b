"""Request and response bodies of the servers routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.servers.domain.model import RestartMode, RestartPolicy, Server, ServerType
from app.servers.domain.nodes import NODE_NAME
from app.shared.http import WHOLE, SafeLine, SafeText, example

NAME = Field(min_length=3, max_length=50, pattern=r"^[A-Za-z0-9_-]+$")
VERSION_PATTERN = r"^[0-9]+\.[0-9]+(\.[0-9]+)?$"
VERSION = Field(pattern=VERSION_PATTERN, max_length=20, examples=["1.21"])
OPTIONAL_VERSION = Field(default=None, pattern=VERSION_PATTERN, max_length=20)
Memory = Annotated[int, Field(ge=512, le=32768, description="heap size in MiB"), WHOLE]
Port = Annotated[int, Field(ge=1024, le=65535), WHOLE]
Players = Annotated[int, Field(ge=1, le=10000), WHOLE]
OPTIONAL_PORT = Field(default=None, description="default: the lowest free port of the range")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RestartPolicyBody(Strict):
    mode: RestartMode = Field(default=RestartMode.OFF, strict=False)
    max_restarts: Annotated[int, Field(ge=0, le=100), WHOLE] = 3
    backoff_seconds: float = Field(default=10.0, ge=0, le=3600, strict=False)

    def to_domain(self) -> RestartPolicy:
        return RestartPolicy(
            mode=self.mode, max_restarts=self.max_restarts, backoff_seconds=self.backoff_seconds
        )


class CreateServerRequest(Strict):
    model_config = example(
        {
            "name": "survival",
            "description": "Our survival world",
            "server_type": "vanilla",
            "version": "1.21.4",
            "memory_mb": 2048,
            "max_players": 20,
            "motd": "Welcome to survival",
            "eula_accepted": True,
            "restart_policy": {"mode": "on-failure", "max_restarts": 3, "backoff_seconds": 10},
        }
    )

    name: str = NAME
    description: SafeText | None = Field(default=None, max_length=500)
    server_type: ServerType = Field(default=ServerType.VANILLA, strict=False)
    version: str = VERSION
    loader_version: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$",
        description="fabric, forge and neoforge: the loader build; default the recommended one",
    )
    memory_mb: Memory
    port: Port | None = OPTIONAL_PORT
    max_players: Players = 20
    motd: SafeLine = Field(default="A Minecraft Server", max_length=150)
    online_mode: bool = True
    whitelist: bool = False
    eula_accepted: bool = Field(
        default=False, description="the owner accepts https://aka.ms/MinecraftEULA"
    )
    restart_policy: RestartPolicyBody = Field(default_factory=RestartPolicyBody)
    node: str | None = Field(
        default=None,
        pattern=NODE_NAME,
        max_length=63,
        description="the node to place it on (operators and admins); default: the online,"
        " uncordoned node with the most memory left after this server's",
    )


class MoveServerRequest(Strict):
    model_config = example({"node": "b"})

    node: str = Field(
        pattern=NODE_NAME,
        max_length=63,
        description="the online, uncordoned node to move the stopped server to",
    )


class UpdateServerRequest(Strict):
    model_config = example({"motd": "Survival, now with 30 slots", "max_players": 30})

    description: SafeText | None = Field(default=None, max_length=500)
    version: str | None = OPTIONAL_VERSION
    memory_mb: Memory | None = None
    port: Port | None = OPTIONAL_PORT
    max_players: Players | None = None
    motd: SafeLine | None = Field(default=None, max_length=150)
    online_mode: bool | None = None
    whitelist: bool | None = None
    eula_accepted: bool | None = None
    restart_policy: RestartPolicyBody | None = None


class ConsoleRequest(Strict):
    model_config = example({"command": "say Hello from mcdash"})

    command: str = Field(min_length=1, max_length=200)


class RestartPolicyResponse(BaseModel):
    mode: RestartMode
    max_restarts: int
    backoff_seconds: float


class ServerResponse(BaseModel):
    id: uuid.UUID
    name: str
    description: str | None
    owner_id: uuid.UUID
    node: str
    port: int
    server_type: ServerType
    version: str
    memory_mb: int
    max_players: int
    motd: str
    online_mode: bool
    whitelist: bool
    eula_accepted: bool
    jar_sha256: str | None
    loader_version: str | None
    restart_policy: RestartPolicyResponse
    status: str
    status_message: str | None
    restart_required: bool
    players: list[str]
    created_at: datetime
    started_at: datetime | None

    @classmethod
    def of(cls, server: Server) -> ServerResponse:
        config = server.config
        return cls(
            id=server.id,
            name=server.name,
            description=server.description,
            owner_id=server.owner_id,
            node=server.node,
            port=server.port,
            server_type=config.server_type,
            version=config.version,
            memory_mb=config.memory_mb,
            max_players=config.max_players,
            motd=config.motd,
            online_mode=config.online_mode,
            whitelist=config.whitelist,
            eula_accepted=server.eula_accepted,
            jar_sha256=config.jar_sha256,
            loader_version=config.loader_version,
            restart_policy=RestartPolicyResponse(
                mode=config.restart.mode,
                max_restarts=config.restart.max_restarts,
                backoff_seconds=config.restart.backoff_seconds,
            ),
            status=server.state.value,
            status_message=server.status_message,
            restart_required=server.restart_required,
            players=list(server.players),
            created_at=server.created_at,
            started_at=server.started_at,
        )


class LifecycleResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    server_id: uuid.UUID
    state: str
    job_id: str | None
    node: str
    node_online: bool
    message: str


class RuntimeResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    pid: int | None
    uptime_seconds: float | None
    players_online: int
    players_max: int | None
    players: list[str]
    cpu_percent: float | None
    rss_bytes: int | None
    sampled_at: float | None


class StatusResponse(BaseModel):
    server_id: uuid.UUID
    state: str
    status_message: str | None
    restart_required: bool
    started_at: datetime | None
    live: RuntimeResponse | None


class ConsoleAccepted(BaseModel):
    command: str
    status: Literal["sent"] = "sent"


class ConsoleLineResponse(BaseModel):
    id: str
    line: str
    at: float


class ConsolePage(BaseModel):
    items: list[ConsoleLineResponse]
    next_before: str | None


class JarResponse(BaseModel):
    sha256: str
    size: int


class VersionResponse(BaseModel):
    server_type: str
    version: str
    kind: str
    released_at: str | None
    loader_versions: list[str] = Field(
        default_factory=list, description="fabric, forge, neoforge: newest first"
    )
    recommended_loader: str | None = None


class TicketResponse(BaseModel):
    ticket: str
    expires_in: int
