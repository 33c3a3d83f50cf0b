"""Body limits: nothing is read before authentication, Content-Length is refused early, streamed
bodies are cut at the route's limit, and a cut upload leaves nothing on disk."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import tarfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.main import create_app
from tests.agent import in_process
from tests.conftest import admin_owner_other
from tests.integration.test_auth_api import assert_problem
from tests.upstream import VANILLA_JAR

BOUNDARY = "mcdash-test-boundary"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
CHUNK = 64 * 1024
MIB = 1024 * 1024


class Body:
    """A request body produced on demand; `pulled` is how much the app asked for."""

    def __init__(self, total: int | None, *, prefix: bytes = b"", fill: bytes = b"a") -> None:
        self.total = total
        self.prefix = prefix
        self.fill = fill
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunk = self.prefix + self.fill * (CHUNK - len(self.prefix))
        while self.total is None or self.pulled < self.total:
            self.pulled += len(chunk)
            yield chunk
            chunk = self.fill * CHUNK


def file_part(filename: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


def one_file(filename: str, data: bytes) -> bytes:
    return file_part(filename) + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def files_under(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def small_archive() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo("world/level.dat")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"level"))
    return out.getvalue()


class Stack:
    def __init__(self, http: httpx.AsyncClient, settings, users: dict, sid: str) -> None:
        self.http = http
        self.settings = settings
        self.users = users
        self.sid = sid

    @property
    def data_dir(self) -> Path:
        return self.settings.resolved_data_dir

    def routes(self, sid: str | None = None) -> dict[str, tuple[str, str]]:
        sid = sid or self.sid
        return {
            "backup-upload": ("POST", f"/api/v2/servers/{sid}/backups/upload"),
            "jar-upload": ("PUT", f"/api/v2/servers/{sid}/jar"),
            "file-upload": ("POST", f"/api/v2/servers/{sid}/files/upload?path=config"),
        }


@contextlib.asynccontextmanager
async def running(settings, **overrides) -> AsyncIterator[Stack]:
    configured = settings.model_copy(update=overrides)
    app = create_app(configured)
    async with in_process(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            users, _ = await admin_owner_other(http)
            created = await http.post(
                "/api/v2/servers/",
                headers=users["owner"],
                json={"name": "lobby", "server_type": "custom", "version": "1.0", "memory_mb": 512},
            )
            assert created.status_code == 201, created.text
            yield Stack(http, configured, users, created.json()["id"])


ROUTES = ["backup-upload", "jar-upload", "file-upload"]


@pytest.mark.parametrize("route", ROUTES, ids=[f"anonymous-{r}-1gib-declared" for r in ROUTES])
async def test_anonymous_uploads_are_refused_before_a_byte_is_read(settings, clean, route):
    async with running(
        settings, max_jar_upload_bytes=2 * 1024**3, file_upload_max_bytes=2 * 1024**3
    ) as stack:
        method, url = stack.routes(str(uuid.uuid4()))[route]
        body = Body(1024**3, prefix=file_part("big.bin"))
        response = await stack.http.request(
            method,
            url,
            content=body,
            headers={**MULTIPART, "Content-Length": str(1024**3)},
        )
        assert_problem(response, 401)
        assert body.pulled == 0
        assert not (stack.data_dir / "tmp").exists()


LIMITS = {"backup_max_upload_bytes": 2 * MIB, "max_jar_upload_bytes": 2 * MIB}


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r}-declared-over-its-limit" for r in ROUTES])
async def test_declared_oversize_uploads_are_413_before_reading(settings, clean, route):
    async with running(settings, file_upload_max_bytes=2 * MIB, **LIMITS) as stack:
        method, url = stack.routes()[route]
        body = Body(3 * MIB, prefix=file_part("big.bin"))
        response = await stack.http.request(
            method,
            url,
            content=body,
            headers={**MULTIPART, **stack.users["admin"], "Content-Length": str(3 * MIB)},
        )
        problem = assert_problem(response, 413, "payload-too-large")
        assert problem["limit"] == 2 * MIB + 64 * 1024
        assert body.pulled == 0


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r}-chunked-over-its-limit" for r in ROUTES])
async def test_streamed_oversize_uploads_stop_at_the_limit_and_leave_nothing(
    settings, clean, route
):
    async with running(settings, file_upload_max_bytes=2 * MIB, **LIMITS) as stack:
        (stack.data_dir / "servers" / stack.sid / "config").mkdir(parents=True)
        before = files_under(stack.data_dir)
        method, url = stack.routes()[route]
        body = Body(None, prefix=file_part("big.bin"), fill=b"\x1f")
        response = await stack.http.request(
            method, url, content=body, headers={**MULTIPART, **stack.users["admin"]}
        )
        assert_problem(response, 413, "payload-too-large")
        assert body.pulled <= 2 * MIB + 64 * 1024 + CHUNK
        # The node notices the cut stream as soon as the API drops its connection to it.
        for _ in range(50):
            if files_under(stack.data_dir) == before:
                break
            await asyncio.sleep(0.1)
        assert files_under(stack.data_dir) == before


async def test_uploads_to_a_server_you_cannot_see_are_404_before_reading(settings, clean):
    async with running(settings) as stack:
        for route in ("backup-upload", "file-upload"):
            method, url = stack.routes()[route]
            body = Body(MIB, prefix=file_part("x.bin"))
            response = await stack.http.request(
                method,
                url,
                content=body,
                headers={**MULTIPART, **stack.users["other"], "Content-Length": str(MIB)},
            )
            assert response.status_code == 404, (route, response.text)
            assert body.pulled == 0, route


async def test_single_chunk_uploads_work_on_every_route(settings, clean):
    async with running(settings) as stack:
        routes = stack.routes()
        owner, admin = stack.users["owner"], stack.users["admin"]
        method, url = routes["backup-upload"]
        backup = await stack.http.request(
            method,
            url,
            content=one_file("w.tar.gz", small_archive()),
            headers={**MULTIPART, **owner},
        )
        assert backup.status_code == 201, backup.text
        assert backup.json()["status"] == "completed"
        method, url = routes["jar-upload"]
        jar = await stack.http.request(
            method, url, content=one_file("server.jar", VANILLA_JAR), headers={**MULTIPART, **admin}
        )
        assert jar.status_code == 200, jar.text
        assert jar.json()["size"] == len(VANILLA_JAR)
        method, url = routes["file-upload"]
        uploaded = await stack.http.request(
            method, url, content=one_file("a.yml", b"a: 1\n"), headers={**MULTIPART, **owner}
        )
        assert uploaded.status_code == 201, uploaded.text
        assert (stack.data_dir / "servers" / stack.sid / "config" / "a.yml").read_bytes() == (
            b"a: 1\n"
        )
        missing = await stack.http.request(
            method, url, content=f"--{BOUNDARY}--\r\n".encode(), headers={**MULTIPART, **owner}
        )
        assert_problem(missing, 400, "malformed-upload")


async def test_upload_routes_document_a_multipart_body_with_a_binary_file(settings, clean):
    async with running(settings) as stack:
        spec = (await stack.http.get("/openapi.json")).json()
        for path, method in (
            ("/api/v2/servers/{server_id}/backups/upload", "post"),
            ("/api/v2/servers/{server_id}/jar", "put"),
            ("/api/v2/servers/{server_id}/files/upload", "post"),
        ):
            content = spec["paths"][path][method]["requestBody"]["content"]
            schema = content["multipart/form-data"]["schema"]
            file = schema["properties"]["file"]
            assert (file.get("items") or file)["format"] == "binary", path


# M1: every route has a body limit.


@pytest.mark.parametrize(
    ("declared", "pulled_at_most"),
    [
        pytest.param(300 * MIB, 0, id="anonymous-login-300mib-declared"),
        pytest.param(None, MIB + CHUNK, id="anonymous-login-chunked-without-end"),
    ],
)
async def test_oversize_json_is_refused_before_parsing(settings, clean, declared, pulled_at_most):
    async with running(settings) as stack:
        body = Body(declared, prefix=b'{"username": "admin1", "password": "', fill=b"x")
        headers = {"Content-Type": "application/json"}
        if declared is not None:
            headers["Content-Length"] = str(declared)
        response = await stack.http.post("/api/v2/auth/login", content=body, headers=headers)
        problem = assert_problem(response, 413, "payload-too-large")
        assert problem["limit"] == settings.max_body_bytes == MIB
        assert body.pulled <= pulled_at_most
        assert "request_id" in problem
        ok = await stack.http.post(
            "/api/v2/auth/login", json={"username": "admin1", "password": "Correct-Horse-7"}
        )
        assert ok.status_code == 200


async def test_the_body_limit_is_a_setting(settings, clean):
    async with running(settings, max_body_bytes=4096) as stack:
        big = {"username": "admin1", "password": "x" * 5000}
        assert_problem(await stack.http.post("/api/v2/auth/login", json=big), 413)
        group = await stack.http.post(
            "/api/v2/groups/",
            json={"name": "g" * 10, "x": "y" * 5000},
            headers=stack.users["owner"],
        )
        assert_problem(group, 413)


async def test_a_file_edit_larger_than_the_default_body_limit_still_saves(settings, clean):
    async with running(settings) as stack:
        content = "key: value\n" * 90_000  # 990 KB of text, ~1.1 MB of JSON: over 1 MiB
        body = json.dumps({"content": content}).encode()
        assert len(body) > settings.max_body_bytes
        saved = await stack.http.put(
            f"/api/v2/servers/{stack.sid}/files/config/big.yml",
            content=body,
            headers={"Content-Type": "application/json", **stack.users["owner"]},
        )
        assert saved.status_code == 201, saved.text
        path = stack.data_dir / "servers" / stack.sid / "config" / "big.yml"
        assert path.read_text() == content
