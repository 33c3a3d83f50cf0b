"""What the SSE streams refuse before streaming anything: an over-long event id, by header or
by `?last_event_id=`, on each of the three streams (a clear 422, and no ticket spent)."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import bearer, login, register

SERVER = uuid.uuid4()
PATHS = [
    pytest.param("/api/v2/notifications/stream", id="notifications"),
    pytest.param(f"/api/v2/servers/{SERVER}/console/stream", id="console"),
    pytest.param(f"/api/v2/servers/{SERVER}/status/stream", id="status"),
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("where", "value"),
    [
        pytest.param("header", "1" * 201, id="header-201-chars"),
        pytest.param("query", "1" * 201, id="query-201-chars"),
    ],
)
async def test_an_over_long_event_id_is_refused(client, path, where, value):
    await register(client, "admin1")
    headers = bearer(await login(client, "admin1"))
    if where == "header":
        response = await client.get(path, headers={**headers, "Last-Event-ID": value})
    else:
        response = await client.get(path, headers=headers, params={"last_event_id": value})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_ticket_is_not_spent_on_a_refused_stream(client):
    await register(client, "admin1")
    headers = bearer(await login(client, "admin1"))
    ticket = (await client.post("/api/v2/ws/tickets", headers=headers)).json()["ticket"]
    path = f"/api/v2/servers/{SERVER}/status/stream"
    refused = await client.get(path, params={"ticket": ticket, "last_event_id": "x" * 201})
    assert refused.status_code == 422
    # The same ticket still opens a stream: here one the server does not have (404, not 401).
    missing = await client.get(path, params={"ticket": ticket})
    assert missing.status_code == 404, missing.text
    assert missing.headers["content-type"].startswith("application/problem+json")


def test_the_streams_document_the_parameter(app):
    schema = app.openapi()
    for path in ("/api/v2/notifications/stream", "/api/v2/servers/{server_id}/status/stream"):
        names = {p["name"] for p in schema["paths"][path]["get"]["parameters"]}
        assert {"last_event_id", "Last-Event-ID"} <= names, path
