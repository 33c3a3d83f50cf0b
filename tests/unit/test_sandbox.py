"""How a game server is started: its environment, its account and its sandbox."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.servers.infrastructure.sandbox import Isolation, give_tree

JAVA = Path("/usr/lib/jvm/java-21/bin/java")
WORKER_ENV = {
    "PATH": "/root/.venv/bin:/usr/bin",
    "HOME": "/root",
    "MCDASH_DATABASE_URL": "postgresql://postgres:secret@db/mcdash",
    "MCDASH_REDIS_URL": "redis://:secret@redis:6379/0",
    "MCDASH_JWT_SECRET": "k" * 48,
    "AWS_SECRET_ACCESS_KEY": "s3-secret",
    "TZ": "Europe/Paris",
    "FAKE_MC_STARTUP_MS": "200",
}


def plan(isolation: Isolation, account=None):
    return isolation.plan(
        Path("/data/servers/abc"),
        JAVA,
        ["-jar", "server.jar"],
        account=account,
        source_env=WORKER_ENV,
    )


def test_the_environment_is_an_allowlist_never_the_workers():
    env = plan(Isolation(dedicated_accounts=False, private_mounts=False, bwrap=None)).env

    assert set(env) == {"PATH", "HOME", "JAVA_HOME", "LANG", "TZ"}
    assert env["HOME"] == "/data/servers/abc"
    assert env["JAVA_HOME"] == str(JAVA.resolve().parent.parent)
    assert "secret" not in "".join(env.values())


@pytest.mark.parametrize(
    ("rules", "passed"),
    [
        pytest.param(("FAKE_MC_*",), {"FAKE_MC_STARTUP_MS"}, id="prefix"),
        pytest.param(("AWS_SECRET_ACCESS_KEY",), {"AWS_SECRET_ACCESS_KEY"}, id="exact-name"),
        pytest.param(("M*",), set(), id="prefix-matching-mcdash-vars"),
        pytest.param(("HOME",), set(), id="cannot-override-home"),
    ],
)
def test_passthrough_never_hands_over_mcdash_variables(rules, passed):
    isolation = Isolation(
        dedicated_accounts=False, private_mounts=False, bwrap=None, passthrough=rules
    )
    env = plan(isolation).env

    assert set(env) - {"PATH", "HOME", "JAVA_HOME", "LANG", "TZ"} == passed
    assert env["HOME"] == "/data/servers/abc"


def test_a_root_worker_stages_the_directory_in_a_private_mount_and_drops_to_the_account():
    isolation = Isolation(dedicated_accounts=True, private_mounts=True, bwrap=None)
    started = plan(isolation, account=(2_000_001, 2_000_001))

    assert started.argv[:5] == ["unshare", "--mount", "--propagation", "private", "--"]
    assert started.argv[9:12] == ["/data/servers/abc", "2000001", "2000001"]
    stage = started.argv[7]
    assert "--no-new-privs" in stage
    assert "--bounding-set=-all" in stage
    assert started.argv[-3:] == [str(JAVA), "-jar", "server.jar"]
    assert started.env["HOME"] == "/tmp/server"
    assert started.cwd == Path("/")


def test_without_private_mounts_the_account_is_dropped_by_setpriv():
    isolation = Isolation(dedicated_accounts=True, private_mounts=False, bwrap=None)
    started = plan(isolation, account=(2_000_002, 2_000_002))

    assert started.argv[:4] == ["setpriv", "--reuid=2000002", "--regid=2000002", "--clear-groups"]
    assert "--no-new-privs" in started.argv
    assert isolation.data_dir_mode == 0o711


def test_bubblewrap_shows_only_the_servers_directory_read_write():
    isolation = Isolation(dedicated_accounts=False, private_mounts=False, bwrap="/usr/bin/bwrap")
    argv = plan(isolation).argv
    options = argv[: argv.index("--")]

    assert argv[0] == "/usr/bin/bwrap"
    assert {"--unshare-all", "--unshare-user", "--disable-userns"} <= set(options)
    assert " ".join(options).count("--bind /data/servers/abc /server") == 1
    assert "--tmpfs /server/.mcdash" in " ".join(options)
    assert "--remount-ro /" in " ".join(options)
    binds = [options[i + 1] for i, o in enumerate(options) if o == "--bind"]
    assert binds == ["/data/servers/abc"], "nothing else is writable"
    assert plan(isolation).env["HOME"] == "/server"
    assert isolation.data_dir_mode == 0o700


def test_a_java_outside_the_system_is_bound_read_only(tmp_path):
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").touch()
    isolation = Isolation(dedicated_accounts=False, private_mounts=False, bwrap="/usr/bin/bwrap")
    argv = isolation.plan(
        tmp_path / "server", home / "bin" / "java", [], account=None, source_env={}
    ).argv

    joined = " ".join(argv[: argv.index("--")])
    assert f"--ro-bind {home} {home}" in joined


def test_uids_are_one_per_server_and_kept(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only root can give directories to other uids")
    servers = tmp_path / "servers"
    first, second = servers / "a", servers / "b"
    first.mkdir(parents=True)
    second.mkdir()
    isolation = Isolation(
        dedicated_accounts=True, private_mounts=True, bwrap=None, uid_base=2_100_000, uid_count=5
    )

    a, b = isolation.account_for(first), isolation.account_for(second)

    assert a == (2_100_000, 2_100_000)
    assert b == (2_100_001, 2_100_001)
    assert isolation.account_for(first) == a, "the directory's owner records the uid"


def test_giving_a_tree_skips_the_private_dir_links_and_shared_jar(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only root can give files to other uids")
    root = tmp_path / "server"
    (root / ".mcdash").mkdir(parents=True)
    (root / "world").mkdir()
    (root / "world" / "level.dat").write_text("x")
    cache = tmp_path / "cache.jar"
    cache.write_bytes(b"PK")
    os.link(cache, root / "server.jar")
    (root / "link").symlink_to(cache)

    give_tree(root, (2_100_010, 2_100_010), skip=".mcdash")

    assert (root / "world" / "level.dat").stat().st_uid == 2_100_010
    assert (root / ".mcdash").stat().st_uid == 0
    assert cache.stat().st_uid == 0, "the shared jar cache file is not given away"
    assert (root / "link").lstat().st_uid == 2_100_010
