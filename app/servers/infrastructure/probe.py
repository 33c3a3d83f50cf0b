"""How this machine can confine game servers, found by trying it once at worker start."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import structlog

from app.servers.infrastructure.sandbox import PRIVATE, Account, Isolation, Plan

log = structlog.get_logger(__name__)

SandboxMode = Literal["auto", "bubblewrap", "none"]


class SandboxUnavailable(RuntimeError):
    """bubblewrap was required by the settings but cannot run here."""


def detect_isolation(
    mode: SandboxMode = "auto",
    *,
    uid_base: int = 2_000_000,
    uid_count: int = 60_000,
    passthrough: Sequence[str] = (),
) -> Isolation:
    """Blocking: what this machine allows, found by trying it. `bubblewrap` insists on the
    sandbox, `none` skips it."""
    root = os.geteuid() == 0
    with tempfile.TemporaryDirectory(prefix="mcdash-probe-") as scratch:
        probe = Path(scratch) / "server"
        (probe / PRIVATE).mkdir(parents=True)
        account = (uid_base, uid_base) if root else None
        if account is not None:
            os.chown(probe, *account)
        mounts = root and _failure(_probe(probe, account, private_mounts=True, bwrap=None)) is None
        bwrap, reason = None, ""
        found = shutil.which("bwrap")
        if mode == "none":
            reason = "the sandbox is turned off (MCDASH_SERVER_SANDBOX=none)"
        elif found is None:
            reason = "bubblewrap is not installed (Debian package `bubblewrap`)"
        else:
            error = _failure(_probe(probe, account, private_mounts=mounts, bwrap=found))
            bwrap, reason = (found, "") if error is None else (None, error)
        if bwrap is None and mode == "bubblewrap":
            raise SandboxUnavailable(f"MCDASH_SERVER_SANDBOX=bubblewrap, but {reason}")
    if root and not mounts:
        reason = "; ".join(
            filter(None, [reason, "no private mount namespace: the data directory is 0711"])
        )
    isolation = Isolation(
        dedicated_accounts=root,
        private_mounts=mounts,
        bwrap=bwrap,
        uid_base=uid_base,
        uid_count=uid_count,
        reason=reason,
        passthrough=tuple(passthrough),
    )
    log.info("server_isolation", **isolation.describe())
    return isolation


def _probe(
    directory: Path, account: Account | None, *, private_mounts: bool, bwrap: str | None
) -> Plan:
    """The plan that would start a server, with `true` standing in for the JVM."""
    trial = Isolation(
        dedicated_accounts=account is not None, private_mounts=private_mounts, bwrap=bwrap
    )
    true = Path(shutil.which("true") or "/bin/true").resolve()
    return trial.plan(directory, true, [], account=account, source_env={})


def _failure(plan: Plan) -> str | None:
    try:
        result = subprocess.run(
            plan.argv,
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
            cwd=plan.cwd,
            env=plan.env,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"the sandbox could not start: {exc}"
    if result.returncode != 0:
        return f"the sandbox cannot start here: {(result.stderr or result.stdout).strip()[:300]}"
    return None
