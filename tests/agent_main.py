"""A node agent alone in its own process, for tests that kill a node midway: it serves the
MCDASH_* settings of its environment on 127.0.0.1:0 and prints its URL on the first line."""

from __future__ import annotations

import asyncio
import sys

import httpx

from app.agent import AgentServer, advertised_url, build_agent, listen_socket
from app.servers import module as servers
from app.settings import Settings


async def main(node: str) -> None:
    settings = Settings()
    sock = listen_socket("127.0.0.1:0")
    async with httpx.AsyncClient() as http:
        agent = build_agent(settings, node, jars=servers.jar_cache(settings, http))
        server = AgentServer(agent, sock, advertised_url(settings, sock))
        server.start()
        print(server.url, flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "local"))
