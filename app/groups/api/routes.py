"""HTTP routes of the groups context: /api/v2/groups and /api/v2/servers/{id}/access."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response, status

from app.groups.api.schemas import (
    AccessModeRequest,
    AccessResponse,
    AddPlayerRequest,
    AttachRequest,
    CreateGroupRequest,
    GroupResponse,
    PlayerResponse,
    UpdateGroupRequest,
)
from app.groups.application.messages import (
    AddPlayerToGroup,
    AttachGroupToServer,
    CreateGroup,
    DeleteGroup,
    DetachGroupFromServer,
    GetGroup,
    GetServerAccess,
    GroupListFilter,
    GroupSummary,
    ListGroups,
    RemovePlayerFromGroup,
    SetServerAccessMode,
    UpdateGroup,
)
from app.groups.domain.model import GroupType, VersionMismatch
from app.shared.bus import MessageBus
from app.shared.dependencies import BusDep, require
from app.shared.domain import Page
from app.shared.http import SafeLine
from app.shared.openapi import problems
from app.shared.security import Permission, Principal

router = APIRouter(prefix="/api/v2/groups", tags=["groups"])
access_router = APIRouter(prefix="/api/v2/servers", tags=["groups"])

Reader = Annotated[Principal, Depends(require(Permission.GROUP_READ))]
Writer = Annotated[Principal, Depends(require(Permission.GROUP_WRITE))]
_ETAG = re.compile(r'^(?:W/)?"(\d{1,18})"$')


async def group_filter(
    actor: Reader,
    type_: Annotated[GroupType | None, Query(alias="type")] = None,
    name: Annotated[SafeLine | None, Query(max_length=100, description="part of the name")] = None,
    owner_id: Annotated[uuid.UUID | None, Query(description="admins and operators")] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> GroupListFilter:
    return GroupListFilter(
        owner_id=owner_id if actor.sees_everything() else actor.user_id,
        group_type=type_.value if type_ else None,
        search=name,
        page=page,
        limit=limit,
    )


def _expected_version(if_match: str | None) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    found = _ETAG.match(if_match.strip())
    if found is None:
        raise VersionMismatch(f"If-Match {if_match!r} is not an ETag of this group")
    return int(found.group(1))


async def _group(
    bus: MessageBus, actor: Principal, group_id: uuid.UUID, response: Response
) -> GroupResponse:
    detail = await bus.handle(GetGroup(actor=actor, group_id=group_id))
    response.headers["ETag"] = f'"{detail.version}"'
    return GroupResponse.of(detail)


@router.get("/", summary="Groups you can see, newest first (operators and admins see all)")
async def list_groups(
    actor: Reader, bus: BusDep, filter: Annotated[GroupListFilter, Depends(group_filter)]
) -> Page[GroupSummary]:
    return await bus.handle(ListGroups(actor=actor, filter=filter))


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    responses=problems({409: "you already have a group of that name"}),
)
async def create_group(
    body: CreateGroupRequest, actor: Writer, bus: BusDep, response: Response
) -> GroupResponse:
    group_id = await bus.handle(
        CreateGroup(
            actor=actor,
            name=body.name,
            description=body.description,
            group_type=body.group_type,
            op_level=body.op_level,
        )
    )
    return await _group(bus, actor, group_id, response)


@router.get("/{group_id}", summary="A group with its players and servers; ETag = its version")
async def get_group(
    group_id: uuid.UUID, actor: Reader, bus: BusDep, response: Response
) -> GroupResponse:
    return await _group(bus, actor, group_id, response)


@router.put(
    "/{group_id}",
    summary="Rename, describe or change the op level; If-Match guards",
    responses=problems(
        {
            409: "a group of that name exists",
            412: "If-Match is not the group's current ETag",
        }
    ),
)
async def update_group(
    group_id: uuid.UUID,
    body: UpdateGroupRequest,
    actor: Writer,
    bus: BusDep,
    response: Response,
    if_match: Annotated[str | None, Header(max_length=100)] = None,
) -> GroupResponse:
    await bus.handle(
        UpdateGroup(
            actor=actor,
            group_id=group_id,
            name=body.name,
            description=body.description,
            op_level=body.op_level,
            expected_version=_expected_version(if_match),
        )
    )
    return await _group(bus, actor, group_id, response)


@router.delete("/{group_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_group(group_id: uuid.UUID, actor: Writer, bus: BusDep) -> Response:
    await bus.handle(DeleteGroup(actor=actor, group_id=group_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{group_id}/players",
    status_code=status.HTTP_201_CREATED,
    summary="Add a player by name: the UUID comes from Mojang (online) or is computed (offline)",
    responses=problems(
        {
            409: "the player is already in the group",
            503: "Mojang's profile service cannot be reached (online mode)",
        }
    ),
)
async def add_player(
    group_id: uuid.UUID, body: AddPlayerRequest, actor: Writer, bus: BusDep
) -> PlayerResponse:
    member = await bus.handle(
        AddPlayerToGroup(actor=actor, group_id=group_id, name=body.name, mode=body.mode)
    )
    return PlayerResponse(id=member.player_id, uuid=member.minecraft_uuid, name=member.name)


@router.delete("/{group_id}/players/{player_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_player(
    group_id: uuid.UUID, player_id: uuid.UUID, actor: Writer, bus: BusDep
) -> Response:
    """`player_id` is the player's id or its Minecraft UUID."""
    await bus.handle(RemovePlayerFromGroup(actor=actor, group_id=group_id, player_id=player_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{group_id}/servers/{server_id}",
    status_code=status.HTTP_201_CREATED,
    responses=problems({409: "the group is already attached to the server"}),
)
async def attach_group(
    group_id: uuid.UUID,
    server_id: uuid.UUID,
    actor: Writer,
    bus: BusDep,
    response: Response,
    body: AttachRequest | None = None,
) -> GroupResponse:
    priority = body.priority if body else 0
    await bus.handle(
        AttachGroupToServer(actor=actor, group_id=group_id, server_id=server_id, priority=priority)
    )
    return await _group(bus, actor, group_id, response)


@router.delete("/{group_id}/servers/{server_id}", status_code=status.HTTP_204_NO_CONTENT)
async def detach_group(
    group_id: uuid.UUID, server_id: uuid.UUID, actor: Writer, bus: BusDep
) -> Response:
    await bus.handle(DetachGroupFromServer(actor=actor, group_id=group_id, server_id=server_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@access_router.get(
    "/{server_id}/access",
    summary="Effective ops and whitelist, attached groups, mode and the last sync",
)
async def server_access(server_id: uuid.UUID, actor: Reader, bus: BusDep) -> AccessResponse:
    return AccessResponse.of(await bus.handle(GetServerAccess(actor=actor, server_id=server_id)))


@access_router.put(
    "/{server_id}/access", summary="Whether the dashboard's lists win over hand edits"
)
async def set_server_access(
    server_id: uuid.UUID, body: AccessModeRequest, actor: Writer, bus: BusDep
) -> AccessResponse:
    await bus.handle(
        SetServerAccessMode(actor=actor, server_id=server_id, authoritative=body.authoritative)
    )
    return AccessResponse.of(await bus.handle(GetServerAccess(actor=actor, server_id=server_id)))
