"""Compile the fake Minecraft server (FakeServer.java) into a runnable ``server.jar``.

The jar is cached by the SHA-256 of the source, so a test session compiles it once:
``build_fake_jar(out_dir)`` returns ``out_dir/server-<12 hex>.jar``. Copy (or link) it
to ``<server dir>/server.jar`` and run ``java -Xmx512M -Xms512M -jar server.jar nogui``.

Also holds small readers for the fake's world format, for tests of backups.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("FakeServer.java")
HOSTILE = Path(__file__).with_name("HostileProbe.java")
INSTALLER = Path(__file__).with_name("FakeInstaller.java")


def _tool(name: str) -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(
            f"`{name}` was not found (PATH or JAVA_HOME): a JDK 17+ is needed to build "
            "the fake Minecraft server for the tests"
        )
    return found


def _run(args: list[str]) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )


def build_fake_jar(out_dir: Path) -> Path:
    """Compile FakeServer.java and pack it as a jar in out_dir; reuse a cached build."""
    return _build(out_dir, "server", [SOURCE], main="FakeServer")


def build_hostile_jar(out_dir: Path) -> Path:
    """The fake server behind HostileProbe, which first attacks what runs it (see its header)."""
    return _build(out_dir, "hostile", [SOURCE, HOSTILE], main="HostileProbe")


def build_fake_installer(out_dir: Path, *, unix_args: str, minecraft: str, fail: bool) -> Path:
    """A stand-in Forge/NeoForge installer (FakeInstaller.java) that installs the fake server
    under `unix_args`'s directory, or fails half way."""
    settings = f"unix_args={unix_args}\nminecraft={minecraft}\nfail={str(fail).lower()}\n"
    return _build(
        out_dir,
        "installer",
        [SOURCE, INSTALLER],
        main="FakeInstaller",
        resources={"fake-installer.properties": settings},
    )


def _build(
    out_dir: Path,
    name: str,
    sources: list[Path],
    *,
    main: str,
    resources: dict[str, str] | None = None,
) -> Path:
    resources = resources or {}
    packed_in = b"".join(source.read_bytes() for source in sources) + repr(resources).encode()
    digest = hashlib.sha256(packed_in).hexdigest()[:12]
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}-{digest}.jar"
    if target.is_file():
        return target
    javac, jar = _tool("javac"), _tool("jar")
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".build-") as work:
        classes = Path(work) / "classes"
        classes.mkdir()
        compile_ = [javac, "--release", "17", "-encoding", "UTF-8", "-d", str(classes)]
        _run([*compile_, *map(str, sources)])
        for resource, text in resources.items():
            (classes / resource).write_text(text)
        packed = Path(work) / "server.jar"
        _run(
            [jar, "--create", "--file", str(packed), "--main-class", main, "-C", str(classes), "."]
        )
        packed.replace(target)  # atomic, so parallel workers never see half a jar
    return target


# ---- the fake's world format -------------------------------------------------------------


def region_content(index: int, generation: int, size: int = 4096) -> bytes:
    """Bytes of a cleanly saved world/region/r.<index>.0.mca at a generation."""
    header = f"generation={generation}\n"
    unit = f"r.{index}.0@{generation};"
    repeat = max(0, size - len(header)) // len(unit) + 1
    return (header + unit * repeat).encode("ascii")[:size]


def world_generation(world: Path) -> int:
    """The generation recorded in world/level.dat."""
    match = re.search(r"generation=(\d+)", (world / "level.dat").read_text("ascii"))
    if match is None:
        raise ValueError(f"{world / 'level.dat'} has no generation")
    return int(match.group(1))


def verify_world(world: Path, *, region_files: int = 2, region_bytes: int = 4096) -> int:
    """Check a (copied) world is one consistent save; return its generation.

    Raises ValueError when a region file is torn, was written by the chunk writer after
    the last save, or belongs to another generation than level.dat.
    """
    generation = world_generation(world)
    for index in range(region_files):
        path = world / "region" / f"r.{index}.0.mca"
        if path.read_bytes() != region_content(index, generation, region_bytes):
            raise ValueError(f"{path} is not a clean save of generation {generation}")
    return generation
