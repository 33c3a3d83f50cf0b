"""The traversal suite: every escape attempt is refused and nothing outside the server changes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.integration.test_files_api import api  # noqa: F401 - the shared fixture

SENTINEL = "sentinel: must never change\n"


@pytest.fixture
def sentinel(api):  # noqa: F811
    """A file beside the server directory and one in its parent, watched by every case."""
    outside = api.root.parent / "outside.txt"
    outside.write_text(SENTINEL)
    (api.root.parent / "secret-dir").mkdir()
    (api.root.parent / "secret-dir" / "inner.txt").write_text(SENTINEL)
    return api.root.parent


def snapshot(root: Path) -> dict[str, tuple[int, bytes | None]]:
    seen: dict[str, tuple[int, bytes | None]] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            info = full.lstat()
            body = full.read_bytes() if stat.S_ISREG(info.st_mode) else None
            seen[str(full.relative_to(root))] = (info.st_mode, body)
    return seen


async def send_raw(api, method: str, raw_path: str, body: bytes = b"") -> tuple[int, dict]:  # noqa: F811
    """Call the app as uvicorn would for these exact bytes: httpx would normalize `..` away."""
    raw = f"/api/v2/servers/{api.sid}/files/{raw_path}".encode()
    token = api.users["owner"]["Authorization"].encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(raw.decode("ascii")),
        "raw_path": raw,
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"t"),
            (b"authorization", token),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1234),
        "server": ("t", 80),
    }
    sent = [{"type": "http.request", "body": body, "more_body": False}]
    replies: list[dict] = []

    async def receive() -> dict:
        return sent.pop(0) if sent else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        replies.append(message)

    await api.app(scope, receive, send)
    start = next(m for m in replies if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in replies if m["type"] == "http.response.body")
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], {"headers": headers, "body": content}


@pytest.mark.parametrize(
    ("raw_path", "expected"),
    [
        pytest.param("../outside.txt", 400, id="dot-dot"),
        pytest.param("a/../../outside.txt", 400, id="dot-dot-inner"),
        pytest.param("%2e%2e/outside.txt", 400, id="percent-encoded-dot-dot"),
        pytest.param("%2E%2E%2Foutside.txt", 400, id="percent-encoded-dot-dot-slash-upper"),
        pytest.param("..%2foutside.txt", 400, id="dot-dot-encoded-slash"),
        pytest.param("%252e%252e%252foutside.txt", 400, id="double-encoded"),
        pytest.param("..%5coutside.txt", 400, id="encoded-backslash"),
        pytest.param("%2fetc/passwd", 400, id="absolute-etc-passwd"),
        pytest.param("/etc/passwd", 400, id="absolute-double-slash"),
        pytest.param("ops.json%00.txt", 400, id="nul-byte"),
        pytest.param("a" * 300 + ".txt", 400, id="name-300-chars"),
        pytest.param("/".join(["d" * 100] * 50), 400, id="path-5000-chars"),
        pytest.param(".mcdash/console.in", 403, id="control-directory"),
    ],
)
async def test_malformed_paths_are_refused_for_every_verb(api, sentinel, raw_path, expected):  # noqa: F811
    before = snapshot(sentinel)
    body = json.dumps({"content": "pwned"}).encode()
    for method, suffix in (("GET", ""), ("PUT", ""), ("DELETE", ""), ("GET", "/download")):
        status, reply = await send_raw(api, method, raw_path + suffix, body)
        assert status == expected, (method, suffix, reply["body"])
        assert reply["headers"]["content-type"] == "application/problem+json"
    listing = await api.get(params={"path": unquote(raw_path)})
    assert listing.status_code == expected, listing.text
    assert snapshot(sentinel) == before


@pytest.mark.parametrize(
    ("make", "path"),
    [
        pytest.param(
            lambda root: os.symlink("/etc", root / "etc"), "etc/passwd", id="symlink-to-etc"
        ),
        pytest.param(
            lambda root: os.symlink(root.parent / "outside.txt", root / "link.txt"),
            "link.txt",
            id="symlink-to-outside-file",
        ),
        pytest.param(
            lambda root: os.symlink(root.parent / "secret-dir", root / "shared"),
            "shared/inner.txt",
            id="symlinked-directory-outside",
        ),
        pytest.param(
            lambda root: os.symlink("../outside.txt", root / "rel.txt"),
            "rel.txt",
            id="relative-symlink-outside",
        ),
    ],
)
async def test_symlinks_leading_outside_are_forbidden(api, sentinel, make, path):  # noqa: F811
    make(api.root)
    (api.root / "victim.txt").write_text("v")
    before = snapshot(sentinel)
    assert (await api.get(path)).status_code == 403
    assert (await api.get(f"{path}/download")).status_code == 403
    assert (await api.put(path, "pwned")).status_code == 403
    assert (await api.put(path, "pwned", **{"If-Match": '"x"'})).status_code == 403
    assert (await api.http.delete(api.url(path), headers=api.users["owner"])).status_code == 403
    moved = await api.http.post(
        api.url("victim.txt/move"), json={"to": path}, headers=api.users["owner"]
    )
    assert moved.status_code == 403, moved.text
    files = {"file": (Path(path).name, b"pwned", "text/plain")}
    upload = await api.http.post(
        api.url("upload"),
        params={"path": str(Path(path).parent) if "/" in path else ""},
        files=files,
        headers=api.users["owner"],
    )
    assert upload.status_code == 403, upload.text
    assert snapshot(sentinel) == before
    assert Path("/etc/passwd").read_text()  # untouched and still readable


async def test_a_symlink_inside_the_server_is_followed(api):  # noqa: F811
    (api.root / "config").mkdir()
    (api.root / "config" / "real.yml").write_text("a: 1\n")
    os.symlink("config", api.root / "cfg")
    read = await api.get("cfg/real.yml")
    assert read.status_code == 200
    saved = await api.put("cfg/real.yml", "a: 2\n", **{"If-Match": read.headers["etag"]})
    assert saved.status_code == 200
    assert (api.root / "config" / "real.yml").read_text() == "a: 2\n"
    assert (api.root / "cfg").is_symlink()


async def test_fifos_and_devices_are_never_opened(api, sentinel):  # noqa: F811
    os.mkfifo(api.root / "pipe")
    device = api.root / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o600, os.makedev(1, 3))
        names = ["pipe", "null"]
    except PermissionError:
        names = ["pipe"]
    before = snapshot(sentinel)
    for name in names:
        assert (await api.get(name)).status_code == 403, name
        assert (await api.get(f"{name}/download")).status_code == 403, name
        assert (await api.put(name, "x", **{"If-Match": '"x"'})).status_code == 403, name
        assert (await api.http.delete(api.url(name), headers=api.users["owner"])).status_code == 403
    listing = {item["name"]: item["type"] for item in (await api.get()).json()["items"]}
    assert listing["pipe"] == "other"
    assert stat.S_ISFIFO((api.root / "pipe").lstat().st_mode)
    assert snapshot(sentinel) == before


async def test_unicode_names_work_end_to_end(api):  # noqa: F811
    created = await api.put("wörld/日本.txt", "ok\n", **{"If-None-Match": "*"})
    assert created.status_code == 201
    assert (await api.get("wörld/日本.txt/download")).content == b"ok\n"
    assert (await api.get("wörld/日本.txt/history")).json()["total"] == 1
    assert (api.root / "wörld" / "日本.txt").read_text() == "ok\n"
