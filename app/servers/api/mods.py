"""HTTP routes of a server's mods and plugins from Modrinth: /api/v2/servers/{id}/mods."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from app.servers.application.mods import (
    ChangeMod,
    CheckModUpdates,
    InstallMod,
    ListMods,
    SearchMods,
    UpdateMods,
)
from app.servers.domain.mods import MAX_PLAN
from app.shared.dependencies import BusDep, require
from app.shared.http import SafeLine
from app.shared.openapi import problems
from app.shared.security import Permission, Principal

router = APIRouter(prefix="/api/v2/servers/{server_id}/mods", tags=["mods"])

Reader = Annotated[Principal, Depends(require(Permission.SERVER_READ))]
Writer = Annotated[Principal, Depends(require(Permission.SERVER_WRITE))]
CodeInstaller = Annotated[Principal, Depends(require(Permission.SERVER_CODE))]
ProjectRef = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
FileName = Annotated[
    str, Path(max_length=170, pattern=r"^[A-Za-z0-9][A-Za-z0-9._+() \[\]-]{0,150}\.jar$")
]
MODRINTH = "Modrinth is down or rate-limits us (Retry-After says when to retry)"
NO_MODS = "the server's type takes no mods or plugins (vanilla, custom)"


class SearchHitResponse(BaseModel):
    project_id: str
    slug: str
    title: str
    description: str
    downloads: int
    side: Literal["client-only", "server-only", "both"]
    installable: bool


class SearchResponse(BaseModel):
    items: list[SearchHitResponse]
    total: int
    limit: int
    offset: int


class InstalledModResponse(BaseModel):
    file_name: str
    enabled: bool
    size: int
    sha512: str
    identified: bool
    project_id: str | None
    version_id: str | None
    name: str | None
    version_number: str | None


class ModUpdateResponse(BaseModel):
    file_name: str
    project_id: str
    from_version_id: str
    from_version_number: str
    to_version_id: str
    to_version_number: str


class InstallRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"project": "fabric-api", "backup": False}]}
    )

    project: ProjectRef = Field(description="a Modrinth project id or slug")
    version_id: ProjectRef | None = Field(
        default=None, description="a version of it; its newest fitting release when absent"
    )
    backup: bool = Field(default=False, description="take a safety backup first")


class InstalledVersionResponse(BaseModel):
    project_id: str
    version_id: str
    version_number: str
    file_name: str
    sha512: str
    dependency_of: str | None


class UpdateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"backup": False}]})

    project_ids: list[ProjectRef] | None = Field(
        default=None, max_length=MAX_PLAN, description="the projects to update; all when absent"
    )
    backup: bool = False


class ChangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"backup": False}]})

    backup: bool = False


class ChangedResponse(BaseModel):
    file_name: str


@router.get(
    "/search",
    summary="Modrinth projects that fit the server's loader and Minecraft version",
    responses=problems({409: NO_MODS, 503: MODRINTH}),
)
async def search_mods(
    server_id: uuid.UUID,
    actor: Reader,
    bus: BusDep,
    query: Annotated[SafeLine, Query(max_length=100)] = "",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> SearchResponse:
    page = await bus.handle(
        SearchMods(actor=actor, server_id=server_id, query=query, limit=limit, offset=offset)
    )
    return SearchResponse(
        items=[SearchHitResponse.model_validate(h, from_attributes=True) for h in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get(
    "",
    summary="The jars in mods/ or plugins/, identified by their SHA-512 (hand-placed ones too)",
    responses=problems({409: NO_MODS, 503: f"{MODRINTH}, or the server's node is offline"}),
)
async def list_mods(server_id: uuid.UUID, actor: Reader, bus: BusDep) -> list[InstalledModResponse]:
    mods = await bus.handle(ListMods(actor=actor, server_id=server_id))
    return [
        InstalledModResponse(
            file_name=m.file_name,
            enabled=m.enabled,
            size=m.size,
            sha512=m.sha512,
            identified=m.version_id is not None,
            project_id=m.project_id,
            version_id=m.version_id,
            name=m.name,
            version_number=m.version_number,
        )
        for m in mods
    ]


@router.post(
    "",
    status_code=201,
    summary="Install a project's version with its required dependencies (needs server:code)",
    responses=problems(
        {
            404: "no such project or version, or none fits the server",
            409: f"{NO_MODS}; already installed, two versions of one project, an incompatible"
            " dependency, or a version that does not fit the loader or Minecraft version",
            422: "a client-only project, or a download whose SHA-512 is not Modrinth's",
            503: f"{MODRINTH}, or the server's node is offline",
        }
    ),
)
async def install_mod(
    server_id: uuid.UUID, body: InstallRequest, actor: Writer, _: CodeInstaller, bus: BusDep
) -> list[InstalledVersionResponse]:
    plan = await bus.handle(
        InstallMod(
            actor=actor,
            server_id=server_id,
            project=body.project,
            version_id=body.version_id,
            backup=body.backup,
        )
    )
    return [
        InstalledVersionResponse(
            project_id=p.version.project_id,
            version_id=p.version.id,
            version_number=p.version.version_number,
            file_name=p.version.file.file_name,
            sha512=p.version.file.sha512,
            dependency_of=p.dependency_of,
        )
        for p in plan
    ]


@router.get(
    "/updates",
    summary="Newer fitting versions of the installed jars",
    responses=problems({409: NO_MODS, 503: MODRINTH}),
)
async def check_updates(
    server_id: uuid.UUID, actor: Reader, bus: BusDep
) -> list[ModUpdateResponse]:
    found = await bus.handle(CheckModUpdates(actor=actor, server_id=server_id))
    return [ModUpdateResponse.model_validate(u, from_attributes=True) for u in found]


@router.post(
    "/update",
    summary="Update the named projects, or all (needs server:code)",
    responses=problems(
        {409: f"{NO_MODS}, or a new version conflicts", 422: "a bad download", 503: MODRINTH}
    ),
)
async def update_mods(
    server_id: uuid.UUID, body: UpdateRequest, actor: Writer, _: CodeInstaller, bus: BusDep
) -> list[ModUpdateResponse]:
    done = await bus.handle(
        UpdateMods(
            actor=actor, server_id=server_id, project_ids=body.project_ids, backup=body.backup
        )
    )
    return [ModUpdateResponse.model_validate(u, from_attributes=True) for u in done]


async def _change(
    server_id: uuid.UUID, file_name: str, action: str, backup: bool, actor: Principal, bus: BusDep
) -> ChangedResponse:
    name = await bus.handle(
        ChangeMod(
            actor=actor, server_id=server_id, file_name=file_name, action=action, backup=backup
        )
    )
    return ChangedResponse(file_name=name)


CHANGE_PROBLEMS = problems({404: "no such jar", 409: NO_MODS, 503: "the node is offline"})


@router.post(
    "/jars/{file_name}/disable", summary="Rename to .jar.disabled", responses=CHANGE_PROBLEMS
)
async def disable_mod(
    server_id: uuid.UUID, file_name: FileName, body: ChangeRequest, actor: Writer, bus: BusDep
) -> ChangedResponse:
    return await _change(server_id, file_name, "disable", body.backup, actor, bus)


@router.post(
    "/jars/{file_name}/enable",
    summary="Enable a disabled jar (needs server:code)",
    responses=CHANGE_PROBLEMS,
)
async def enable_mod(
    server_id: uuid.UUID,
    file_name: FileName,
    body: ChangeRequest,
    actor: Writer,
    _: CodeInstaller,
    bus: BusDep,
) -> ChangedResponse:
    return await _change(server_id, file_name, "enable", body.backup, actor, bus)


@router.delete("/jars/{file_name}", summary="Remove a jar", responses=CHANGE_PROBLEMS)
async def remove_mod(
    server_id: uuid.UUID,
    file_name: FileName,
    actor: Writer,
    bus: BusDep,
    backup: bool = False,
) -> ChangedResponse:
    return await _change(server_id, file_name, "remove", backup, actor, bus)
