"""The servers routes of a node's agent: a custom jar streamed into this node's jar cache.

The API reaches them through `AgentJarStore`; the cache checks the jar (size, zip, Main-Class)
as it would for a download, and keeps it by SHA-256 where the supervisor finds it.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request

from app.servers.infrastructure.jars import JarCache
from app.shared.agent import NodeTokens, guard

PREFIX = "/v1/servers/{server_id}"


def agent_router(jars: JarCache, tokens: NodeTokens, node: str) -> APIRouter:
    router = APIRouter(prefix=PREFIX)

    @router.put("/jar", dependencies=[Depends(guard(tokens, node, "servers.jar"))])
    async def store_jar(server_id: uuid.UUID, request: Request) -> dict[str, str | int]:
        sha256, size = await jars.store_upload(request.stream())
        return {"sha256": sha256, "size": size}

    return router
