"""POST /servers/{id}/version and its rollback through the API (no worker): what is refused
before any backup is taken."""

from __future__ import annotations

import pytest

from tests.integration.test_auth_api import assert_problem
from tests.integration.test_servers_api import api, create, upstream  # noqa: F401


@pytest.fixture
async def server(api):  # noqa: F811
    http, _, users = api
    created = await create(http, users["owner"], name="switcher")
    assert created.status_code == 201, created.text
    return http, users, f"/api/v2/servers/{created.json()['id']}/version"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"allow_downgrade": True},
        {"version": "1.21-pre1"},
        {"version": "1" * 21},
        {"version": 1.21},
        {"server_type": "spigot"},
        {"server_type": "custom"},
        {"server_type": "paper", "loader_version": "0.16.10"},
        {"server_type": "fabric", "loader_version": "../../etc"},
        {"server_type": "fabric", "loader_version": "x" * 65},
        {"allow_downgrade": "yes", "version": "1.21.3"},
        {"version": "1.21.4"},
        {"version": "1.21.3", "node": "elsewhere"},
    ],
    ids=[
        "empty",
        "only-allow-downgrade",
        "snapshot-version",
        "version-too-long",
        "version-as-number",
        "unknown-type",
        "to-custom",
        "loader-on-paper",
        "loader-traversal",
        "loader-too-long",
        "allow-downgrade-as-string",
        "same-version",
        "unknown-field",
    ],
)
async def test_bad_requests_are_422(server, body):
    http, users, url = server
    assert_problem(await http.post(url, headers=users["owner"], json=body), 422)


async def test_a_downgrade_is_409_with_its_reasons_until_allowed(server):
    http, users, url = server
    refused = assert_problem(
        await http.post(url, headers=users["owner"], json={"version": "1.20.4"}),
        409,
        "version-downgrade",
    )
    assert "older than 1.21.4" in refused["detail"]
    assert refused["reasons"]


async def test_an_unknown_version_is_refused_before_any_backup(server):
    http, users, url = server
    assert_problem(await http.post(url, headers=users["owner"], json={"version": "1.99.9"}), 422)
    backups = await http.get(f"{url.removesuffix('/version')}/backups", headers=users["owner"])
    assert backups.json()["items"] == [], backups.text


async def test_another_users_server_is_404(server):
    http, users, url = server
    assert_problem(await http.post(url, headers=users["other"], json={"version": "1.21.3"}), 404)
    assert_problem(await http.post(f"{url}/rollback", headers=users["other"]), 404)


async def test_nothing_to_roll_back_is_409(server):
    http, users, url = server
    body = assert_problem(await http.post(f"{url}/rollback", headers=users["owner"]), 409)
    assert "no version change" in body["detail"]
