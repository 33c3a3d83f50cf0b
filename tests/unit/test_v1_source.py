"""The V1 side of the importer, without mcdash: its schema recognized or refused, its rows read,
its intervals turned into cron expressions."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.importer.backups import interval_cron
from app.importer.source import NAMESPACE, NotV1, read_source, v1_id
from app.importer.trees import digest_and_pack
from app.servers.infrastructure.trees import tree_digest
from tests.v1_install import SCHEMA, build_v1, not_v1


@pytest.mark.parametrize(
    ("hours", "cron", "approximated"),
    [
        (1, "0 * * * *", False),
        (6, "0 */6 * * *", False),
        (24, "0 0 * * *", False),
        (48, "0 0 */2 * *", True),
        (168, "0 0 * * 0", False),
        (5, "0 */4 * * *", True),
        (36, "0 */12 * * *", True),
    ],
    ids=["hourly", "6h", "daily", "2-days", "weekly", "5h-no-cron-form", "36h-no-cron-form"],
)
def test_an_interval_becomes_a_cron_expression(hours, cron, approximated):
    expression, note = interval_cron(hours)
    assert expression == cron
    assert (note is not None) is approximated


def test_ids_are_uuid5_of_table_and_v1_id():
    assert v1_id("servers", 3) == uuid.uuid5(NAMESPACE, "servers:3")
    assert v1_id("servers", 3) != v1_id("backups", 3)


def test_a_v1_database_is_read_and_its_timestamps_made_utc(tmp_path):
    v1 = build_v1(tmp_path / "v1")
    source = read_source(str(v1.database), v1.root)
    assert [row["username"] for row in source.rows("users")] == ["alice", "bob", "Bob", "carol"]
    assert [p["username"] for p in source.rows("groups")[0]["players"]] == [
        "Steve",
        "Alex",
        "Steve",
    ]
    assert source.leftovers == []
    assert source.when("2024-05-01 10:00:00") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    aware = datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert source.when(aware.isoformat()) == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert source.naive_timestamps == 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path: not_v1(path), "not a V1 database"),
        (lambda path: path.write_bytes(b"not sqlite at all" * 100), "cannot read the V1 database"),
        (
            lambda path: _v1_without(path, "ALTER TABLE backups DROP COLUMN file_size"),
            "backups has no column file_size",
        ),
        (lambda path: _v1_without(path, "DROP TABLE server_groups"), "no table server_groups"),
    ],
    ids=["another-apps-database", "not-a-database", "missing-column", "missing-table"],
)
def test_what_is_not_a_v1_schema_is_refused(tmp_path, make, message):
    v1 = build_v1(tmp_path / "v1")
    other = tmp_path / "other.db"
    make(other)
    with pytest.raises(NotV1, match=message):
        read_source(str(other), v1.root)


def _v1_without(path, change: str) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA.read_text())
    conn.execute(change)
    conn.commit()
    conn.close()


def test_the_packed_tree_has_the_digest_the_node_computes_without_jar_and_pid(tmp_path):
    v1 = build_v1(tmp_path / "v1")
    digest, _ = digest_and_pack(v1.server_dir, tmp_path / "tree.tar")
    (v1.server_dir / "server.pid").unlink()
    assert digest == tree_digest(v1.server_dir)  # the node's digest leaves server.jar out too
