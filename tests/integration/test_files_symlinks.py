"""Symlinks inside the server directory never reach server.jar or .mcdash/, for any verb."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.files.domain.model import etag_of, sha256_of
from tests.integration.test_files_api import api, problem_type  # noqa: F401 - the shared fixture

JAR = b"PK\x03\x04 the verified server jar"


@pytest.fixture
def jar(api):  # noqa: F811
    """server.jar, `x -> server.jar` and `here -> .` (a symlinked directory to the root)."""
    (api.root / "server.jar").write_bytes(JAR)
    os.symlink("server.jar", api.root / "x")
    os.symlink(".", api.root / "here")
    (api.root / "a.txt").write_text("a\n")
    return api.root / "server.jar"


def assert_jar_untouched(api, jar: Path) -> None:  # noqa: F811
    assert not jar.is_symlink()
    assert jar.read_bytes() == JAR
    assert (api.root / "x").is_symlink()
    assert (api.root / "a.txt").read_text() == "a\n"


def assert_protected(response) -> None:
    assert response.status_code == 403, response.text
    assert problem_type(response) == "path-forbidden"
    assert "server.jar" in response.json()["detail"]


async def upload(api, directory: str, name: str, body: bytes = b"evil"):  # noqa: F811
    return await api.http.post(
        api.url("upload"),
        params={"path": directory, "overwrite": "true"},
        files={"file": (name, body, "application/java-archive")},
        headers=api.users["owner"],
    )


async def move(api, source: str, to: str):  # noqa: F811
    return await api.http.post(
        api.url(f"{source}/move"), json={"to": to}, headers=api.users["owner"]
    )


@pytest.mark.parametrize(
    "verb",
    [
        "put-symlink-to-jar",
        "put-through-symlinked-directory",
        "upload-symlink-to-jar",
        "upload-through-symlinked-directory",
        "move-symlink-to-jar-away",
        "move-onto-symlink-to-jar",
        "move-onto-jar-through-symlinked-directory",
        "delete-symlink-to-jar",
        "delete-jar-through-symlinked-directory",
    ],
)
async def test_server_jar_cannot_be_changed_through_a_symlink(api, jar, verb):  # noqa: F811
    if_match = {"If-Match": etag_of(sha256_of(JAR))}
    match verb:
        case "put-symlink-to-jar":
            response = await api.put("x", "evil", **if_match)
        case "put-through-symlinked-directory":
            response = await api.put("here/server.jar", "evil", **if_match)
        case "upload-symlink-to-jar":
            response = await upload(api, "", "x")
        case "upload-through-symlinked-directory":
            response = await upload(api, "here", "server.jar")
        case "move-symlink-to-jar-away":
            response = await move(api, "x", "stolen.jar")
        case "move-onto-symlink-to-jar":
            response = await move(api, "a.txt", "x")
        case "move-onto-jar-through-symlinked-directory":
            response = await move(api, "a.txt", "here/server.jar")
        case "delete-symlink-to-jar":
            response = await api.http.delete(api.url("x"), headers=api.users["owner"])
        case "delete-jar-through-symlinked-directory":
            response = await api.http.delete(api.url("here/server.jar"), headers=api.users["owner"])
    assert_protected(response)
    assert_jar_untouched(api, jar)
    assert not (api.root / "stolen.jar").exists()


@pytest.mark.parametrize("verb", ["put-create", "upload", "mkdir", "move-onto"])
async def test_a_missing_server_jar_cannot_be_created_through_a_symlinked_directory(
    api,  # noqa: F811
    jar,
    verb,
):
    jar.unlink()
    match verb:
        case "put-create":
            response = await api.put("here/server.jar", "evil", **{"If-None-Match": "*"})
        case "upload":
            response = await upload(api, "here", "server.jar")
        case "mkdir":
            response = await api.http.post(
                api.url("mkdir"), json={"path": "here/server.jar"}, headers=api.users["owner"]
            )
        case "move-onto":
            response = await move(api, "a.txt", "here/server.jar")
    assert_protected(response)
    assert not jar.exists()
    assert (api.root / "a.txt").read_text() == "a\n"


async def test_restoring_a_version_onto_a_symlink_to_the_jar_is_refused(api, jar):  # noqa: F811
    created = await api.put("plugin.yml", "name: mine\n", **{"If-None-Match": "*"})
    assert created.status_code == 201, created.text
    (api.root / "plugin.yml").unlink()
    os.symlink("server.jar", api.root / "plugin.yml")
    restored = await api.http.post(
        api.url("plugin.yml/history/1/restore"),
        headers={**api.users["owner"], "If-Match": etag_of(sha256_of(JAR))},
    )
    assert_protected(restored)
    assert_jar_untouched(api, jar)


async def test_the_jar_can_still_be_read_through_a_symlink(api, jar):  # noqa: F811
    download = await api.get("x/download")
    assert download.status_code == 200, download.text
    assert download.content == JAR


@pytest.fixture
def control(api):  # noqa: F811
    """The worker's private .mcdash/ with `m -> .mcdash` and `c -> .mcdash/console.in`."""
    (api.root / ".mcdash").mkdir()
    (api.root / ".mcdash" / "console.in").write_text("secret\n")
    os.symlink(".mcdash", api.root / "m")
    os.symlink(".mcdash/console.in", api.root / "c")
    (api.root / "a.txt").write_text("a\n")
    return api.root / ".mcdash"


@pytest.mark.parametrize("path", ["m/console.in", "c", "m"], ids=["via-dir", "via-file", "dir"])
async def test_the_control_directory_is_unreachable_through_a_symlink(api, control, path):  # noqa: F811
    owner = api.users["owner"]
    attempts = {
        "read": await api.get(path),
        "download": await api.get(f"{path}/download"),
        "list": await api.get(params={"path": path}),
        "put": await api.put(path, "pwned", **{"If-Match": '"x"'}),
        "put-create": await api.put(f"{path}/new.txt", "pwned", **{"If-None-Match": "*"}),
        "delete": await api.http.delete(api.url(path), headers=owner, params={"recursive": True}),
        "move-away": await move(api, path, "stolen"),
        "move-onto": await move(api, "a.txt", f"{path}/a.txt"),
        "mkdir": await api.http.post(api.url("mkdir"), json={"path": f"{path}/d"}, headers=owner),
        "upload": await upload(api, path, "console.in"),
    }
    for verb, response in attempts.items():
        assert response.status_code == 403, (verb, response.text)
        assert problem_type(response) == "path-forbidden", verb
    assert (control / "console.in").read_text() == "secret\n"
    assert sorted(p.name for p in control.iterdir()) == ["console.in"]
    assert not (api.root / "stolen").exists()
    assert (api.root / "a.txt").read_text() == "a\n"
