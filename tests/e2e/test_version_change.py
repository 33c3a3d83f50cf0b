"""A version change end to end: a vanilla server becomes a Paper server (jars from local
stand-ins of Mojang's and PaperMC's APIs) after a safety backup, keeps its world, runs, and is
rolled back to vanilla with the backup restored."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

import pytest

from tests.e2e.test_backups import wait_backup
from tests.upstream import paper_build, serve_upstream

pytestmark = pytest.mark.e2e


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def upstream(stack_env, fake_jar, tmp_path):
    """Minecraft 1.20.4 is the fake jar; Paper 1.20.4 the fake jar with one more entry, so the
    two downloads differ and the swap shows in server.jar."""
    vanilla = fake_jar.read_bytes()
    paper_path = tmp_path / "paper.jar"
    shutil.copyfile(fake_jar, paper_path)
    with zipfile.ZipFile(paper_path, "a") as jar:
        jar.writestr("io/papermc/marker.txt", "paper")
    paper = paper_path.read_bytes()
    with serve_upstream() as served:
        base = served.base
        served.json(
            "/mc/game/version_manifest_v2.json",
            {
                "latest": {"release": "1.20.4", "snapshot": "1.20.4"},
                "versions": [
                    {
                        "id": "1.20.4",
                        "type": "release",
                        "url": f"{base}/v/1.20.4.json",
                        "sha1": "0" * 40,
                    },
                    {
                        "id": "1.19.4",
                        "type": "release",
                        "url": f"{base}/v/1.19.4.json",
                        "sha1": "0" * 40,
                    },
                ],
            },
        )
        served.json(
            "/v/1.20.4.json",
            {
                "id": "1.20.4",
                "downloads": {
                    "server": {
                        "sha1": hashlib.sha1(vanilla).hexdigest(),
                        "size": len(vanilla),
                        "url": f"{base}/jar/1.20.4",
                    }
                },
                "javaVersion": {"majorVersion": 17},
            },
        )
        served.routes["/jar/1.20.4"] = (200, vanilla)
        served.json(
            "/v3/projects/paper",
            {"project": {"id": "paper", "name": "Paper"}, "versions": {"1.20": ["1.20.4"]}},
        )
        served.json(
            "/v3/projects/paper/versions/1.20.4/builds",
            [paper_build(base, "1.20.4", 499, "STABLE", paper)],
        )
        served.routes[f"/paper/{sha256(paper)}.jar"] = (200, paper)
        stack_env["MCDASH_MOJANG_MANIFEST_URL"] = f"{base}/mc/game/version_manifest_v2.json"
        stack_env["MCDASH_PAPER_API_URL"] = f"{base}/v3/"
        yield {"vanilla": sha256(vanilla), "paper": sha256(paper)}


async def test_vanilla_to_paper_keeps_the_world_and_rolls_back_to_its_backup(
    upstream, dashboard, start_worker, stack_env
):
    start_worker()
    created = await dashboard.http.post(
        "/api/v2/servers/",
        json={"name": "switcher", "version": "1.20.4", "memory_mb": 512, "eula_accepted": True},
    )
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    root = Path(stack_env["MCDASH_DATA_DIR"]) / "servers" / sid
    version_url = f"/api/v2/servers/{sid}/version"

    await dashboard.http.post(f"/api/v2/servers/{sid}/start")
    await dashboard.wait_state(sid, "running")
    assert sha256((root / "server.jar").read_bytes()) == upstream["vanilla"]

    running = await dashboard.http.post(version_url, json={"server_type": "paper"})
    assert running.status_code == 409, running.text
    assert "stop it" in running.json()["detail"]

    await dashboard.http.post(f"/api/v2/servers/{sid}/stop")
    await dashboard.wait_state(sid, "stopped")
    (root / "world" / "built-by-players.txt").write_text("a castle")

    downgrade = await dashboard.http.post(version_url, json={"version": "1.19.4"})
    assert downgrade.status_code == 409, downgrade.text
    assert downgrade.json()["type"].endswith("version-downgrade")
    assert "allow_downgrade" in downgrade.json()["detail"]

    changed = await dashboard.http.post(version_url, json={"server_type": "paper"})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["previous"] == {
        "server_type": "vanilla",
        "version": "1.20.4",
        "loader_version": None,
    }
    assert body["current"]["server_type"] == "paper"
    assert body["server"]["server_type"] == "paper"
    backup = (await dashboard.http.get(f"/api/v2/backups/{body['backup_id']}")).json()
    assert backup["status"] == "completed", backup
    assert backup["server_id"] == sid

    await dashboard.http.post(f"/api/v2/servers/{sid}/start")
    await dashboard.wait_state(sid, "running")
    assert sha256((root / "server.jar").read_bytes()) == upstream["paper"]
    assert (root / "world" / "built-by-players.txt").read_text() == "a castle"
    await dashboard.http.post(f"/api/v2/servers/{sid}/stop")
    await dashboard.wait_state(sid, "stopped")
    (root / "world" / "built-by-players.txt").write_text("a castle, broken by paper")

    rolled = await dashboard.http.post(f"{version_url}/rollback")
    assert rolled.status_code == 202, rolled.text
    assert rolled.json()["restored"]["server_type"] == "vanilla"
    assert rolled.json()["server"]["server_type"] == "vanilla"
    restored = await wait_backup(
        dashboard, body["backup_id"], field="restore_status", until=("completed", "failed")
    )
    assert restored["restore_status"] == "completed", restored
    assert (root / "world" / "built-by-players.txt").read_text() == "a castle"

    again = await dashboard.http.post(f"{version_url}/rollback")
    assert again.status_code == 409, again.text

    await dashboard.http.post(f"/api/v2/servers/{sid}/start")
    await dashboard.wait_state(sid, "running")
    assert sha256((root / "server.jar").read_bytes()) == upstream["vanilla"]
    activity = (await dashboard.http.get(f"/api/v2/servers/{sid}/activity")).json()
    summaries = [item["summary"] for item in activity["items"]]
    assert any("from vanilla 1.20.4 to paper 1.20.4" in s for s in summaries), summaries
    assert any("rolled switcher back to vanilla 1.20.4" in s for s in summaries), summaries
    await dashboard.http.post(f"/api/v2/servers/{sid}/stop")
    await dashboard.wait_state(sid, "stopped")
