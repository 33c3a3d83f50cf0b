"""Request and response bodies of the groups routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.groups.application.messages import GroupDetail, ServerAccess, SyncOutcome
from app.groups.domain.model import GroupType
from app.shared.http import WHOLE, SafeLine, SafeText, example

PLAYER_NAME = Field(min_length=3, max_length=16, pattern=r"^[A-Za-z0-9_]+$", examples=["Alice"])
OpLevel = Annotated[int, Field(ge=1, le=4), WHOLE]
OP_LEVEL = Field(default=None, description="op groups only; default 4")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CreateGroupRequest(Strict):
    model_config = example(
        {
            "name": "moderators",
            "description": "Trusted players",
            "group_type": "op",
            "op_level": 3,
        }
    )

    name: SafeLine = Field(min_length=1, max_length=100)
    description: SafeText | None = Field(default=None, max_length=500)
    group_type: GroupType = Field(strict=False)
    op_level: OpLevel | None = OP_LEVEL


class UpdateGroupRequest(Strict):
    model_config = example({"description": "Trusted players, level 2", "op_level": 2})

    name: SafeLine | None = Field(default=None, min_length=1, max_length=100)
    description: SafeText | None = Field(default=None, max_length=500)
    op_level: OpLevel | None = OP_LEVEL


class AddPlayerRequest(Strict):
    model_config = example({"name": "Notch", "mode": "online"})

    name: str = PLAYER_NAME
    mode: Literal["online", "offline"] = Field(
        default="online",
        description="online: the UUID of the Mojang account; offline: the offline-mode UUID",
    )


class AttachRequest(Strict):
    model_config = example({"priority": 10})

    priority: Annotated[int, Field(ge=0, le=1000), WHOLE] = Field(
        default=0, description="for a player in several op groups, the highest wins"
    )


class AccessModeRequest(Strict):
    model_config = example({"authoritative": True})

    authoritative: bool = Field(
        description="true: the files become exactly the dashboard's lists; "
        "false: entries added by hand on the server are kept"
    )


class PlayerResponse(BaseModel):
    id: uuid.UUID
    uuid: uuid.UUID
    name: str
    added_at: datetime | None = None


class AttachmentResponse(BaseModel):
    server_id: uuid.UUID
    priority: int
    attached_at: datetime


class GroupResponse(BaseModel):
    id: uuid.UUID
    name: str
    description: str | None
    group_type: str
    op_level: int | None
    owner_id: uuid.UUID
    created_at: datetime
    version: int
    players: list[PlayerResponse]
    servers: list[AttachmentResponse]

    @classmethod
    def of(cls, detail: GroupDetail) -> GroupResponse:
        return cls(
            id=detail.id,
            name=detail.name,
            description=detail.description,
            group_type=detail.group_type,
            op_level=detail.op_level,
            owner_id=detail.owner_id,
            created_at=detail.created_at,
            version=detail.version,
            players=[
                PlayerResponse.model_validate(p, from_attributes=True) for p in detail.players
            ],
            servers=[
                AttachmentResponse.model_validate(a, from_attributes=True) for a in detail.servers
            ],
        )


class OpResponse(BaseModel):
    uuid: str
    name: str
    level: int


class WhitelistResponse(BaseModel):
    uuid: str
    name: str


class AttachedGroupResponse(BaseModel):
    group_id: uuid.UUID
    name: str
    group_type: str
    op_level: int | None
    priority: int


class SyncResponse(BaseModel):
    at: datetime
    check_only: bool
    commands: list[str]
    failures: list[str]
    drift_ops: list[str] = Field(description="ops.json entries no attached group provides")
    drift_whitelist: list[str] = Field(description="whitelist.json entries no group provides")

    @classmethod
    def of(cls, outcome: SyncOutcome) -> SyncResponse:
        return cls(
            at=outcome.at,
            check_only=outcome.check_only,
            commands=list(outcome.commands),
            failures=list(outcome.failures),
            drift_ops=list(outcome.drift_ops),
            drift_whitelist=list(outcome.drift_whitelist),
        )


class AccessResponse(BaseModel):
    server_id: uuid.UUID
    authoritative: bool
    ops: list[OpResponse]
    whitelist: list[WhitelistResponse]
    groups: list[AttachedGroupResponse]
    last_sync: SyncResponse | None

    @classmethod
    def of(cls, access: ServerAccess) -> AccessResponse:
        plan = access.plan
        return cls(
            server_id=plan.server_id,
            authoritative=plan.authoritative,
            ops=[OpResponse(uuid=e.uuid, name=e.name, level=e.level) for e in plan.lists.ops],
            whitelist=[WhitelistResponse(uuid=e.uuid, name=e.name) for e in plan.lists.whitelist],
            groups=[
                AttachedGroupResponse.model_validate(g, from_attributes=True) for g in plan.groups
            ],
            last_sync=SyncResponse.of(access.last_sync) if access.last_sync else None,
        )
