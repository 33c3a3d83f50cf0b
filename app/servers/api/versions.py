"""HTTP routes of version changes: /api/v2/servers/{id}/version and its rollback."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.servers.api.schemas import VERSION_PATTERN, ServerResponse
from app.servers.application.messages import GetServer
from app.servers.application.versions import ChangeServerVersion, RollBackServerVersion
from app.servers.domain.model import ServerConfig, ServerType
from app.shared.dependencies import BusDep, require
from app.shared.openapi import problems
from app.shared.security import Permission, Principal

router = APIRouter(prefix="/api/v2/servers/{server_id}/version", tags=["servers"])

Writer = Annotated[Principal, Depends(require(Permission.SERVER_WRITE))]


TARGETS = ("server_type", "version", "loader_version")


def _at_least_one_target(schema: dict[str, Any]) -> None:
    """The schema says what the validator wants: one of the targets named, none of them null."""
    for name in TARGETS:
        field = schema["properties"][name]
        choices = [c for c in field.pop("anyOf", []) if c.get("type") != "null"]
        field.update(choices[0] if len(choices) == 1 else {"anyOf": choices})
        field.pop("default", None)
    schema["anyOf"] = [{"required": [name]} for name in TARGETS]
    schema["examples"] = [
        {"server_type": "paper", "version": "1.21.4"},
        {"server_type": "fabric", "version": "1.21.1", "loader_version": "0.16.10"},
        {"version": "1.20.4", "allow_downgrade": True},
    ]


class VersionChangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_at_least_one_target)

    server_type: ServerType | None = Field(
        default=None, strict=False, description="default: the server's own type"
    )
    version: str | None = Field(
        default=None,
        pattern=VERSION_PATTERN,
        max_length=20,
        description="the Minecraft version; default: the server's own",
    )
    loader_version: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$",
        description="fabric, forge and neoforge: the loader build; default the recommended one"
        " (or the current one when the game version and type stay)",
    )
    allow_downgrade: bool = Field(
        default=False,
        description="needed to go to an older Minecraft version or to leave a mod loader, both"
        " of which can damage the world",
    )

    @model_validator(mode="before")
    @classmethod
    def _names_a_target(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if not any(name in data for name in TARGETS):
                raise ValueError("name a server_type, a version or a loader_version to change to")
            nulls = [name for name in TARGETS if name in data and data[name] is None]
            if nulls:
                raise ValueError(f"{', '.join(nulls)} cannot be null: leave it out to keep it")
        return data


class ConfigSummary(BaseModel):
    server_type: ServerType
    version: str
    loader_version: str | None

    @classmethod
    def of(cls, config: ServerConfig) -> ConfigSummary:
        return cls(
            server_type=config.server_type,
            version=config.version,
            loader_version=config.loader_version,
        )


class VersionChangeResponse(BaseModel):
    backup_id: uuid.UUID = Field(description="the safety backup a rollback restores")
    previous: ConfigSummary
    current: ConfigSummary
    downgrade_reasons: list[str] = Field(description="why this change may damage the world")
    server: ServerResponse


class RollbackResponse(BaseModel):
    backup_id: uuid.UUID = Field(
        description="being restored: GET /api/v2/backups/{backup_id} shows restore_status"
    )
    restore_job_id: str
    restored: ConfigSummary
    server: ServerResponse


@router.post(
    "",
    summary="Change a stopped server's Minecraft version and/or type, after a safety backup",
    description="The new type and version are checked as on create (the loader build too), a "
    "backup of the server is taken and waited for, then the server runs the new version from "
    "its next start (the jar or loader is fetched and verified then, as on a first start). "
    "Going to an older version, or leaving fabric/forge/neoforge, needs allow_downgrade.",
    responses=problems(
        {
            409: "the server is not stopped, the change is a downgrade without allow_downgrade,"
            " or the safety backup failed",
            422: "an unknown version or loader build (the valid ones named), a custom target, or"
            " nothing to change",
            502: "the version lists cannot be reached",
        }
    ),
)
async def change_version(
    server_id: uuid.UUID, body: VersionChangeRequest, actor: Writer, bus: BusDep
) -> VersionChangeResponse:
    change = await bus.handle(
        ChangeServerVersion(
            actor=actor,
            server_id=server_id,
            server_type=body.server_type,
            version=body.version,
            loader_version=body.loader_version,
            allow_downgrade=body.allow_downgrade,
        )
    )
    server = await bus.handle(GetServer(actor=actor, server_id=server_id))
    return VersionChangeResponse(
        backup_id=change.backup_id,
        previous=ConfigSummary.of(change.previous),
        current=ConfigSummary.of(change.current),
        downgrade_reasons=list(change.downgrade_reasons),
        server=ServerResponse.of(server),
    )


@router.post(
    "/rollback",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Undo the last version change: the old type and version, and its backup restored",
    description="The server's configuration goes back at once and the safety backup taken "
    "before the change is restored by the server's node (itself after a safety backup of the "
    "current state); the restore's progress is the backup's restore_status.",
    responses=problems(
        {
            409: "the server is not stopped, has no version change to roll back, or a backup or"
            " restore of it is running",
            404: "the change's backup was deleted",
        }
    ),
)
async def roll_back_version(server_id: uuid.UUID, actor: Writer, bus: BusDep) -> RollbackResponse:
    rollback = await bus.handle(RollBackServerVersion(actor=actor, server_id=server_id))
    server = await bus.handle(GetServer(actor=actor, server_id=server_id))
    return RollbackResponse(
        backup_id=rollback.backup_id,
        restore_job_id=rollback.restore_job_id,
        restored=ConfigSummary.of(rollback.restored),
        server=ServerResponse.of(server),
    )
