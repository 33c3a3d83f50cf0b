"""A local stand-in for Mojang's and PaperMC's download APIs, serving recorded answers."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def build_jar(main_class: str | None = "net.minecraft.bundler.Main", filler: int = 0) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as jar:
        manifest = "Manifest-Version: 1.0\r\n"
        if main_class:
            manifest += f"Main-Class: {main_class}\r\n"
        jar.writestr("META-INF/MANIFEST.MF", manifest + "\r\n")
        jar.writestr("net/minecraft/bundler/Main.class", b"\xca\xfe\xba\xbe" + bytes(filler))
    return buffer.getvalue()


VANILLA_JAR = build_jar()
OLD_JAR = build_jar(filler=100)
PAPER_JAR = build_jar("io.papermc.paperclip.Main")
ALPHA_JAR = build_jar("io.papermc.paperclip.Main", filler=10)


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Upstream:
    """Recorded Mojang and PaperMC answers served over real HTTP, counting requests per path."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.hits: Counter[str] = Counter()
        self.user_agents: set[str] = set()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://127.0.0.1:{self.server.server_port}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                upstream.hits[self.path] += 1
                upstream.user_agents.add(self.headers.get("User-Agent", ""))
                status, body = upstream.routes.get(self.path, (404, b'{"error":"not found"}'))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def json(self, path: str, document: object) -> None:
        self.routes[path] = (200, json.dumps(document).encode())

    def serve_recordings(self) -> None:
        base = self.base
        self.json(
            "/mc/game/version_manifest_v2.json",
            {
                "latest": {"release": "1.21.4", "snapshot": "25w02a"},
                "versions": [
                    {
                        "id": "25w02a",
                        "type": "snapshot",
                        "url": f"{base}/v1/packages/c3/25w02a.json",
                        "time": "2025-01-08T13:36:40+00:00",
                        "releaseTime": "2025-01-08T13:24:49+00:00",
                        "sha1": "c3" * 20,
                    },
                    {
                        "id": "1.21.4",
                        "type": "release",
                        "url": f"{base}/v1/packages/a1/1.21.4.json",
                        "time": "2024-12-03T10:24:48+00:00",
                        "releaseTime": "2024-12-03T10:12:57+00:00",
                        "sha1": "a1" * 20,
                    },
                    {
                        "id": "1.20.4",
                        "type": "release",
                        "url": f"{base}/v1/packages/b2/1.20.4.json",
                        "time": "2023-12-07T08:43:21+00:00",
                        "releaseTime": "2023-12-07T08:29:20+00:00",
                        "sha1": "b2" * 20,
                    },
                ],
            },
        )
        self.json(
            "/v1/packages/a1/1.21.4.json",
            {
                "id": "1.21.4",
                "downloads": {
                    "client": {"sha1": "0" * 40, "size": 1, "url": f"{base}/client.jar"},
                    "server": {
                        "sha1": sha1(VANILLA_JAR),
                        "size": len(VANILLA_JAR),
                        "url": f"{base}/v1/objects/1.21.4/server.jar",
                    },
                },
                "javaVersion": {"component": "java-runtime-delta", "majorVersion": 21},
            },
        )
        self.json(
            "/v1/packages/b2/1.20.4.json",
            {
                "id": "1.20.4",
                "downloads": {
                    "server": {
                        "sha1": "0123456789abcdef0123456789abcdef01234567",
                        "size": len(OLD_JAR),
                        "url": f"{base}/v1/objects/1.20.4/server.jar",
                    }
                },
                "javaVersion": {"component": "java-runtime-gamma", "majorVersion": 17},
            },
        )
        self.json(
            "/v1/packages/c3/25w02a.json",
            {"id": "25w02a", "downloads": {"client": {"sha1": "0" * 40, "size": 1, "url": "x"}}},
        )
        self.routes["/v1/objects/1.21.4/server.jar"] = (200, VANILLA_JAR)
        self.routes["/v1/objects/1.20.4/server.jar"] = (200, OLD_JAR)
        self.routes["/v1/objects/broken/server.jar"] = (500, b"internal error")

        self.json(
            "/v3/projects/paper",
            {
                "project": {"id": "paper", "name": "Paper"},
                "versions": {
                    "1.20": ["1.20.6", "1.20.4"],
                    "1.21": ["1.21.4", "1.21.3"],
                },
            },
        )
        self.json(
            "/v3/projects/paper/versions/1.21.4/builds",
            [
                paper_build(base, "1.21.4", 231, "ALPHA", ALPHA_JAR),
                paper_build(base, "1.21.4", 230, "STABLE", PAPER_JAR),
                paper_build(base, "1.21.4", 229, "STABLE", OLD_JAR),
            ],
        )
        self.json(
            "/v3/projects/paper/versions/1.21.3/builds",
            [
                paper_build(base, "1.21.3", 83, "BETA", PAPER_JAR),
                paper_build(base, "1.21.3", 82, "ALPHA", OLD_JAR),
            ],
        )
        self.json("/v3/projects/paper/versions/1.20.4/builds", [])
        for jar in (PAPER_JAR, ALPHA_JAR, OLD_JAR):
            self.routes[f"/paper/{sha256(jar)}.jar"] = (200, jar)


def paper_build(base: str, version: str, build: int, channel: str, jar: bytes) -> dict:
    return {
        "id": build,
        "time": "2025-06-01T12:00:00Z",
        "channel": channel,
        "commits": [],
        "downloads": {
            "server:default": {
                "name": f"paper-{version}-{build}.jar",
                "checksums": {"sha256": sha256(jar)},
                "size": len(jar),
                "url": f"{base}/paper/{sha256(jar)}.jar",
            }
        },
    }


@contextmanager
def serve_upstream() -> Iterator[Upstream]:
    served = Upstream()
    served.serve_recordings()
    thread = threading.Thread(target=served.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield served
    finally:
        served.server.shutdown()
        served.server.server_close()
        thread.join()
