"""The node agent: a worker's internal HTTP API, through which the API reaches this node's disk
(server directories, the jar cache, local backups). Every context adds its routes from its
module; each request carries a token the API signed for one operation on one server.

It runs on the node runtime's event loop (app/node.py), on MCDASH_NODE_LISTEN, and the worker
advertises where it listens in the node's record.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import structlog
import uvicorn
from fastapi import FastAPI

from app.backups import module as backups
from app.files import module as files
from app.monitoring import module as monitoring
from app.servers import module as servers
from app.servers.infrastructure.jars import JarCache
from app.servers.infrastructure.supervisor import Supervisor
from app.settings import Settings
from app.shared.agent import NodeTokens
from app.shared.problems import install_problem_handlers

log = structlog.get_logger(__name__)


def build_agent(
    settings: Settings, node: str, *, jars: JarCache, supervisor: Supervisor | None = None
) -> FastAPI:
    """The agent's app; what monitoring observes needs the node's `supervisor` (tests may run
    an agent without one)."""
    tokens = NodeTokens(settings.node_key(), ttl=settings.node_token_ttl_seconds)
    agent = FastAPI(title=f"mcdash node {node}", openapi_url=None, docs_url=None, redoc_url=None)
    install_problem_handlers(agent)
    for router in [
        *files.node_routers(settings, tokens, node),
        *servers.node_routers(settings, jars, tokens, node),
        *backups.node_routers(settings, tokens, node),
        *monitoring.node_routers(settings, tokens, node, supervisor),
    ]:
        agent.include_router(router)

    @agent.get("/v1/health")
    async def health() -> dict[str, str]:
        return {"node": node, "status": "ok"}

    return agent


def listen_socket(listen: str) -> socket.socket:
    """Bound now, so a taken address fails the worker's start with a clear message."""
    host, _, port = listen.rpartition(":")
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    # IPPROTO_TCP named, so asyncio sets TCP_NODELAY on each accepted connection: with
    # Nagle on, a response body waited ~40 ms for the ack of its headers.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), int(port)))
    except OSError as exc:
        sock.close()
        raise RuntimeError(
            f"the node agent cannot listen on {listen} (MCDASH_NODE_LISTEN): {exc}"
        ) from exc
    sock.listen(512)
    sock.setblocking(False)
    return sock


def advertised_url(settings: Settings, sock: socket.socket) -> str:
    """MCDASH_NODE_URL, else the address the agent is bound to (its port when 0 was asked)."""
    if settings.node_url:
        return settings.node_url.rstrip("/")
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):  # noqa: S104 - naming the machine, not binding
        host = socket.gethostname()
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


class AgentServer:
    """uvicorn serving the agent on the node's loop, on an already bound socket."""

    def __init__(self, agent: FastAPI, sock: socket.socket, url: str) -> None:
        self.url = url
        self._sock = sock
        config = uvicorn.Config(
            agent,
            log_config=None,
            access_log=False,
            lifespan="off",
            proxy_headers=False,
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        log.info("node_agent_listening", url=self.url)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, timeout=5)
        self._sock.close()
