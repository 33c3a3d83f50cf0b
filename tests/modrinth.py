"""A local stand-in for Modrinth's API v2, serving recorded-shape answers (search, project,
project versions, version, version_files, version_files/update) and small stand-in jars."""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.upstream import build_jar


def plugin_jar(name: str) -> bytes:
    return build_jar(main_class=None, filler=len(name) * 7 + sum(map(ord, name)) % 97)


class FakeModrinth:
    def __init__(self) -> None:
        self.projects: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, dict[str, Any]] = {}
        self.blobs: dict[str, bytes] = {}
        self.hits: Counter[str] = Counter()
        self.user_agents: set[str] = set()
        self.rate_limited = False
        self.down = False
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://127.0.0.1:{self.server.server_port}"

    def project(
        self, pid: str, slug: str, *, client_side: str = "optional", server_side: str = "required"
    ) -> None:
        self.projects[pid] = {
            "id": pid,
            "slug": slug,
            "title": slug.replace("-", " ").title(),
            "description": f"{slug} for tests",
            "client_side": client_side,
            "server_side": server_side,
            "downloads": 10,
            "loaders": ["paper"],
            "game_versions": ["1.21.1"],
        }

    def version(
        self,
        vid: str,
        pid: str,
        number: str,
        *,
        deps: list[dict[str, Any]] | None = None,
        loaders: tuple[str, ...] = ("paper",),
        games: tuple[str, ...] = ("1.21.1",),
        lie_about_hash: bool = False,
    ) -> bytes:
        content = plugin_jar(vid)
        name = f"{self.projects[pid]['slug']}-{number}.jar"
        sha512 = hashlib.sha512(b"other" if lie_about_hash else content).hexdigest()
        self.blobs[f"/data/{pid}/{vid}/{name}"] = content
        self.versions[vid] = {
            "id": vid,
            "project_id": pid,
            "name": f"{self.projects[pid]['title']} {number}",
            "version_number": number,
            "version_type": "release",
            "loaders": list(loaders),
            "game_versions": list(games),
            "dependencies": deps or [],
            "files": [
                {
                    "url": f"{self.base}/data/{pid}/{vid}/{name}",
                    "filename": name,
                    "primary": True,
                    "size": len(content),
                    "hashes": {"sha1": hashlib.sha1(content).hexdigest(), "sha512": sha512},
                }
            ],
        }
        return content

    def _by_ref(self, ref: str) -> dict[str, Any] | None:
        return self.projects.get(ref) or next(
            (p for p in self.projects.values() if p["slug"] == ref), None
        )

    def _by_hash(self, sha512: str) -> dict[str, Any] | None:
        return next(
            (v for v in self.versions.values() if v["files"][0]["hashes"]["sha512"] == sha512),
            None,
        )

    def _project_versions(self, pid: str, loaders: list[str], games: list[str]) -> list[Any]:
        found = [
            v
            for v in self.versions.values()
            if v["project_id"] == pid
            and set(v["loaders"]) & set(loaders or v["loaders"])
            and set(v["game_versions"]) & set(games or v["game_versions"])
        ]
        return list(reversed(found))  # newest first

    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        url = urllib.parse.urlsplit(path)
        query = urllib.parse.parse_qs(url.query)
        parts = url.path.strip("/").split("/")
        if method == "GET" and parts[:1] == ["search"]:
            hits = [{"project_id": p["id"], **p} for p in self.projects.values()]
            return 200, {"hits": hits, "offset": 0, "limit": 20, "total_hits": len(hits)}
        if method == "GET" and parts[:1] == ["project"] and len(parts) == 2:
            found = self._by_ref(parts[1])
            return (200, found) if found else (404, {"error": "not_found"})
        if method == "GET" and parts[:1] == ["project"] and parts[2:] == ["version"]:
            found = self._by_ref(parts[1])
            if found is None:
                return 404, {"error": "not_found"}
            loaders = json.loads(query.get("loaders", ["[]"])[0])
            games = json.loads(query.get("game_versions", ["[]"])[0])
            return 200, self._project_versions(found["id"], loaders, games)
        if method == "GET" and parts[:1] == ["version"] and len(parts) == 2:
            found = self.versions.get(parts[1])
            return (200, found) if found else (404, {"error": "not_found"})
        if method == "POST" and url.path == "/version_files":
            return 200, {h: v for h in body["hashes"] if (v := self._by_hash(h))}
        if method == "POST" and url.path == "/version_files/update":
            newer = {}
            for sha in body["hashes"]:
                if (current := self._by_hash(sha)) is not None:
                    listed = self._project_versions(
                        current["project_id"], body["loaders"], body["game_versions"]
                    )
                    if listed:
                        newer[sha] = listed[0]
            return 200, newer
        return 404, {"error": "not_found"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _serve(self, method: str) -> None:
                fake.hits[f"{method} {self.path.split('?')[0]}"] += 1
                fake.user_agents.add(self.headers.get("User-Agent", ""))
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self.path in fake.blobs:
                    self._reply(200, fake.blobs[self.path], {})
                    return
                if fake.rate_limited:
                    headers = {"X-Ratelimit-Reset": "42", "X-Ratelimit-Remaining": "0"}
                    self._reply(429, b'{"error":"ratelimited"}', headers)
                    return
                if fake.down:
                    self._reply(502, b"<html>bad gateway</html>", {})
                    return
                status, document = fake.answer(method, self.path, json.loads(raw or b"null"))
                self._reply(status, json.dumps(document).encode(), {})

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@contextmanager
def serving() -> Iterator[FakeModrinth]:
    fake = FakeModrinth()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
