"""server:code: custom jars and .jar files into plugins/ or mods/ are code the game server runs.

Users hold it only with MCDASH_USERS_INSTALL_CODE; operators and admins always do.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.main import create_app
from tests.agent import in_process
from tests.conftest import bearer, login, register
from tests.integration.test_auth_api import assert_problem
from tests.upstream import VANILLA_JAR

JAR_BYTES = b"PK\x03\x04 a plugin"


class Api:
    def __init__(self, http: httpx.AsyncClient, root: Path, sid: str, users: dict) -> None:
        self.http = http
        self.root = root
        self.sid = sid
        self.users = users
        self.files = f"/api/v2/servers/{sid}/files"


@contextlib.asynccontextmanager
async def running(settings, *, users_install_code: bool) -> AsyncIterator[Api]:
    app = create_app(settings.model_copy(update={"users_install_code": users_install_code}))
    async with in_process(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            await register(http, "admin1")
            admin = bearer(await login(http, "admin1"))
            users = {"admin": admin}
            for name, role in (("user1", "user"), ("operator1", "operator")):
                user_id = (await register(http, name)).json()["id"]
                await http.patch(f"/api/v2/users/{user_id}/approve", headers=admin)
                if role != "user":
                    changed = await http.patch(
                        f"/api/v2/users/{user_id}/role", headers=admin, json={"role": role}
                    )
                    assert changed.status_code == 200, changed.text
                users[role] = bearer(await login(http, name))
            created = await http.post(
                "/api/v2/servers/",
                headers=users["user"],
                json={
                    "name": "modded",
                    "server_type": "custom",
                    "version": "1.0",
                    "memory_mb": 512,
                },
            )
            assert created.status_code == 201, created.text
            sid = created.json()["id"]
            root = settings.resolved_data_dir / "servers" / sid
            root.mkdir(parents=True)
            yield Api(http, root, sid, users)


WHO = [
    pytest.param("user", False, False, id="user-refused"),
    pytest.param("user", True, True, id="user-with-users-install-code"),
    pytest.param("operator", False, True, id="operator"),
    pytest.param("admin", False, True, id="admin"),
]


def refused(response: httpx.Response) -> None:
    problem = assert_problem(response, 403, "forbidden")
    assert "server:code" in problem["detail"]


@pytest.mark.parametrize(("role", "setting", "allowed"), WHO)
async def test_custom_jar_upload_needs_server_code(settings, clean, role, setting, allowed):
    async with running(settings, users_install_code=setting) as api:
        response = await api.http.put(
            f"/api/v2/servers/{api.sid}/jar",
            headers=api.users[role],
            files={"file": ("server.jar", VANILLA_JAR)},
        )
        if allowed:
            assert response.status_code == 200, response.text
        else:
            refused(response)
        detail = (
            await api.http.get(f"/api/v2/servers/{api.sid}", headers=api.users["admin"])
        ).json()
        assert (detail["jar_sha256"] is not None) is allowed


@pytest.mark.parametrize(("role", "setting", "allowed"), WHO)
async def test_jars_into_plugins_or_mods_need_server_code(settings, clean, role, setting, allowed):
    async with running(settings, users_install_code=setting) as api:
        http, files, who = api.http, api.files, api.users[role]
        admin = api.users["admin"]
        (api.root / "stash").mkdir()
        (api.root / "stash" / "inner.jar").write_bytes(JAR_BYTES)
        (api.root / "notes.txt").write_text("not yet a jar")
        made = await http.put(f"{files}/mods/old.jar", json={"content": "v1"}, headers=admin)
        assert made.status_code == 201, made.text
        assert (await http.delete(f"{files}/mods/old.jar", headers=admin)).status_code == 200

        attempts = {
            "upload-plugins-jar": await http.post(
                f"{files}/upload",
                params={"path": "plugins"},
                files={"file": ("evil.jar", JAR_BYTES)},
                headers=who,
            ),
            "upload-nested-mods-jar-upper-case": await http.post(
                f"{files}/upload",
                params={"path": "Mods/deep/er"},
                files={"file": ("EVIL.JAR", JAR_BYTES)},
                headers=who,
            ),
            "put-text-as-plugins-jar": await http.put(
                f"{files}/plugins/text.jar", json={"content": "PK"}, headers=who
            ),
            "rename-into-plugins-jar": await http.post(
                f"{files}/notes.txt/move", json={"to": "plugins/renamed.jar"}, headers=who
            ),
            "move-directory-holding-a-jar-into-mods": await http.post(
                f"{files}/stash/move", json={"to": "mods/stash"}, headers=who
            ),
            "restore-history-of-mods-jar": await http.post(
                f"{files}/mods/old.jar/history/1/restore", headers=who
            ),
        }
        landed = {
            "upload-plugins-jar": api.root / "plugins" / "evil.jar",
            "upload-nested-mods-jar-upper-case": api.root / "Mods" / "deep" / "er" / "EVIL.JAR",
            "put-text-as-plugins-jar": api.root / "plugins" / "text.jar",
            "rename-into-plugins-jar": api.root / "plugins" / "renamed.jar",
            "move-directory-holding-a-jar-into-mods": api.root / "mods" / "stash" / "inner.jar",
            "restore-history-of-mods-jar": api.root / "mods" / "old.jar",
        }
        for name, response in attempts.items():
            if allowed:
                assert response.status_code in (200, 201), (name, response.text)
            else:
                refused(response)
            assert landed[name].exists() is allowed, name
        if not allowed:
            assert (api.root / "notes.txt").exists()
            assert (api.root / "stash" / "inner.jar").exists()


async def test_without_server_code_other_files_are_still_yours(settings, clean):
    async with running(settings, users_install_code=False) as api:
        http, files, user = api.http, api.files, api.users["user"]
        (api.root / "configs").mkdir()
        (api.root / "configs" / "a.yml").write_text("a: 1\n")
        ok = {
            "plugin-config": await http.put(
                f"{files}/plugins/Essentials/config.yml", json={"content": "x: 1\n"}, headers=user
            ),
            "jar-outside-code-directories": await http.post(
                f"{files}/upload",
                params={"path": "libraries"},
                files={"file": ("lib.jar", JAR_BYTES)},
                headers=user,
            ),
            "disabled-plugin": await http.post(
                f"{files}/upload",
                params={"path": "plugins"},
                files={"file": ("old.jar.disabled", JAR_BYTES)},
                headers=user,
            ),
            "directory-without-jars-into-plugins": await http.post(
                f"{files}/configs/move", json={"to": "plugins/configs"}, headers=user
            ),
            "plugin-jar-out-of-plugins": None,
        }
        (api.root / "plugins" / "installed.jar").write_bytes(JAR_BYTES)
        ok["plugin-jar-out-of-plugins"] = await http.post(
            f"{files}/plugins/installed.jar/move",
            json={"to": "disabled/installed.jar"},
            headers=user,
        )
        for name, response in ok.items():
            assert response is not None
            assert response.status_code in (200, 201), (name, response.text)
        assert (api.root / "plugins" / "configs" / "a.yml").read_text() == "a: 1\n"
        assert (api.root / "disabled" / "installed.jar").exists()


def archive_with(name: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(JAR_BYTES)
        tar.addfile(info, io.BytesIO(JAR_BYTES))
    return out.getvalue()


@pytest.mark.parametrize(("role", "setting", "allowed"), WHO)
async def test_a_backup_upload_holding_a_plugin_jar_needs_server_code(
    settings, clean, role, setting, allowed
):
    async with running(settings, users_install_code=setting) as api:
        response = await api.http.post(
            f"/api/v2/servers/{api.sid}/backups/upload",
            headers=api.users[role],
            files={"file": ("w.tar.gz", archive_with("plugins/evil.jar"))},
        )
        if allowed:
            assert response.status_code == 201, response.text
        else:
            refused(response)
        listed = await api.http.get(
            f"/api/v2/servers/{api.sid}/backups", headers=api.users["admin"]
        )
        assert listed.json()["total"] == (1 if allowed else 0)
        other = await api.http.post(
            f"/api/v2/servers/{api.sid}/backups/upload",
            headers=api.users[role],
            files={"file": ("w.tar.gz", archive_with("libraries/lib.jar"))},
        )
        assert other.status_code == 201, other.text


@pytest.mark.parametrize(
    "operation", ["put", "upload", "move-into-link", "restore"], ids=lambda o: f"via-link-{o}"
)
async def test_a_link_the_game_server_made_into_plugins_does_not_bypass_server_code(
    settings, clean, operation
):
    """The game server controls its directory: `p -> plugins` must not turn p/x.jar into a
    way around server:code."""
    async with running(settings, users_install_code=False) as api:
        (api.root / "plugins").mkdir()
        (api.root / "p").symlink_to("plugins")
        user = api.users["user"]
        if operation == "put":
            response = await api.http.put(
                f"{api.files}/p/evil.jar", headers=user, json={"content": "PK"}
            )
        elif operation == "upload":
            response = await api.http.post(
                f"{api.files}/upload",
                params={"path": "p"},
                headers=user,
                files={"file": ("evil.jar", JAR_BYTES, "application/java-archive")},
            )
        elif operation == "move-into-link":
            (api.root / "evil.jar").write_bytes(JAR_BYTES)
            response = await api.http.post(
                f"{api.files}/evil.jar/move", headers=user, json={"to": "p/evil.jar"}
            )
        else:
            put = await api.http.put(
                f"{api.files}/p/evil.jar", headers=api.users["admin"], json={"content": "PK"}
            )
            assert put.status_code in (200, 201), put.text
            (api.root / "plugins" / "evil.jar").unlink()
            response = await api.http.post(
                f"{api.files}/p/evil.jar/history/1/restore", headers=user
            )
        refused(response)
        assert not (api.root / "plugins" / "evil.jar").exists()
