"""The files domain: path rules, text detection, ETags, diffs, and the directory walker."""

from __future__ import annotations

import os

import pytest

from app.files.domain.model import (
    FileConflict,
    FileMissing,
    etag_matches,
    etag_of,
    looks_like_text,
    sha256_of,
    unified_diff,
)
from app.files.domain.paths import FilePath, InvalidPath, PathForbidden
from app.files.infrastructure.tree import Tree


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        pytest.param("", InvalidPath, id="empty"),
        pytest.param(".", InvalidPath, id="only-dot"),
        pytest.param("../x", InvalidPath, id="dot-dot"),
        pytest.param("a/../../x", InvalidPath, id="dot-dot-inside"),
        pytest.param("a/..", InvalidPath, id="trailing-dot-dot"),
        pytest.param("/etc/passwd", InvalidPath, id="absolute"),
        pytest.param("a\\..\\b", InvalidPath, id="backslashes"),
        pytest.param("a\x00b", InvalidPath, id="nul-byte"),
        pytest.param("a\nb", InvalidPath, id="newline"),
        pytest.param("%2e%2e/x", InvalidPath, id="encoded-dots"),
        pytest.param("a%2Fb", InvalidPath, id="encoded-slash"),
        pytest.param("%252e%252e", InvalidPath, id="double-encoded"),
        pytest.param("x" * 256, InvalidPath, id="name-256-bytes"),
        pytest.param("é" * 128, InvalidPath, id="name-256-utf8-bytes"),
        pytest.param("/".join(["d" * 200] * 21), InvalidPath, id="path-over-4096-bytes"),
        pytest.param(".mcdash/console.in", PathForbidden, id="control-directory"),
        pytest.param("world/.mcdash-tmp-abc", PathForbidden, id="temp-file"),
    ],
)
def test_bad_paths_are_refused(raw, error):
    with pytest.raises(error):
        FilePath.parse(raw)


@pytest.mark.parametrize(
    ("raw", "parts"),
    [
        pytest.param("ops.json", ("ops.json",), id="plain"),
        pytest.param("./world//region/r.0.0.mca", ("world", "region", "r.0.0.mca"), id="dots"),
        pytest.param("wörld/日本.txt", ("wörld", "日本.txt"), id="unicode"),
        pytest.param("world/..hidden", ("world", "..hidden"), id="dot-dot-prefix-name"),
        pytest.param("x" * 255, ("x" * 255,), id="name-255-bytes"),
        pytest.param("plugins/100%.yml", ("plugins", "100%.yml"), id="percent-sign"),
    ],
)
def test_good_paths_are_normalized(raw, parts):
    assert FilePath.parse(raw).parts == parts


def test_root_only_where_allowed_and_jar_is_read_only():
    assert FilePath.parse("", allow_root=True).is_root
    FilePath.parse("server.jar")  # readable
    with pytest.raises(PathForbidden):
        FilePath.parse("server.jar").check_writable()
    with pytest.raises(PathForbidden):
        FilePath.parse("fabric-server-launch.jar").check_writable()
    FilePath.parse("plugins/server.jar").check_writable()


@pytest.mark.parametrize(
    ("head", "text"),
    [
        pytest.param(b"motd=hi\n", True, id="ascii"),
        pytest.param("日本語".encode(), True, id="utf8"),
        pytest.param(b"", True, id="empty"),
        pytest.param(b"a\x00b", False, id="nul"),
        pytest.param(b"\xff\xfe\x00", False, id="utf16-bom"),
        pytest.param(b"caf\xe9", False, id="latin1"),
        pytest.param(b"x" * 8191 + "é".encode(), True, id="multibyte-cut-by-the-8k-sample"),
        pytest.param(b"x" * 10 + "é".encode()[:1], False, id="truncated-multibyte-short-file"),
    ],
)
def test_text_detection(head, text):
    assert looks_like_text(head) is text


def test_etags_are_strong_quoted_hashes():
    sha = sha256_of(b"[]\n")
    assert etag_of(sha) == f'"{sha}"'
    assert etag_matches(f'"{sha}"', sha)
    assert etag_matches(f'"other", "{sha}"', sha)
    assert etag_matches("*", sha)
    assert not etag_matches(f'W/"{sha}"', sha)
    assert not etag_matches(sha, sha)


def test_unified_diff():
    diff = unified_diff("a\nb\n", "a\nc\n", old_label="f@1", new_label="f")
    assert diff.splitlines() == ["--- f@1", "+++ f", "@@ -1,2 +1,2 @@", " a", "-b", "+c"]
    assert unified_diff("same\n", "same\n", old_label="x", new_label="y") == ""


def test_tree_writes_atomically_and_keeps_the_mode(tmp_path):
    root = tmp_path / "srv"
    (root / "cfg").mkdir(parents=True)
    target = root / "cfg" / "run.sh"
    target.write_text("old")
    target.chmod(0o750)
    with Tree(root) as tree:
        tree.write(FilePath.parse("cfg/run.sh"), b"new")
        state = tree.read_state(FilePath.parse("cfg/run.sh"), keep=10)
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o750
    assert state.sha256 == sha256_of(b"new")
    assert state.content == b"new"
    assert os.listdir(root / "cfg") == ["run.sh"]


def test_tree_refuses_a_file_used_as_a_directory_and_missing_parents(tmp_path):
    (tmp_path / "file").write_text("x")
    with Tree(tmp_path) as tree:
        with pytest.raises(FileConflict):
            tree.write(FilePath.parse("file/child"), b"x")
        with pytest.raises(FileMissing), tree.directory(FilePath.parse("nope/deeper")):
            pass


def test_tree_refuses_a_directory_swapped_for_an_outside_symlink(tmp_path):
    root, outside = tmp_path / "srv", tmp_path / "outside"
    (root / "d").mkdir(parents=True)
    outside.mkdir()
    with Tree(root) as tree:
        (root / "d").rmdir()
        os.symlink(outside, root / "d")
        with pytest.raises(PathForbidden):
            tree.write(FilePath.parse("d/x.txt"), b"pwned")
    assert list(outside.iterdir()) == []
