"""A V1 installation as V1 leaves it, for the importer's tests: a SQLite database made with V1's
schema (tests/v1_schema.sql), server directories with worlds, backup archives, history files.

What it holds, and so what an import makes of it:
- users 1 alice (admin), 2 bob (user), 3 Bob (only the case differs: renamed Bob_v1),
  4 carol (unapproved);
- servers 1 survival (alice, its directory, a server.jar and a stale server.pid), 2 lost
  (bob, no directory), 3 old (deleted, archived), 4 orphan (owner 99);
- groups 1 friends (whitelist: Steve, Alex, Steve again) attached to survival at priority 5,
  2 admins (op) attached to the orphan server only;
- backups 1 (completed, archive present), 2 (size mismatch), 3 (archive missing), 4 (failed);
- a schedule of survival every 6 hours keeping 5; two versions of survival's
  server.properties in the history; an audit row and a visibility grant (reported).
"""

from __future__ import annotations

import json
import sqlite3
import tarfile
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

import bcrypt

SCHEMA = Path(__file__).with_name("v1_schema.sql")
PASSWORDS = {"alice": "Alice-V1-secret7", "bob": "Bob-V1-secret7", "Bob": "Bob2-V1-secret7"}
PLAYERS = {
    "Steve": "8667ba71-b85a-4004-af54-457a9734eed7",
    "Alex": "ec561538-f3fd-461d-aff5-086b22154bce",
    "Notch": "069a79f4-44e9-4726-a5be-fca90e38aaf5",
}
NAIVE = "2024-05-01 10:00:00.000000"


def properties(port: int) -> bytes:
    """A server.properties as Minecraft writes it: a comment, the date, keys in its order."""
    return (
        "#Minecraft server properties\n"
        "#Wed May 01 10:00:00 UTC 2024\n"
        "difficulty=hard\n"
        "enforce-whitelist=true\n"
        "max-players=12\n"
        "motd=Survival from V1\n"
        "online-mode=false\n"
        f"server-port={port}\n"
        "spawn-protection=0\n"
        "white-list=true\n"
    ).encode()


@dataclass
class V1Install:
    root: Path
    database: Path
    server_dir: Path
    backup_archive: Path
    history: list[bytes]


def _archive(source: Path, target: Path) -> None:
    """V1's backup: every file of the directory, server.jar included, names relative."""
    with tarfile.open(target, "w:gz") as tar:
        for item in sorted(source.rglob("*")):
            if item.is_file():
                tar.add(item, arcname=item.relative_to(source).as_posix())


def build_v1(
    root: Path, *, port: int = 25565, jar: bytes = b"PK\x03\x04 not a real jar", templates=False
) -> V1Install:
    root.mkdir(parents=True, exist_ok=True)
    servers = root / "servers"
    survival = servers / "survival"
    (survival / "world" / "region").mkdir(parents=True)
    (survival / "server.properties").write_bytes(properties(port))
    (survival / "eula.txt").write_text("eula=true\n")
    (survival / "world" / "level.dat").write_bytes(b"generation=3\nfrom V1\n")
    (survival / "world" / "region" / "r.0.0.mca").write_bytes(bytes(range(256)) * 64)
    (survival / "server.jar").write_bytes(jar)
    (survival / "server.pid").write_text(json.dumps({"pid": 999999, "port": port}))
    archived = servers / ".archived" / "3_20240101_000000"
    archived.mkdir(parents=True)
    (archived / "server.properties").write_bytes(properties(port + 5))
    backups = root / "backups"
    backups.mkdir()
    archive = backups / "backup_1_1_20240501_100000.tar.gz"
    _archive(survival, archive)
    damaged = backups / "backup_1_2_20240501_110000.tar.gz"
    damaged.write_bytes(archive.read_bytes())
    history = [
        properties(port).replace(b"hard", b"easy"),
        properties(port).replace(b"hard", b"normal"),
    ]
    for number, content in enumerate(history, start=1):
        blob = root / "file_history" / "1" / "server.properties" / f"v{number}"
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(content)

    database = root / "app.db"
    conn = sqlite3.connect(database)
    conn.executescript(SCHEMA.read_text())
    if templates:
        conn.executescript(
            "CREATE TABLE templates (id INTEGER PRIMARY KEY, name VARCHAR(100));"
            "ALTER TABLE servers ADD COLUMN template_id INTEGER REFERENCES templates(id);"
        )

    def hashed(name: str) -> str:
        return bcrypt.hashpw(PASSWORDS[name].encode(), bcrypt.gensalt(rounds=4)).decode()

    conn.executemany(
        "INSERT INTO users (id, username, email, hashed_password, role, is_active, is_approved,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (1, "alice", "alice@example.com", hashed("alice"), "admin", 1, 1, NAIVE),
            (2, "bob", "bob@example.com", hashed("bob"), "user", 1, 1, NAIVE),
            (3, "Bob", "bob2@example.com", hashed("Bob"), "operator", 1, 1, NAIVE),
            (4, "carol", "carol@example.com", hashed("bob"), "user", 1, 0, NAIVE),
        ],
    )
    conn.executemany(
        "INSERT INTO servers (id, name, description, minecraft_version, server_type, status,"
        " directory_path, port, max_memory, max_players, owner_id, is_deleted, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (1, "survival", "from V1", "1.20.4", "vanilla", "running", str(survival), port,
             1024, 12, 1, 0, "2024-05-01 10:00:00+00:00"),
            (2, "lost", None, "1.20.4", "paper", "stopped", str(servers / "lost"), port + 1,
             1024, 20, 2, 0, NAIVE),
            (3, "old", None, "1.19.4", "vanilla", "stopped", "servers/.archived/3_20240101_000000",
             port + 5, 1024, 20, 1, 1, NAIVE),
            (4, "orphan", None, "1.20.4", "vanilla", "stopped", str(servers / "orphan"),
             port + 2, 1024, 20, 99, 0, NAIVE),
        ],
    )  # fmt: skip
    conn.executemany(
        "INSERT INTO server_configurations (server_id, configuration_key, configuration_value)"
        " VALUES (?, ?, ?)",
        [(1, "motd", "Survival from V1"), (1, "difficulty", "peaceful")],
    )
    friends = [
        {"uuid": PLAYERS["Steve"], "username": "Steve", "added_at": NAIVE},
        {"uuid": PLAYERS["Alex"], "username": "Alex", "added_at": NAIVE},
        {"uuid": PLAYERS["Steve"], "username": "Steve", "added_at": NAIVE},
    ]
    admins = [{"uuid": PLAYERS["Notch"], "username": "Notch", "added_at": NAIVE}]
    conn.executemany(
        "INSERT INTO groups (id, name, description, type, players, owner_id, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (1, "friends", "V1 friends", "whitelist", json.dumps(friends), 1, NAIVE),
            (2, "admins", None, "op", json.dumps(admins), 1, NAIVE),
        ],
    )
    conn.executemany(
        "INSERT INTO server_groups (server_id, group_id, priority) VALUES (?, ?, ?)",
        [(1, 1, 5), (4, 2, 1)],
    )
    size = archive.stat().st_size
    conn.executemany(
        "INSERT INTO backups (id, server_id, name, file_path, file_size, backup_type, status,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (1, 1, "nightly", f"backups/{archive.name}", size, "manual", "completed", NAIVE),
            (2, 1, "damaged", f"backups/{damaged.name}", size + 7, "scheduled", "completed",
             NAIVE),
            (3, 1, "gone", "backups/backup_1_3_x.tar.gz", 10, "manual", "completed", NAIVE),
            (4, 1, "broken", "backups/backup_1_4_x.tar.gz", 0, "manual", "failed", NAIVE),
        ],
    )  # fmt: skip
    conn.execute(
        "INSERT INTO backup_schedules (server_id, interval_hours, max_backups, enabled,"
        " only_when_running, next_backup_at) VALUES (1, 6, 5, 1, 0, ?)",
        (NAIVE,),
    )
    conn.executemany(
        "INSERT INTO file_edit_history (server_id, file_path, version_number, backup_file_path,"
        " file_size, content_hash, editor_user_id, created_at, description)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (1, "server.properties", number, f"file_history/1/server.properties/v{number}",
             len(content), sha256(content).hexdigest(), 1, NAIVE, f"edit {number}")
            for number, content in enumerate(history, start=1)
        ],
    )  # fmt: skip
    conn.execute(
        "INSERT INTO audit_logs (user_id, action, resource_type, resource_id, details,"
        " ip_address, created_at) VALUES (1, 'server_start', 'server', 1, '{}', '127.0.0.1', ?)",
        (NAIVE,),
    )
    conn.execute(
        "INSERT INTO resource_visibility (resource_type, resource_id, visibility_type)"
        " VALUES ('SERVER', 1, 'SPECIFIC_USERS')"
    )
    conn.commit()
    conn.close()
    return V1Install(root, database, survival, archive, history)


def not_v1(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total INTEGER)")
    conn.commit()
    conn.close()
    return path


def archive_members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


__all__ = ["PASSWORDS", "PLAYERS", "V1Install", "archive_members", "build_v1", "not_v1"]
