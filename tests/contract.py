"""The API contract run's stack: a real uvicorn in a thread, an admin, and things to name in paths.

Generated path ids almost never exist, so every other request of an operation names real ones:
kept ones (a server with a jar, a file, a group with a player, a backup, a schedule, a second
user), or for operations that destroy or lock what they touch, ones made for that request.
"""

from __future__ import annotations

import asyncio
import io
import socket
import tarfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from redis.asyncio import Redis

from app.settings import Settings
from tests.agent import advertise, running_agent
from tests.conftest import PASSWORD
from tests.upstream import VANILLA_JAR


def closed_port() -> int:
    """A loopback port nothing listens on: connections to it are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_in_thread(app: FastAPI, settings: Settings) -> Iterator[str]:
    """The API on a real uvicorn, with node `local` online: its agent served on the same loop.

    The listening socket is bound here and handed to uvicorn: a port picked, closed and bound
    again later can be taken in between (an outgoing connection of the other test worker)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(app, log_level="warning")
    server = uvicorn.Server(config)

    async def serve() -> None:
        async with running_agent(settings) as agent_url:
            redis = Redis.from_url(settings.require_redis_url())
            try:
                await advertise(redis, settings, "local", agent_url)
            finally:
                await redis.aclose()
            await server.serve(sockets=[sock])

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def world_archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = b"motd=contract\n"
        info = tarfile.TarInfo("server.properties")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Seeds:
    """Real things for path parameters, made through the API as an admin."""

    def __init__(self, url: str, *, admin: str = "admin", register: bool = True) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)
        self.admin = admin
        self.made: Counter[str] = Counter()
        if register:
            self.http.post("/api/v2/auth/register", json=_user(admin)).raise_for_status()
        self.headers = {"Authorization": f"Bearer {self.fresh_token()}"}
        member = self._json("POST", "/api/v2/auth/register", json=_user("member"))
        self._json("PATCH", f"/api/v2/users/{member['id']}/approve")
        server_id = self.server(jar=True)
        group = self.group_with_player(server_id=server_id)
        self.kept: dict[str, Any] = {
            "user_id": member["id"],
            **group,
            **self.file(server_id=server_id),
            "backup_id": self.backup(server_id=server_id),
            "schedule_id": self.schedule(server_id=server_id),
            "webhook_id": self.webhook(),
            "version": 1,
            "name": "local",  # the node the contract run's agent serves
        }

    def fresh_token(self) -> str:
        answer = self.http.post(
            "/api/v2/auth/login", json={"username": self.admin, "password": PASSWORD}
        )
        answer.raise_for_status()
        return str(answer.json()["access_token"])

    def _json(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Any:
        answer = self.http.request(
            method, path, headers={**self.headers, **(headers or {})}, **kwargs
        )
        assert answer.is_success, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json() if answer.content else None

    def server(self, *, jar: bool = False) -> str:
        self.made["server"] += 1
        body = {
            "name": f"contract-{self.made['server']}",
            "server_type": "custom",
            "version": "1.21.4",
            "memory_mb": 512,
            "eula_accepted": True,
        }
        # An earlier operation may have cordoned the run's one node (PATCH /nodes/{name}).
        self._json("PATCH", "/api/v2/nodes/local", json={"cordoned": False})
        server_id = str(self._json("POST", "/api/v2/servers/", json=body)["id"])
        if jar:
            files = {"file": ("server.jar", VANILLA_JAR, "application/java-archive")}
            self._json("PUT", f"/api/v2/servers/{server_id}/jar", files=files)
        return server_id

    def group_with_player(self, *, server_id: str | None = None) -> dict[str, str]:
        self.made["group"] += 1
        body = {"name": f"ops-{self.made['group']}", "group_type": "op"}
        group_id = self._json("POST", "/api/v2/groups/", json=body)["id"]
        player = self._json(
            "POST", f"/api/v2/groups/{group_id}/players", json={"name": "Alice", "mode": "offline"}
        )
        server_id = server_id or self.server()
        self._json("POST", f"/api/v2/groups/{group_id}/servers/{server_id}")
        return {"group_id": group_id, "player_id": player["id"], "server_id": server_id}

    def file(self, *, server_id: str | None = None) -> dict[str, str]:
        server_id = server_id or self.server()
        self._json(
            "PUT",
            f"/api/v2/servers/{server_id}/files/notes.txt",
            json={"content": "kept by the contract run\n"},
            headers={"If-None-Match": "*"},
        )
        return {"server_id": server_id, "file_path": "notes.txt"}

    def backup(self, *, server_id: str | None = None) -> str:
        files = {"file": ("world.tar.gz", world_archive(), "application/gzip")}
        path = f"/api/v2/servers/{server_id or self.server()}/backups/upload"
        return str(self._json("POST", path, files=files)["id"])

    def schedule(self, *, server_id: str | None = None) -> str:
        path = f"/api/v2/servers/{server_id or self.server()}/schedules"
        return str(self._json("POST", path, json={"cron_expression": "0 3 * * *"})["id"])

    def webhook(self) -> str:
        body = {"url": "https://93.184.215.14/contract", "event_types": ["*"]}
        return str(self._json("POST", "/api/v2/webhooks/", json=body)["id"])


def _user(name: str) -> dict[str, str]:
    return {"username": name, "email": f"{name}@example.com", "password": PASSWORD}


# Operations that destroy or lock what they name get things of their own for each request.
FRESH: dict[str, Callable[[Seeds], dict[str, Any]]] = {
    "DELETE /api/v2/servers/{server_id}": lambda s: {"server_id": s.server()},
    "POST /api/v2/servers/{server_id}/backups": lambda s: {"server_id": s.server()},
    "POST /api/v2/servers/{server_id}/backups/upload": lambda s: {"server_id": s.server()},
    "DELETE /api/v2/groups/{group_id}": lambda s: {"group_id": s.group_with_player()["group_id"]},
    "DELETE /api/v2/groups/{group_id}/players/{player_id}": lambda s: s.group_with_player(),
    "DELETE /api/v2/groups/{group_id}/servers/{server_id}": lambda s: s.group_with_player(),
    "DELETE /api/v2/backups/{backup_id}": lambda s: {"backup_id": s.backup()},
    "POST /api/v2/backups/{backup_id}/restore": lambda s: {"backup_id": s.backup()},
    "DELETE /api/v2/schedules/{schedule_id}": lambda s: {"schedule_id": s.schedule()},
    "DELETE /api/v2/webhooks/{webhook_id}": lambda s: {"webhook_id": s.webhook()},
    "DELETE /api/v2/servers/{server_id}/files/{file_path}": lambda s: s.file(),
    "POST /api/v2/servers/{server_id}/files/{file_path}/move": lambda s: s.file(),
}
