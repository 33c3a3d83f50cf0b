"""Files of a running fake server through the real API and worker."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


async def test_edit_files_of_a_running_server(dashboard, start_worker, fake_jar):
    start_worker()
    server = await dashboard.create_custom_server(fake_jar)
    sid = server["id"]
    http = dashboard.http
    assert (await http.post(f"/api/v2/servers/{sid}/start")).status_code == 202
    await dashboard.wait_state(sid, "running")
    files = f"/api/v2/servers/{sid}/files"

    note = await http.put(f"{files}/plugins/notes.yml", json={"content": "a: 1\n"})
    assert note.status_code == 201, note.text
    assert note.json()["restart_required"] is False
    assert (await http.get(f"/api/v2/servers/{sid}")).json()["restart_required"] is False

    properties = await http.get(f"{files}/server.properties")
    assert properties.status_code == 200, properties.text
    assert f"server-port={server['port']}" in properties.json()["content"]
    edited = properties.json()["content"].replace("max-players=20", "max-players=30")
    edited += "view-distance=6\n"
    saved = await http.put(
        f"{files}/server.properties",
        json={"content": edited},
        headers={"If-Match": properties.headers["etag"]},
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["restart_required"] is True
    assert (await http.get(f"/api/v2/servers/{sid}")).json()["restart_required"] is True
    history = (await http.get(f"{files}/server.properties/history")).json()
    assert [item["action"] for item in history["items"]] == ["written", "original"]

    region = await http.get(f"{files}/world/region/r.0.0.mca/download")
    assert region.status_code == 200
    assert region.content.startswith(b"generation=")
    assert int(region.headers["content-length"]) == len(region.content)

    assert (await http.post(f"/api/v2/servers/{sid}/stop")).status_code == 202
    await dashboard.wait_state(sid, "stopped")
    assert (await http.post(f"/api/v2/servers/{sid}/start")).status_code == 202
    await dashboard.wait_state(sid, "running")
    assert (await http.get(f"/api/v2/servers/{sid}")).json()["restart_required"] is False
    reread = (await http.get(f"{files}/server.properties")).json()["content"]
    assert "view-distance=6" in reread
    assert "max-players=20" in reread  # the dashboard owns max-players and rewrites it at start
    assert (await http.post(f"/api/v2/servers/{sid}/stop")).status_code == 202
    await dashboard.wait_state(sid, "stopped")
