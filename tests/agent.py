"""A real node agent (app/agent.py) served on a free loopback port of the test's own event
loop, for tests that run the API in process with no worker: the API reaches it over HTTP
with signed tokens, as it reaches a worker's agent."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import sys
import time
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI
from redis.asyncio import Redis

from app.agent import AgentServer, advertised_url, build_agent, listen_socket
from app.servers import module as servers
from app.servers.infrastructure.java import discover_runtimes
from app.settings import Settings
from app.shared.nodes import NODE_NAMES, node_key
from app.worker import node_record


@asynccontextmanager
async def running_agent(settings: Settings, node: str = "local") -> AsyncIterator[str]:
    sock = listen_socket("127.0.0.1:0")
    async with httpx.AsyncClient() as http:
        agent = build_agent(settings, node, jars=servers.jar_cache(settings, http))
        server = AgentServer(agent, sock, advertised_url(settings, sock))
        server.start()
        try:
            yield server.url
        finally:
            await server.stop()


@asynccontextmanager
async def in_process(application: FastAPI, node: str = "local") -> AsyncIterator[FastAPI]:
    """The app's lifespan, with `node` online as a worker would make it: a real agent over the
    app's data directory, and the node's record in Redis saying where it listens."""
    async with application.router.lifespan_context(application):
        infra = application.state.container.infra
        async with running_agent(infra.settings, node) as url:
            await advertise(infra.redis, infra.settings, node, url)
            yield application


@functools.cache
def _java(paths: tuple[Path, ...]) -> list[dict[str, object]]:
    """The runtimes a worker would find here (each is asked its version once per session)."""
    return [
        {"major": found.major, "path": str(found.path), "version": found.version}
        for found in discover_runtimes(list(paths))
    ]


async def advertise(redis: Redis, settings: Settings, node: str, url: str) -> None:
    record = {
        **node_record(settings, url=url, java=_java(tuple(settings.java_paths)), isolation={}),
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "last_seen": time.time(),
    }
    await redis.hset(node_key(node), mapping=record)  # type: ignore[arg-type]
    await redis.sadd(NODE_NAMES, node)


@asynccontextmanager
async def agent_process(settings: Settings, node: str = "local") -> AsyncIterator[str]:
    """A real agent in a process of its own (tests/agent_main.py), as a worker's is, on the
    settings' data dir; its URL; killed (-9) on the way out, as a worker dies."""
    env = {
        **os.environ,
        "MCDASH_DATA_DIR": str(settings.resolved_data_dir),
        "MCDASH_DATABASE_URL": settings.database_url or "",
        "MCDASH_REDIS_URL": settings.redis_url or "",
        "MCDASH_FILE_UPLOAD_MAX_BYTES": str(settings.file_upload_max_bytes),
        "MCDASH_FILE_EDIT_MAX_BYTES": str(settings.file_edit_max_bytes),
        "MCDASH_LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.agent_main", node, env=env, stdout=PIPE
    )
    drain: asyncio.Task[bytes] | None = None
    try:
        assert process.stdout is not None
        url = ""
        while not url.startswith("http://"):  # log lines may come first
            line = await asyncio.wait_for(process.stdout.readline(), 30)
            assert line, "the agent exited"
            url = line.decode().strip()
        drain = asyncio.create_task(process.stdout.read())  # its logs, never blocking it
        yield url
    finally:
        if drain is not None:
            drain.cancel()
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
