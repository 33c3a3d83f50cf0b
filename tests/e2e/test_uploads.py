"""Uploads from real clients over TCP to a real uvicorn: curl and httpx send the boundary, the
part headers and the data in one piece, and an unauthorized body is never read."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import tarfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

pytestmark = pytest.mark.e2e

BOUNDARY = "e2e-upload-boundary"


def one_part(filename: str, data: bytes) -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


async def new_server(dashboard) -> str:
    created = await dashboard.http.post(
        "/api/v2/servers/",
        json={"name": "uploads", "server_type": "custom", "version": "1.20.4", "memory_mb": 512},
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def curl(*args: str) -> tuple[int, str]:
    done = subprocess.run(
        ["curl", "-sS", "-o", "/dev/stderr", "-w", "%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(done.stdout), done.stderr


async def test_file_manager_upload_from_curl_and_httpx(
    dashboard, start_worker, stack_env, tmp_path
):
    start_worker()
    sid = await new_server(dashboard)
    server_dir = Path(stack_env["MCDASH_DATA_DIR"]) / "servers" / sid
    url = f"{dashboard.url}/api/v2/servers/{sid}/files/upload?path=config"
    auth = f"Authorization: Bearer {dashboard.token}"

    source = tmp_path / "from-curl.yml"
    source.write_bytes(b"curl: true\n")
    status, body = curl("-F", f"file=@{source}", "-H", auth, url)
    assert status == 201, body
    assert (server_dir / "config" / "from-curl.yml").read_bytes() == b"curl: true\n"

    async with httpx.AsyncClient(timeout=30) as http:
        headers = {"Authorization": f"Bearer {dashboard.token}"}
        form = await http.post(
            url, files={"file": ("from-httpx.yml", b"httpx: form\n")}, headers=headers
        )
        assert form.status_code == 201, form.text
        whole = await http.post(
            url,
            content=one_part("one-chunk.yml", b"httpx: one chunk\n"),
            headers={**headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
        assert whole.status_code == 201, whole.text
    assert (server_dir / "config" / "from-httpx.yml").read_bytes() == b"httpx: form\n"
    assert (server_dir / "config" / "one-chunk.yml").read_bytes() == b"httpx: one chunk\n"


async def test_backup_and_jar_uploads_from_curl(dashboard, start_worker, fake_jar, tmp_path):
    start_worker()
    sid = await new_server(dashboard)
    auth = f"Authorization: Bearer {dashboard.token}"
    status, body = curl(
        "-X",
        "PUT",
        "-F",
        f"file=@{fake_jar}",
        "-H",
        auth,
        f"{dashboard.url}/api/v2/servers/{sid}/jar",
    )
    assert status == 200, body
    world = tmp_path / "world.txt"
    world.write_text("level")
    archive = tmp_path / "world.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(world, arcname="world/level.dat")
    status, body = curl(
        "-F", f"file=@{archive}", "-H", auth, f"{dashboard.url}/api/v2/servers/{sid}/backups/upload"
    )
    assert status == 201, body


@pytest.mark.parametrize(
    ("route", "declared"),
    [
        pytest.param("backups/upload", 1024**3, id="anonymous-backup-upload-1gib-over-tcp"),
        pytest.param("files/upload", 500 * 1024**2, id="anonymous-file-upload-500mib-over-tcp"),
    ],
)
async def test_an_anonymous_big_upload_is_answered_401_after_its_headers(
    live_server, route, declared
):
    """Over a raw socket: the API answers while almost all of the declared body is unsent."""
    address = urlsplit(live_server.url)
    head = (
        f"POST /api/v2/servers/{uuid.uuid4()}/{route} HTTP/1.1\r\n"
        f"Host: {address.netloc}\r\nContent-Length: {declared}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n"
    ).encode()

    def exchange() -> bytes:
        with socket.create_connection((address.hostname, address.port), timeout=20) as sock:
            sock.sendall(head + one_part("big.bin", b"")[:200])
            answer = b""
            while b"\r\n\r\n" not in answer:
                piece = sock.recv(65536)
                if not piece:
                    break
                answer += piece
            return answer

    answer = await asyncio.to_thread(exchange)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"application/problem+json" in answer
