"""A Fabric and a NeoForge server, from recorded upstream answers to running and stopped, and a
mod with its dependency installed and updated on the Fabric server from a Modrinth stand-in.

Fabric's launcher is the fake server jar, started as `-jar fabric-server-launch.jar` beside the
verified vanilla `server.jar`; NeoForge's installer is the stand-in (FakeInstaller.java), which
installs the fake server under `libraries/` for the `@user_jvm_args.txt @.../unix_args.txt`
launch. One JVM start per server, plus the installer's run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.fake_server.build import build_fake_installer
from tests.loaders_upstream import (
    fabric_launcher_path,
    loader_settings,
    neoforge_installer_path,
    serve_artifact,
    serve_loader_recordings,
)
from tests.modrinth import serving
from tests.upstream import serve_upstream

pytestmark = pytest.mark.e2e

NEO_ARGS = "libraries/net/neoforged/neoforge/20.4.237/unix_args.txt"


@pytest.fixture
def loader_upstream(stack_env, fake_jar, tmp_path):
    """Mojang's manifest with 1.20.4 (the fake jar), Fabric meta and NeoForge's Maven."""
    jar = fake_jar.read_bytes()
    installer = build_fake_installer(tmp_path, unix_args=NEO_ARGS, minecraft="1.20.4", fail=False)
    with serve_upstream() as upstream:
        base = upstream.base
        upstream.json(
            "/mc/game/version_manifest_v2.json",
            {
                "latest": {"release": "1.20.4", "snapshot": "1.20.4"},
                "versions": [{"id": "1.20.4", "type": "release", "url": f"{base}/v/1.20.4.json"}],
            },
        )
        server = {"sha1": hashlib.sha1(jar).hexdigest(), "size": len(jar), "url": f"{base}/jar"}
        upstream.json(
            "/v/1.20.4.json",
            {"id": "1.20.4", "downloads": {"server": server}, "javaVersion": {"majorVersion": 17}},
        )
        upstream.routes["/jar"] = (200, jar)
        serve_loader_recordings(upstream)
        serve_artifact(upstream, fabric_launcher_path("1.20.4", "0.16.10"), jar)
        serve_artifact(upstream, neoforge_installer_path("20.4.237"), installer.read_bytes())
        stack_env["MCDASH_MOJANG_MANIFEST_URL"] = f"{base}/mc/game/version_manifest_v2.json"
        for key, url in loader_settings(base).items():
            stack_env[f"MCDASH_{key.upper()}"] = url
        yield upstream


@pytest.fixture
def modrinth(stack_env):
    """A Fabric mod for 1.20.4 that requires a library mod."""
    with serving() as fake:
        fake.project("P-lib", "fabric-api")
        fake.project("P-map", "minimap")
        fabric = {"loaders": ("fabric",), "games": ("1.20.4",)}
        fake.version("lib-1", "P-lib", "0.92.0", **fabric)
        required = [{"project_id": "P-lib", "dependency_type": "required"}]
        fake.version("map-1", "P-map", "1.0.0", deps=required, **fabric)
        stack_env["MCDASH_MODRINTH_API_URL"] = fake.base
        stack_env["MCDASH_MODRINTH_USER_AGENT"] = "mcdash-tests/1 (e2e@example.com)"
        yield fake


def sha512s(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha512(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


async def test_fabric_and_neoforge_servers_install_start_and_stop(
    loader_upstream, modrinth, dashboard, start_worker, stack_env
):
    http = dashboard.http
    listed = (await http.get("/api/v2/versions/neoforge")).json()
    assert [(v["version"], v["recommended_loader"]) for v in listed] == [
        ("1.21.4", "21.4.10-beta"),
        ("1.21.1", "21.1.77"),
        ("1.20.4", "20.4.237"),
    ]
    base = {"version": "1.20.4", "memory_mb": 512, "eula_accepted": True}
    refused = await http.post(
        "/api/v2/servers/",
        json={"name": "neo-x", "server_type": "neoforge", "loader_version": "21.1.77", **base},
    )
    assert refused.status_code == 422, refused.text
    assert "20.4.237, 20.4.236" in refused.json()["detail"]
    unknown = await http.post(
        "/api/v2/servers/", json={"name": "quilt", "server_type": "quilt", **base}
    )
    assert unknown.status_code == 422, unknown.text

    start_worker()
    fabric = await http.post(
        "/api/v2/servers/", json={"name": "fab", "server_type": "fabric", **base}
    )
    neo = await http.post(
        "/api/v2/servers/", json={"name": "neo", "server_type": "neoforge", **base}
    )
    assert fabric.status_code == neo.status_code == 201, (fabric.text, neo.text)
    assert fabric.json()["loader_version"] == "0.16.10", "the newest stable loader"
    assert neo.json()["loader_version"] == "20.4.237"
    ids = {"fabric": fabric.json()["id"], "neoforge": neo.json()["id"]}
    for sid in ids.values():
        started = await http.post(f"/api/v2/servers/{sid}/start")
        assert started.status_code == 202, started.text
    for sid in ids.values():
        await dashboard.wait_state(sid, "running", timeout=90)

    servers = Path(stack_env["MCDASH_DATA_DIR"]) / "servers"
    fabric_dir, neo_dir = servers / ids["fabric"], servers / ids["neoforge"]
    assert (fabric_dir / "fabric-server-launch.jar").is_file()
    assert (fabric_dir / "server.jar").is_file()
    assert (
        fabric_dir / "fabric-server-launcher.properties"
    ).read_text() == "serverJar=server.jar\n"
    assert (neo_dir / NEO_ARGS).is_file()
    assert (neo_dir / "user_jvm_args.txt").is_file()
    assert not (neo_dir / "server.jar").exists(), "NeoForge starts from its libraries"
    logs = (await http.get(f"/api/v2/servers/{ids['neoforge']}/logs?limit=500")).json()
    lines = [item["line"] for item in logs["items"]]
    assert any(line.startswith("[installer] ") for line in lines), "installer progress shown"
    assert any("[net.minecraft.server.dedicated.DedicatedServer/]: Done (" in ln for ln in lines)

    # A mod with its required dependency onto the running Fabric server, verified by SHA-512.
    mods_url = f"/api/v2/servers/{ids['fabric']}/mods"
    installed = await http.post(mods_url, json={"project": "minimap"})
    assert installed.status_code == 201, installed.text
    on_disk = sha512s(fabric_dir / "mods")
    assert on_disk == {
        "fabric-api-0.92.0.jar": modrinth.versions["lib-1"]["files"][0]["hashes"]["sha512"],
        "minimap-1.0.0.jar": modrinth.versions["map-1"]["files"][0]["hashes"]["sha512"],
    }
    listed = (await http.get(mods_url)).json()
    assert {m["version_id"] for m in listed} == {"lib-1", "map-1"}
    server = (await http.get(f"/api/v2/servers/{ids['fabric']}")).json()
    assert server["restart_required"] is True
    modrinth.version(
        "map-2",
        "P-map",
        "1.1.0",
        deps=[{"project_id": "P-lib", "dependency_type": "required"}],
        loaders=("fabric",),
        games=("1.20.4",),
    )
    updated = await http.post(f"{mods_url}/update", json={})
    assert updated.status_code == 200, updated.text
    assert sorted(sha512s(fabric_dir / "mods")) == ["fabric-api-0.92.0.jar", "minimap-1.1.0.jar"]
    assert (
        sha512s(fabric_dir / "mods")["minimap-1.1.0.jar"]
        == (modrinth.versions["map-2"]["files"][0]["hashes"]["sha512"])
    )

    for sid in ids.values():
        await http.post(f"/api/v2/servers/{sid}/stop")
    for sid in ids.values():
        await dashboard.wait_state(sid, "stopped", timeout=60)
