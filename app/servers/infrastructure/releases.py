"""Checks a version against the catalogue and a node's Java runtimes before anything is stored."""

from __future__ import annotations

import json

from app.servers.domain.errors import JavaRuntimeMissing
from app.servers.domain.model import ServerType
from app.servers.infrastructure.jars import VersionCatalog, required_java_major
from app.servers.infrastructure.runtime import RedisNodeGateway


class CatalogReleaseCheck:
    def __init__(self, catalog: VersionCatalog, nodes: RedisNodeGateway) -> None:
        self._catalog = catalog
        self._nodes = nodes

    async def check_version(self, server_type: ServerType, version: str) -> None:
        await self._catalog.resolve(server_type.value, version)

    async def check_java(self, node: str, version: str) -> None:
        """Compare with the runtimes the node's worker advertises; unknown when it is offline."""
        info = await self._nodes.node_info(node)
        if not info or "java" not in info:
            return
        required = required_java_major(version)
        runtimes = json.loads(info["java"])
        if any(runtime["major"] >= required for runtime in runtimes):
            return
        installed = ", ".join(f"Java {r['major']} ({r['path']})" for r in runtimes) or "none"
        raise JavaRuntimeMissing(
            f"Minecraft {version} needs Java {required}; node {node} has: {installed}",
            required_java=required,
            installed=[runtime["major"] for runtime in runtimes],
        )
