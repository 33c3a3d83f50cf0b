"""Every JSON request body in /openapi.json has an example, and it works as /docs sends it.

A fresh install with Mojang and Paper recorded: the register example makes the first user, who
is the admin; every other example is then sent as that admin, naming real things in the path.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.main import create_app
from tests.contract import FRESH, Seeds, serve_in_thread
from tests.upstream import serve_upstream

NOTCH = "069a79f444e94726a5befca90e38aaf5"
# What a request needs beyond its body, as a person at /docs would have it.
PATHS: dict[str, Any] = {
    "PUT /api/v2/servers/{server_id}/files/{file_path}": lambda s: {"file_path": "welcome.txt"},
    "POST /api/v2/groups/{group_id}/servers/{server_id}": lambda s: {"server_id": s.server()},
    "POST /api/v2/servers/{server_id}/mods/jars/{file_name}/disable": lambda s: {
        "file_name": "a.jar"
    },
    "POST /api/v2/servers/{server_id}/mods/jars/{file_name}/enable": lambda s: {
        "file_name": "a.jar"
    },
}
# The examples that cannot succeed on their own: a console command needs a running server.
PRECONDITION = {
    "POST /api/v2/servers/{server_id}/console": (409, "need it running"),
    # A fresh install has one node: a move needs another one online.
    "POST /api/v2/servers/{server_id}/move": (503, "a move needs the workers of both nodes"),
    # No worker runs there to take the safety backup a version change waits for.
    "POST /api/v2/servers/{server_id}/version": (409, "did not complete in time"),
    # The fresh install's server is a custom one, which takes no mods or plugins.
    **{
        f"POST /api/v2/servers/{{server_id}}/mods{tail}": (409, "takes no mods")
        for tail in ("", "/update", "/jars/{file_name}/disable", "/jars/{file_name}/enable")
    },
}


@pytest.fixture
def fresh_install(settings, clean):
    with serve_upstream() as upstream:
        upstream.json("/users/profiles/minecraft/Notch", {"id": NOTCH, "name": "Notch"})
        configured = settings.model_copy(
            update={
                "mojang_manifest_url": f"{upstream.base}/mc/game/version_manifest_v2.json",
                "paper_api_url": f"{upstream.base}/v3",
                "mojang_profile_api_url": upstream.base,
                "safety_backup_timeout_seconds": 2,
            }
        )
        with serve_in_thread(create_app(configured), configured) as url:
            yield url


def json_bodies(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation["requestBody"]["content"])
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]


def test_every_json_body_example_succeeds_on_a_fresh_install(fresh_install):
    schema = httpx.get(f"{fresh_install}/openapi.json").json()
    bodies = json_bodies(schema)
    missing = [
        f"{m} {p}" for m, p, content in bodies if "example" not in content["application/json"]
    ]
    assert not missing, f"request bodies without an example: {missing}"

    register = schema["paths"]["/api/v2/auth/register"]["post"]["requestBody"]["content"]
    first = register["application/json"]["example"]
    assert httpx.post(f"{fresh_install}/api/v2/auth/register", json=first).status_code == 201
    seeds = Seeds(fresh_install, admin=first["username"], register=False)
    refresh = seeds.http.post(
        "/api/v2/auth/login", json={"username": first["username"], "password": first["password"]}
    ).json()["refresh_token"]

    outcomes = {}
    for method, path, content in bodies:
        label = f"{method} {path}"
        if label == "POST /api/v2/auth/register":
            continue
        example = content["application/json"]["example"]
        if label == "POST /api/v2/auth/refresh":
            example = {"refresh_token": refresh}  # the one value /docs users paste themselves
        made = FRESH.get(label) or PATHS.get(label)
        names = {**seeds.kept, **(made(seeds) if made else {})}
        answer = seeds.http.request(
            method,
            path.format(**{name: names[name] for name in names if f"{{{name}}}" in path}),
            json=example,
            headers=seeds.headers,
        )
        outcomes[label] = (answer.status_code, answer.text[:200])

    refused = {
        label: outcome
        for label, outcome in outcomes.items()
        if not 200 <= outcome[0] < 300
        and not (
            label in PRECONDITION
            and outcome[0] == PRECONDITION[label][0]
            and PRECONDITION[label][1] in outcome[1]
        )
    }
    assert not refused, refused
    assert len(outcomes) == len(bodies) - 1
