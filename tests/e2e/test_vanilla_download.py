"""A vanilla server whose jar the worker downloads, verifies by SHA-1 and caches by checksum."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.upstream import serve_upstream

pytestmark = pytest.mark.e2e


@pytest.fixture
def vanilla_upstream(stack_env, fake_jar):
    """Mojang's manifest served locally: 1.20.4 is the fake jar, 1.20.3 a corrupted download."""
    jar = fake_jar.read_bytes()
    with serve_upstream() as upstream:
        base = upstream.base
        manifest = {
            "latest": {"release": "1.20.4", "snapshot": "1.20.4"},
            "versions": [
                {"id": v, "type": "release", "url": f"{base}/v/{v}.json", "sha1": "0" * 40}
                for v in ("1.20.4", "1.20.3")
            ],
        }
        upstream.json("/mc/game/version_manifest_v2.json", manifest)
        for version, sha1 in (
            ("1.20.4", hashlib.sha1(jar).hexdigest()),
            ("1.20.3", "f" * 40),
        ):
            upstream.json(
                f"/v/{version}.json",
                {
                    "id": version,
                    "downloads": {
                        "server": {"sha1": sha1, "size": len(jar), "url": f"{base}/jar/{version}"}
                    },
                    "javaVersion": {"majorVersion": 17},
                },
            )
            upstream.routes[f"/jar/{version}"] = (200, jar)
        stack_env["MCDASH_MOJANG_MANIFEST_URL"] = f"{base}/mc/game/version_manifest_v2.json"
        yield upstream


async def test_download_verify_cache_and_refuse_a_corrupted_jar(
    vanilla_upstream, dashboard, start_worker, fake_jar, stack_env
):
    start_worker()
    jar_cache = Path(stack_env["MCDASH_DATA_DIR"]) / "jars"
    sids = []
    for name in ("vanilla-a", "vanilla-b"):
        created = await dashboard.http.post(
            "/api/v2/servers/",
            json={"name": name, "version": "1.20.4", "memory_mb": 512, "eula_accepted": True},
        )
        assert created.status_code == 201, created.text
        sids.append(created.json()["id"])
    for sid in sids:
        await dashboard.http.post(f"/api/v2/servers/{sid}/start")
        await dashboard.wait_state(sid, "running")
    assert vanilla_upstream.hits["/jar/1.20.4"] == 1, "the second server uses the cached jar"
    digest = hashlib.sha256(fake_jar.read_bytes()).hexdigest()
    assert (jar_cache / f"{digest}.jar").exists()
    for sid in sids:
        await dashboard.http.post(f"/api/v2/servers/{sid}/stop")
        await dashboard.wait_state(sid, "stopped")

    corrupted = await dashboard.http.post(
        "/api/v2/servers/",
        json={"name": "corrupt", "version": "1.20.3", "memory_mb": 512, "eula_accepted": True},
    )
    cid = corrupted.json()["id"]
    await dashboard.http.post(f"/api/v2/servers/{cid}/start")
    status = await dashboard.wait_state(cid, "stopped", timeout=30)
    assert "checksum mismatch" in status["status_message"]
    assert sorted(p.name for p in jar_cache.iterdir() if p.is_file()) == [f"{digest}.jar"]
    server_dir = Path(stack_env["MCDASH_DATA_DIR"]) / "servers" / cid
    assert not (server_dir / "server.jar").exists()
