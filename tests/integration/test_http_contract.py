"""What the schemathesis run found, each pinned: 405 names every method, a body of the wrong type
is a 415, JSON's 8877.0 is the integer it means, and mkdir's 201 is what the schema says."""

from __future__ import annotations

import pytest

from tests.conftest import bearer, login, register
from tests.integration.test_auth_api import assert_problem

SERVER = {"name": "contract", "server_type": "custom", "version": "1.21.4", "memory_mb": 512}


@pytest.fixture
async def admin(client):
    await register(client, "admin1")
    return bearer(await login(client, "admin1"))


@pytest.fixture
async def server_id(client, admin):
    created = await client.post("/api/v2/servers/", json=SERVER, headers=admin)
    assert created.status_code == 201, created.text
    return created.json()["id"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PATCH", "/api/v2/servers/{id}", "DELETE, GET, PUT"),
        ("POST", "/api/v2/servers/{id}/status", "GET"),
        ("DELETE", "/api/v2/auth/login", "POST"),
        ("PATCH", "/api/v2/servers/", "GET, POST"),
    ],
    ids=["patch-server", "post-status", "delete-login", "patch-server-list"],
)
async def test_405_allow_names_every_method_of_the_path(
    client, admin, server_id, method, path, allow
):
    response = await client.request(method, path.format(id=server_id), headers=admin)
    problem = assert_problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == allow
    assert allow in problem["detail"]


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/v2/auth/login", "text/plain"),
        ("/api/v2/auth/register", "application/x-www-form-urlencoded"),
        ("/api/v2/groups/", "application/xml"),
    ],
    ids=["text-plain-login", "form-urlencoded-register", "xml-group"],
)
async def test_a_json_body_sent_as_another_type_is_415(client, admin, path, content_type):
    response = await client.post(
        path, content=b'{"username": "a"}', headers={**admin, "content-type": content_type}
    )
    assert_problem(response, 415, "unsupported-media-type")


async def test_an_upload_sent_as_json_is_415(client, admin, server_id):
    response = await client.post(
        f"/api/v2/servers/{server_id}/files/upload", json={"file": "x"}, headers=admin
    )
    assert_problem(response, 415, "unsupported-media-type")


async def test_a_file_edit_sent_as_xml_is_415(client, admin, server_id):
    response = await client.put(
        f"/api/v2/servers/{server_id}/files/notes.txt",
        content=b"<content/>",
        headers={**admin, "content-type": "application/xml", "If-None-Match": "*"},
    )
    assert_problem(response, 415, "unsupported-media-type")


async def test_multipart_without_a_boundary_is_400(client, admin, server_id):
    response = await client.post(
        f"/api/v2/servers/{server_id}/files/upload",
        content=b"--x--\r\n",
        headers={**admin, "content-type": "multipart/form-data"},
    )
    assert_problem(response, 400, "malformed-upload")


@pytest.mark.parametrize(
    ("body", "field", "stored"),
    [
        ({"port": 28877.0}, "port", 28877),
        ({"max_players": 486.0}, "max_players", 486),
        ({"memory_mb": 1024.0}, "memory_mb", 1024),
        ({"restart_policy": {"max_restarts": 22.0}}, "restart_policy", {"max_restarts": 22}),
    ],
    ids=["port-28877.0", "max_players-486.0", "memory_mb-1024.0", "max_restarts-22.0"],
)
async def test_a_whole_float_is_the_integer_it_means(client, admin, server_id, body, field, stored):
    response = await client.put(f"/api/v2/servers/{server_id}", json=body, headers=admin)
    assert response.status_code == 200, response.text
    if isinstance(stored, dict):
        assert stored.items() <= response.json()[field].items()
    else:
        assert response.json()[field] == stored


@pytest.mark.parametrize(
    "body",
    [{"port": 28877.5}, {"max_players": "486"}, {"memory_mb": True}],
    ids=["port-28877.5", "max_players-string", "memory_mb-true"],
)
async def test_other_non_integers_are_still_refused(client, admin, server_id, body):
    response = await client.put(f"/api/v2/servers/{server_id}", json=body, headers=admin)
    assert_problem(response, 422, "invalid-input")


@pytest.mark.parametrize(
    ("body", "op_level"),
    [({"op_level": 3.0}, 3), ({"priority": 10.0}, None)],
    ids=["op_level-3.0", "priority-10.0"],
)
async def test_group_numbers_written_as_whole_floats(client, admin, server_id, body, op_level):
    group = await client.post(
        "/api/v2/groups/", json={"name": "mods", "group_type": "op"}, headers=admin
    )
    if op_level is not None:
        changed = await client.put(f"/api/v2/groups/{group.json()['id']}", json=body, headers=admin)
        assert changed.json()["op_level"] == op_level
    else:
        changed = await client.post(
            f"/api/v2/groups/{group.json()['id']}/servers/{server_id}", json=body, headers=admin
        )
        assert changed.json()["servers"][0]["priority"] == 10
    assert changed.status_code in (200, 201), changed.text


async def test_mkdir_answers_201_without_a_body(client, admin, server_id):
    response = await client.post(
        f"/api/v2/servers/{server_id}/files/mkdir", json={"path": "archive"}, headers=admin
    )
    assert response.status_code == 201
    assert response.content == b""
    assert "content-type" not in response.headers
