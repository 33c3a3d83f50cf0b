"""How a node confines its game servers: their own OS account, a bubblewrap sandbox, a clean env.

A game server is untrusted code (a custom jar, a plugin, a mod). It gets an allowlisted
environment, never the worker's. When the worker is root, each server runs as a dedicated uid
that owns its directory and nothing else, and it reaches that directory through a bind mount in
a private mount namespace, so the data directory above it stays 0700. Where bubblewrap works,
the JVM also runs in a sandbox: a read-only system and Java runtime, its own directory at
/server, a private /tmp, no other process, no view of the data directory or other servers.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SANDBOX_ROOT = "/server"
PRIVATE = ".mcdash"
STAGED = "/tmp/server"  # noqa: S108 - inside the server's private mount namespace
_SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
_PASSED_ON = ("LANG", "LC_ALL", "TZ")
_SYSTEM_DIRS = ("/usr", "/etc")
_MERGED_USR = ("bin", "lib", "lib32", "lib64", "libx32", "sbin")

# Run as root in a new mount namespace: a tmpfs that will become /tmp, the server directory bound
# inside it (the tmpfs is first mounted on the directory's own .mcdash/, so that a server kept
# under /tmp still works), then the account switch with no way back to privileges.
_STAGE = (
    'set -e; dir=$1; uid=$2; gid=$3; shift 3; mount -t tmpfs -o mode=1777 mcdash "$dir/.mcdash";'
    ' mkdir "$dir/.mcdash/server"; mount --bind "$dir" "$dir/.mcdash/server";'
    ' mount --move "$dir/.mcdash" /tmp; cd /tmp/server; unset OLDPWD PWD;'
    ' exec setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all'
    ' --bounding-set=-all --no-new-privs -- "$@"'
)
_BWRAP_BASE = (
    "--unshare-all",
    "--unshare-user",
    "--share-net",
    "--disable-userns",
    "--cap-drop",
    "ALL",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--tmpfs",
    "/tmp",  # noqa: S108 - a private tmpfs inside the sandbox, not the host's /tmp
)

Account = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Plan:
    """How to start one JVM: the command (its wrapper prepends itself), cwd and environment."""

    argv: list[str]
    cwd: Path
    env: dict[str, str]


@dataclass(frozen=True, slots=True)
class Isolation:
    """What this node does to keep a game server away from everything that isn't its own."""

    dedicated_accounts: bool
    private_mounts: bool
    bwrap: str | None
    uid_base: int = 2_000_000
    uid_count: int = 60_000
    reason: str = ""
    passthrough: tuple[str, ...] = ()

    @property
    def sandbox(self) -> str:
        return "bubblewrap" if self.bwrap else "none"

    @property
    def data_dir_mode(self) -> int:
        """0700, unless servers' accounts must pass through the data directory to their own."""
        return 0o711 if self.dedicated_accounts and not self.private_mounts else 0o700

    def describe(self) -> dict[str, Any]:
        """The node record's `isolation` field, shown by `mcdash up` and GET /api/v2/nodes."""
        described: dict[str, Any] = {
            "environment": "allowlisted",
            "accounts": "dedicated uid per server" if self.dedicated_accounts else "worker's user",
            "sandbox": self.sandbox,
            "summary": self.summary(),
        }
        if self.reason:
            described["note"] = self.reason
        return described

    def summary(self) -> str:
        parts = ["an allowlisted environment"]
        if self.dedicated_accounts:
            parts.append("a dedicated uid per server")
        if self.bwrap:
            parts.append("a bubblewrap sandbox (read-only system, only its own directory)")
        if not self.dedicated_accounts and not self.bwrap:
            parts.append("NO sandbox: game servers run as the worker's user and can read its files")
        return ", ".join(parts)

    # Accounts.

    def account_for(self, server_dir: Path) -> Account | None:
        """Blocking: the (uid, gid) the server runs as, allocated on first use; None = the
        worker's own. The directory's owner is the record: a new uid is the lowest one of the
        range that owns no other server directory."""
        if not self.dedicated_accounts:
            return None
        with _ALLOCATION:
            owner = server_dir.stat().st_uid
            if self.uid_base <= owner < self.uid_base + self.uid_count:
                return owner, owner
            taken = set()
            for sibling in server_dir.parent.iterdir():
                with contextlib.suppress(OSError):
                    taken.add(sibling.lstat().st_uid)
            for uid in range(self.uid_base, self.uid_base + self.uid_count):
                if uid not in taken:
                    os.lchown(server_dir, uid, uid)
                    return uid, uid
        raise RuntimeError(f"no free uid left in {self.uid_base}+{self.uid_count}")

    def prepare(self, server_dir: Path) -> Account | None:
        """Blocking: before a launch, hand the directory tree to the server's account (except
        the worker's private `.mcdash/`) and close it to everyone else."""
        account = self.account_for(server_dir)
        if account is not None:
            give_tree(server_dir, account, skip=PRIVATE)
        os.chmod(server_dir, 0o700)
        return account

    # The command line and environment.

    def plan(
        self,
        server_dir: Path,
        java: Path,
        java_args: Sequence[str],
        *,
        account: Account | None,
        source_env: Mapping[str, str],
    ) -> Plan:
        """How to run `java` (a resolved path) with `java_args` for the server in `server_dir`."""
        staged = account is not None and self.private_mounts
        seen_at = STAGED if staged else str(server_dir)
        command = [str(java), *java_args]
        home = seen_at
        if self.bwrap is not None:
            command = [*self._bwrap(seen_at, java), *command]
            home = SANDBOX_ROOT
        cwd = server_dir
        if staged and account is not None:
            uid, gid = account
            stage = [*_UNSHARE, "/bin/sh", "-c", _STAGE, "mcdash-stage", str(server_dir)]
            command = [*stage, str(uid), str(gid), *command]
            cwd = Path("/")
        elif account is not None:
            command = [*_setpriv(account), *command]
        env = {
            "PATH": f"{runtime_home(java) / 'bin'}:{_SAFE_PATH}",
            "HOME": home,
            "JAVA_HOME": str(runtime_home(java)),
            "LANG": "C.UTF-8",
        }
        env.update({key: source_env[key] for key in _PASSED_ON if source_env.get(key)})
        passed = {key: value for key, value in source_env.items() if self._passes(key)}
        env.update({key: value for key, value in passed.items() if key not in env})
        return Plan(argv=command, cwd=cwd, env=env)

    def _passes(self, name: str) -> bool:
        """Names the operator passes on (MCDASH_SERVER_ENV_PASSTHROUGH); never mcdash's own."""
        if name.startswith("MCDASH"):
            return False
        return any(
            name.startswith(rule[:-1]) if rule.endswith("*") else name == rule
            for rule in self.passthrough
        )

    def _bwrap(self, server_dir: str, java: Path) -> list[str]:
        assert self.bwrap is not None
        java_home = runtime_home(java)
        binds: list[str] = []
        if not any(java_home.is_relative_to(system) for system in _SYSTEM_DIRS):
            binds = ["--ro-bind", str(java_home), str(java_home)]
        return [
            self.bwrap,
            *_BWRAP_BASE,
            *_system_binds(),
            *binds,
            "--bind",
            server_dir,
            SANDBOX_ROOT,
            "--tmpfs",
            f"{SANDBOX_ROOT}/{PRIVATE}",
            "--remount-ro",
            "/",
            "--chdir",
            SANDBOX_ROOT,
            "--",
        ]


_ALLOCATION = threading.Lock()
_UNSHARE = ("unshare", "--mount", "--propagation", "private", "--")


def _setpriv(account: Account) -> list[str]:
    uid, gid = account
    return [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={gid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]


def _system_binds() -> list[str]:
    binds: list[str] = []
    for system in _SYSTEM_DIRS:
        binds += ["--ro-bind", system, system]
    for name in _MERGED_USR:
        top = Path("/") / name
        if top.is_symlink():
            binds += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            binds += ["--ro-bind", str(top), str(top)]
    return binds


def runtime_home(java: Path) -> Path:
    """The Java home of a `.../bin/java` executable, symlinks (Debian's alternatives) resolved."""
    return java.resolve().parent.parent


def give_tree(root: Path, account: Account, *, skip: str) -> None:
    """Blocking: chown what isn't the account's yet; symlinks themselves, never their targets,
    and never a file with other links (server.jar is a link into the shared jar cache)."""
    uid, gid = account
    top = root.lstat()
    if (top.st_uid, top.st_gid) != account:
        os.lchown(root, uid, gid)
    for current, dirs, files in os.walk(root):
        if Path(current) == root:
            dirs[:] = [name for name in dirs if name != skip]
        for name in (*dirs, *files):
            path = os.path.join(current, name)
            with contextlib.suppress(FileNotFoundError):
                st = os.lstat(path)
                shared = stat.S_ISREG(st.st_mode) and st.st_nlink > 1
                if (st.st_uid, st.st_gid) != account and not shared:
                    os.lchown(path, uid, gid)
