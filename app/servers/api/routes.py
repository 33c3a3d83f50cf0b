"""HTTP routes of the servers context: /api/v2/servers and /api/v2/versions."""

from __future__ import annotations

import uuid
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from app.servers.api.schemas import (
    ConsoleAccepted,
    ConsoleLineResponse,
    ConsolePage,
    ConsoleRequest,
    CreateServerRequest,
    JarResponse,
    LifecycleResponse,
    MoveServerRequest,
    RuntimeResponse,
    ServerResponse,
    StatusResponse,
    UpdateServerRequest,
    VersionResponse,
)
from app.servers.application.messages import (
    CreateServer,
    DeleteServer,
    GetConsoleLog,
    GetServer,
    GetServerStatus,
    LifecycleResult,
    ListServers,
    ListVersions,
    MoveServer,
    RestartServer,
    SendConsoleCommand,
    ServerListFilter,
    ServerListItem,
    StartServer,
    StopServer,
    UpdateServer,
    UploadServerJar,
)
from app.servers.domain.model import ServerState, ServerType
from app.shared.bodies import body_limit
from app.shared.dependencies import BusDep, require, user_rate_limit
from app.shared.domain import Page
from app.shared.http import SafeLine
from app.shared.multipart import MULTIPART_OVERHEAD, MultipartStream, multipart_file_body
from app.shared.openapi import problems
from app.shared.security import Permission, Principal

router = APIRouter(prefix="/api/v2/servers", tags=["servers"])
versions_router = APIRouter(prefix="/api/v2/versions", tags=["servers"])

UPSTREAM = "Mojang's or Paper's version list cannot be reached"
STATE = "not possible in the server's current state"
Reader = Annotated[Principal, Depends(require(Permission.SERVER_READ))]
Writer = Annotated[Principal, Depends(require(Permission.SERVER_WRITE))]
Console = Annotated[Principal, Depends(require(Permission.SERVER_CONSOLE))]
CodeInstaller = Annotated[Principal, Depends(require(Permission.SERVER_CODE))]


async def server_filter(
    actor: Reader,
    status_: Annotated[ServerState | None, Query(alias="status")] = None,
    server_type: ServerType | None = None,
    search: Annotated[SafeLine | None, Query(max_length=50)] = None,
    owner_id: uuid.UUID | None = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ServerListFilter:
    return ServerListFilter(
        owner_id=owner_id if actor.sees_everything() else actor.user_id,
        status=status_.value if status_ else None,
        server_type=server_type.value if server_type else None,
        search=search,
        page=page,
        limit=limit,
    )


def _page_json(page: Page[ServerListItem]) -> bytes:
    """The bytes pydantic would write for the page (UUIDs as strings, UTC times ending in Z),
    by orjson at a third of the cost; `str` takes asyncpg's own UUID type, the one field type
    orjson leaves to it."""
    body = {"items": page.items, "total": page.total, "page": page.page, "limit": page.limit}
    return orjson.dumps(body, default=str, option=orjson.OPT_UTC_Z)


@router.get(
    "/",
    summary="Servers you can see, newest first (operators and admins see all)",
    response_model=Page[ServerListItem],
)
async def list_servers(
    actor: Reader, bus: BusDep, filter: Annotated[ServerListFilter, Depends(server_filter)]
) -> Response:
    """Serialized straight from the read model's rows: this is the dashboard's hottest route."""
    page = await bus.handle(ListServers(actor=actor, filter=filter))
    return Response(_page_json(page), media_type="application/json")


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    responses=problems(
        {
            403: "only operators and admins choose the node",
            409: "you have a server of that name, the port is taken, the node is cordoned, or"
            " no node has room for its memory",
            502: UPSTREAM,
            503: "no node is online to take it",
        }
    ),
)
async def create_server(body: CreateServerRequest, actor: Writer, bus: BusDep) -> ServerResponse:
    server_id = await bus.handle(
        CreateServer(
            owner=actor,
            name=body.name,
            description=body.description,
            server_type=body.server_type,
            version=body.version,
            loader_version=body.loader_version,
            memory_mb=body.memory_mb,
            port=body.port,
            max_players=body.max_players,
            motd=body.motd,
            online_mode=body.online_mode,
            whitelist=body.whitelist,
            eula_accepted=body.eula_accepted,
            restart=body.restart_policy.to_domain(),
            node=body.node,
        )
    )
    return ServerResponse.of(await bus.handle(GetServer(actor=actor, server_id=server_id)))


@router.get("/{server_id}")
async def get_server(server_id: uuid.UUID, actor: Reader, bus: BusDep) -> ServerResponse:
    return ServerResponse.of(await bus.handle(GetServer(actor=actor, server_id=server_id)))


@router.put(
    "/{server_id}",
    summary="Change settings; a running server reports restart_required",
    responses=problems({409: "the port is taken", 502: UPSTREAM}),
)
async def update_server(
    server_id: uuid.UUID, body: UpdateServerRequest, actor: Writer, bus: BusDep
) -> ServerResponse:
    await bus.handle(
        UpdateServer(
            actor=actor,
            server_id=server_id,
            description=body.description,
            port=body.port,
            version=body.version,
            memory_mb=body.memory_mb,
            max_players=body.max_players,
            motd=body.motd,
            online_mode=body.online_mode,
            whitelist=body.whitelist,
            eula_accepted=body.eula_accepted,
            restart=body.restart_policy.to_domain() if body.restart_policy else None,
        )
    )
    return ServerResponse.of(await bus.handle(GetServer(actor=actor, server_id=server_id)))


@router.delete(
    "/{server_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems({409: "the server is running; stop it first"}),
)
async def delete_server(server_id: uuid.UUID, actor: Writer, bus: BusDep) -> Response:
    await bus.handle(DeleteServer(actor=actor, server_id=server_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{server_id}/move",
    summary="Move a stopped server to another node (operators and admins)",
    description="Copies the server's directory and custom jar from its node to the other one "
    "through their agents, compares checksums, switches the server over (keeping its port "
    "when the node has it free) and has its old node remove the old copy.",
    responses=problems(
        {
            403: "only operators and admins move servers",
            409: "the server is not stopped, is already there, the node is cordoned or has no"
            " room, or it changed while the files were copied",
            502: "the copy on the node does not match the files of the server's node",
            503: "the server's node or the target node is offline",
        }
    ),
)
async def move_server(
    server_id: uuid.UUID, body: MoveServerRequest, actor: Writer, bus: BusDep
) -> ServerResponse:
    await bus.handle(MoveServer(actor=actor, server_id=server_id, node=body.node))
    return ServerResponse.of(await bus.handle(GetServer(actor=actor, server_id=server_id)))


@router.put(
    "/{server_id}/jar",
    summary="Upload the jar of a custom server (needs server:code)",
    description="Multipart/form-data with the jar in the `file` field, at most "
    "MCDASH_MAX_JAR_UPLOAD_BYTES. The jar is code the game server runs: it needs the "
    "server:code permission, and nothing is read before the server is known to be yours.",
    openapi_extra=multipart_file_body("a runnable server jar"),
    responses=problems(
        {
            400: "the multipart body is malformed or holds no file part",
            409: "the server is not of type custom",
        }
    ),
)
@body_limit(lambda settings: settings.max_jar_upload_bytes + MULTIPART_OVERHEAD)
async def upload_jar(
    server_id: uuid.UUID,
    request: Request,
    actor: Writer,
    _: CodeInstaller,
    bus: BusDep,
) -> JarResponse:
    await bus.handle(GetServer(actor=actor, server_id=server_id))  # before reading the body
    part = await MultipartStream(request).file()
    stored = await bus.handle(UploadServerJar(actor=actor, server_id=server_id, chunks=part.chunks))
    return JarResponse(sha256=stored.sha256, size=stored.size)


STREAM_ID_PART_MAX = 2**64 - 1


def at_most(limit: int) -> str:
    """A regex of the decimal numbers from 0 to `limit`, leading zeros allowed, as digits go."""
    digits = str(limit)
    alternatives = [rf"\d{{1,{len(digits) - 1}}}"] if len(digits) > 1 else []
    for i, digit in enumerate(digits):
        if digit != "0":
            rest = len(digits) - i - 1
            lower = "0" if digit == "1" else f"[0-{int(digit) - 1}]"
            alternatives.append(digits[:i] + lower + (rf"\d{{{rest}}}" if rest else ""))
    return "|".join([*alternatives, digits])


_PART = at_most(STREAM_ID_PART_MAX)
STREAM_ID_PATTERN = f"^(?:{_PART})-(?:{_PART})$"


def stream_id(value: str | None) -> str | None:
    """A Redis stream id is two unsigned 64-bit numbers; written without leading zeros."""
    if value is None:
        return None
    parts = [int(part) for part in value.split("-")]
    if any(part > STREAM_ID_PART_MAX for part in parts):
        raise PydanticCustomError(
            "stream_id",
            "each part of a line id is at most {highest}",
            {"highest": STREAM_ID_PART_MAX},
        )
    return "-".join(map(str, parts))


def _lifecycle(result: LifecycleResult) -> LifecycleResponse:
    return LifecycleResponse.model_validate(result)


@router.post(
    "/{server_id}/start",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems({409: f"{STATE}, or a custom server has no jar yet"}),
)
async def start_server(server_id: uuid.UUID, actor: Writer, bus: BusDep) -> LifecycleResponse:
    return _lifecycle(await bus.handle(StartServer(actor=actor, server_id=server_id)))


@router.post(
    "/{server_id}/stop", status_code=status.HTTP_202_ACCEPTED, responses=problems({409: STATE})
)
async def stop_server(server_id: uuid.UUID, actor: Writer, bus: BusDep) -> LifecycleResponse:
    return _lifecycle(await bus.handle(StopServer(actor=actor, server_id=server_id)))


@router.post(
    "/{server_id}/kill", status_code=status.HTTP_202_ACCEPTED, responses=problems({409: STATE})
)
async def kill_server(server_id: uuid.UUID, actor: Writer, bus: BusDep) -> LifecycleResponse:
    return _lifecycle(await bus.handle(StopServer(actor=actor, server_id=server_id, kill=True)))


@router.post(
    "/{server_id}/restart", status_code=status.HTTP_202_ACCEPTED, responses=problems({409: STATE})
)
async def restart_server(server_id: uuid.UUID, actor: Writer, bus: BusDep) -> LifecycleResponse:
    return _lifecycle(await bus.handle(RestartServer(actor=actor, server_id=server_id)))


@router.get("/{server_id}/status")
async def server_status(server_id: uuid.UUID, actor: Reader, bus: BusDep) -> StatusResponse:
    view = await bus.handle(GetServerStatus(actor=actor, server_id=server_id))
    return StatusResponse(
        server_id=view.server_id,
        state=view.state,
        status_message=view.status_message,
        restart_required=view.restart_required,
        started_at=view.started_at,
        live=RuntimeResponse.model_validate(view.runtime) if view.runtime else None,
    )


@router.post(
    "/{server_id}/console",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(user_rate_limit("console"))],
    summary="Send one console command (audited); its output arrives on the console WebSocket",
    responses=problems(
        {
            403: "the console policy refuses the command, or you lack server:console",
            409: "the server is not running",
            503: "the server's node is offline",
        }
    ),
)
async def console_command(
    server_id: uuid.UUID, body: ConsoleRequest, actor: Console, bus: BusDep
) -> ConsoleAccepted:
    sent = await bus.handle(
        SendConsoleCommand(actor=actor, server_id=server_id, command=body.command)
    )
    return ConsoleAccepted(command=sent)


@router.get("/{server_id}/logs", summary="Console output, newest first; page with `before`")
async def console_log(
    server_id: uuid.UUID,
    actor: Reader,
    bus: BusDep,
    before: Annotated[
        str | None,
        Query(
            max_length=41,
            pattern=r"^\d{1,20}-\d{1,20}$",
            json_schema_extra={"pattern": STREAM_ID_PATTERN},  # stream_id refuses the rest
            description="a console line id from next_before",
        ),
        AfterValidator(stream_id),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ConsolePage:
    entries = await bus.handle(
        GetConsoleLog(actor=actor, server_id=server_id, before=before, limit=limit)
    )
    items = [ConsoleLineResponse(id=e.id, line=e.line, at=e.at) for e in entries]
    return ConsolePage(items=items, next_before=items[-1].id if len(items) == limit else None)


@versions_router.get(
    "/{server_type}",
    summary="Installable versions of a server type (loader versions for fabric, forge, neoforge)",
    responses=problems({502: UPSTREAM}),
)
async def list_versions(
    server_type: ServerType,
    actor: Reader,
    bus: BusDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[VersionResponse]:
    versions = await bus.handle(ListVersions(actor=actor, server_type=server_type, limit=limit))
    return [
        VersionResponse(
            server_type=v.server_type,
            version=v.version,
            kind=v.kind,
            released_at=v.released_at,
            loader_versions=list(v.loader_versions),
            recommended_loader=v.recommended_loader,
        )
        for v in versions
    ]
