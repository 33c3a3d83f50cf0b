"""The servers routes of a node's agent: custom jars in this node's jar cache, and the trees of
servers moving off or onto this node.

The API reaches them through `AgentJarStore` and `AgentServerTrees`; the cache checks an
uploaded jar (size, zip, Main-Class) as it would a download, and keeps it by SHA-256 where the
supervisor finds it. A tree arrives staged and becomes the server's directory only when the API
commits it, after comparing the digests of both nodes.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, StreamingResponse

from app.servers.infrastructure.jars import JarCache
from app.servers.infrastructure.trees import NodeTrees
from app.shared.agent import NodeTokens, guard
from app.shared.domain import NotFound

PREFIX = "/v1/servers/{server_id}"
Sha256 = Annotated[str, Query(pattern=r"^[0-9a-f]{64}$")]


def agent_router(jars: JarCache, trees: NodeTrees, tokens: NodeTokens, node: str) -> APIRouter:
    router = APIRouter(prefix=PREFIX)

    def grant(op: str) -> Any:
        return Depends(guard(tokens, node, f"servers.{op}"))

    @router.put("/jar", dependencies=[grant("jar")])
    async def store_jar(server_id: uuid.UUID, request: Request) -> dict[str, str | int]:
        sha256, size = await jars.store_upload(request.stream())
        return {"sha256": sha256, "size": size}

    @router.get("/jar", dependencies=[grant("jar-read")])
    async def read_jar(server_id: uuid.UUID, sha256: Sha256) -> FileResponse:
        path = jars.path_for(sha256)
        if path is None:
            raise NotFound(f"node {node} has no jar {sha256} in its cache", node=node)
        return FileResponse(path, media_type="application/java-archive")

    @router.get("/tree", dependencies=[grant("tree-read")])
    async def read_tree(server_id: uuid.UUID) -> StreamingResponse:
        return StreamingResponse(trees.send(server_id), media_type="application/x-tar")

    @router.get("/tree/digest", dependencies=[grant("tree-digest")])
    async def tree_digest(server_id: uuid.UUID) -> dict[str, str]:
        return {"digest": await trees.digest(server_id)}

    @router.put("/tree/incoming", dependencies=[grant("tree-write")])
    async def write_tree(server_id: uuid.UUID, request: Request) -> dict[str, str]:
        return {"digest": await trees.receive(server_id, request.stream())}

    @router.post("/tree/incoming/commit", status_code=204, dependencies=[grant("tree-commit")])
    async def commit_tree(server_id: uuid.UUID) -> None:
        await trees.commit(server_id)

    @router.post("/tree/discard", status_code=204, dependencies=[grant("tree-discard")])
    async def discard_tree(server_id: uuid.UUID, live: bool = False) -> None:
        await trees.discard(server_id, live=live)

    return router
