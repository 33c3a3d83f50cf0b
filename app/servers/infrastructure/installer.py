"""What each server type needs in its directory on the node, and how its JVM is started.

Vanilla, Paper and custom servers get their verified jar as `server.jar` and start with `-jar`.
Fabric gets the vanilla jar as `server.jar` and its launcher (pinned by SHA-256), which runs it.
Forge and NeoForge run their installer (checked against Maven's `.sha1`) in a staging directory;
only a complete install is moved into the server directory, which a failure leaves as it was.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from app.servers.domain.model import ServerConfig, ServerType
from app.servers.infrastructure.catalog import JarSpec, VersionCatalog, required_java_major
from app.servers.infrastructure.files import ServerDirectory
from app.servers.infrastructure.jars import JarCache
from app.servers.infrastructure.loaders import LoaderSpec
from app.shared.domain import DomainError
from app.shared.files import write_atomically

FABRIC_LAUNCHER = "fabric-server-launch.jar"
FABRIC_PROPERTIES = "fabric-server-launcher.properties"
JVM_ARGS = "user_jvm_args.txt"
INSTALLED_MARKER = "installed-loader"
"""In `.mcdash/`: which loader build the directory holds, so a start installs only once."""
TAIL_LINES = 15
TAIL_LINE_CHARS = 300
"""The last lines a failed install shows, each cut to this: the start failure stays short."""
_LEFT_BEHIND = frozenset({"installer.jar", "installer.jar.log"})


class InstallFailed(DomainError):
    status = 502
    slug = "install-failed"
    title = "Loader install failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Artifacts:
    """What a start of one server needs, fetched and verified into the jar cache."""

    server_jar: Path | None
    """Becomes `server.jar` (Fabric's is the vanilla jar its launcher runs)."""
    launcher: Path | None = None
    installer: Path | None = None
    loader: LoaderSpec | None = None
    java_major: int

    def arguments(self) -> list[str]:
        """The JVM's arguments after the heap flags."""
        if self.loader is not None and self.loader.unix_args is not None:
            return [f"@{JVM_ARGS}", f"@{self.loader.unix_args}", "nogui"]
        if self.launcher is not None:
            return ["-jar", FABRIC_LAUNCHER, "nogui"]
        return ["-jar", "server.jar", "nogui"]


async def fetch_artifacts(
    config: ServerConfig, *, catalog: VersionCatalog, jars: JarCache
) -> Artifacts:
    """The verified jars a server of this type and version starts from (uploaded ones aside)."""
    kind = config.server_type
    if kind in (ServerType.VANILLA, ServerType.PAPER, ServerType.FABRIC):
        spec = await catalog.resolve(kind.value, config.version)
        server_jar = await jars.fetch(spec)
        if kind is not ServerType.FABRIC:
            return Artifacts(server_jar=server_jar, java_major=spec.java_major)
    loader = await catalog.loaders.resolve(kind.value, config.version, config.loader_version or "")
    artifact = _artifact_spec(loader, sha1=None)
    if kind is ServerType.FABRIC:
        launcher = await jars.fetch_pinned(artifact)
        return Artifacts(
            server_jar=server_jar, launcher=launcher, loader=loader, java_major=spec.java_major
        )
    sha1 = await catalog.loaders.installer_sha1(loader)
    installer = await jars.fetch(_artifact_spec(loader, sha1=sha1))
    return Artifacts(
        server_jar=None,
        installer=installer,
        loader=loader,
        java_major=required_java_major(config.version),
    )


def _artifact_spec(loader: LoaderSpec, *, sha1: str | None) -> JarSpec:
    return JarSpec(
        server_type=loader.server_type,
        version=loader.version,
        url=loader.url,
        size=None,
        sha1=sha1,
        sha256=None,
        java_major=required_java_major(loader.version),
        file_name=loader.url.rsplit("/", 1)[-1],
    )


def install(
    directory: ServerDirectory, artifacts: Artifacts, *, java: Path, timeout: float
) -> None:
    """Blocking: put what the type needs into the directory (Forge and NeoForge: run their
    installer once per loader build). The server's own jar link is made by the caller."""
    loader = artifacts.loader
    if artifacts.launcher is not None:
        directory.install_jar(artifacts.launcher, name=FABRIC_LAUNCHER)
        write_atomically(directory.path / FABRIC_PROPERTIES, b"serverJar=server.jar\n")
    if loader is None or artifacts.installer is None or loader.unix_args is None:
        return
    marker = f"{loader.server_type} {loader.loader_version} {loader.version}".encode()
    if (directory.path / loader.unix_args).is_file() and _marker(directory) == marker:
        return
    run_installer(directory, artifacts.installer, loader, java=java, timeout=timeout)
    directory.write_private(INSTALLED_MARKER, marker)


def _marker(directory: ServerDirectory) -> bytes | None:
    try:
        return directory.read_private(INSTALLED_MARKER, limit=256)
    except OSError:
        return None


def run_installer(
    directory: ServerDirectory, installer: Path, loader: LoaderSpec, *, java: Path, timeout: float
) -> None:
    """Blocking: `java -jar installer --installServer` in a staging directory, its output
    appended to the console log; a complete install is then moved into the server directory."""
    assert loader.unix_args is not None
    staging = directory.path.parent.parent / "installs" / directory.path.name
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True, mode=0o700)
    try:
        shutil.copyfile(installer, staging / "installer.jar")
        title = f"{loader.server_type} {loader.loader_version} for Minecraft {loader.version}"
        code, tail = _run(directory, staging, java, title, timeout=timeout)
        if code != 0:
            raise InstallFailed(
                f"the {title} installer failed ({_exit(code)}); its last lines:\n" + "\n".join(tail)
            )
        if not (staging / loader.unix_args).is_file():
            raise InstallFailed(
                f"the {title} installer wrote no {loader.unix_args}; its last lines:\n"
                + "\n".join(tail)
            )
        _move_in(staging, directory.path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _exit(code: int | None) -> str:
    return "timed out" if code is None else f"exit code {code}"


def _run(
    directory: ServerDirectory, staging: Path, java: Path, title: str, *, timeout: float
) -> tuple[int | None, list[str]]:
    """The installer's exit code (None when it ran out of time) and its last lines."""
    directory.ensure_private()
    log_fd = directory.open_private("console.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(staging), "LANG": "C.UTF-8"}
    with os.fdopen(log_fd, "ab") as log:
        log.write(f"[mcdash] installing {title}\n".encode())
        process = subprocess.Popen(
            [str(java), "-jar", "installer.jar", "--installServer"],
            cwd=staging,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        timed_out = threading.Event()

        def give_up() -> None:
            timed_out.set()
            _kill_group(process)

        timer = threading.Timer(timeout, give_up)
        timer.start()
        try:
            assert process.stdout is not None
            for raw in process.stdout:
                line = raw[:4096].decode("utf-8", "replace").rstrip("\r\n")
                tail.append(line[:TAIL_LINE_CHARS])
                log.write(f"[installer] {line}\n".encode())
                log.flush()
            code: int | None = process.wait()
        finally:
            timer.cancel()
            if process.poll() is None:
                _kill_group(process)
                process.wait()
        if timed_out.is_set():
            code = None
        log.write(f"[mcdash] installer finished: {_exit(code)}\n".encode())
    return code, list(tail)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """The installer and whatever it started (they could hold its output open)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _move_in(staging: Path, server_dir: Path) -> None:
    """Blocking: the installed files replace their older copies; the owner's JVM arguments
    are kept."""
    old = staging / ".replaced"
    old.mkdir()
    for entry in sorted(staging.iterdir()):
        name = entry.name
        if name in _LEFT_BEHIND or name.startswith(".") or name.endswith(".log"):
            continue
        target = server_dir / name
        if name == JVM_ARGS and target.is_file():
            continue
        if target.is_dir() and not target.is_symlink():
            os.rename(target, old / name)
        os.replace(entry, target)
