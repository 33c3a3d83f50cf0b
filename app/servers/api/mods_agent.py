"""The mods routes of a node's agent: list, install (download, verify, copy) and change the jars
of a server's mods/ or plugins/. The API reaches them through `AgentModFiles`."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from app.servers.domain.mods import MAX_PLAN, ModFile
from app.servers.infrastructure.modfiles import NodeModFiles
from app.shared.agent import NodeTokens, guard

PREFIX = "/v1/servers/{server_id}/mods"
Directory = Literal["mods", "plugins"]


class WireFile(BaseModel):
    url: str = Field(max_length=2000)
    file_name: str = Field(max_length=200)
    size: int = Field(ge=0, le=2**40)
    sha512: str = Field(pattern=r"^[0-9a-f]{128}$")


class InstallBody(BaseModel):
    directory: Directory
    files: list[WireFile] = Field(max_length=MAX_PLAN)
    replace: list[Annotated[str, Field(max_length=200)]] = Field(default=[], max_length=MAX_PLAN)


class ChangeBody(BaseModel):
    directory: Directory
    file_name: str = Field(max_length=200)
    action: Literal["disable", "enable", "remove"]


def mods_agent_router(files: NodeModFiles, tokens: NodeTokens, node: str) -> APIRouter:
    router = APIRouter(prefix=PREFIX)

    def grant(op: str) -> Any:
        return Depends(guard(tokens, node, f"servers.{op}"))

    @router.get("", dependencies=[grant("mods-list")])
    async def list_jars(server_id: uuid.UUID, directory: Directory) -> list[dict[str, Any]]:
        jars = await asyncio.to_thread(files.list, server_id, directory)
        return [
            {"file_name": j.file_name, "enabled": j.enabled, "size": j.size, "sha512": j.sha512}
            for j in jars
        ]

    @router.post("/install", status_code=204, dependencies=[grant("mods-install")])
    async def install(server_id: uuid.UUID, body: InstallBody) -> None:
        wanted = [ModFile(**f.model_dump()) for f in body.files]
        await files.install(server_id, body.directory, wanted, body.replace)

    @router.post("/change", dependencies=[grant("mods-change")])
    async def change(server_id: uuid.UUID, body: ChangeBody) -> dict[str, str]:
        name = await asyncio.to_thread(
            files.change, server_id, body.directory, body.file_name, body.action
        )
        return {"file_name": name}

    return router
