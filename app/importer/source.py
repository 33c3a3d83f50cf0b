"""V1's database and working directory, read-only: its schema recognized, its rows as dicts.

V1 (mmiura-2351/mc-server-dashboard-api) made its tables with `create_all` and no migrations,
so an old installation may still carry dropped columns (the `templates` table,
`servers.template_id`); they are reported, never read. Timestamps are mixed: aware ones are
converted to UTC, naive ones are taken as UTC and counted.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

NAMESPACE = uuid.UUID("5b0d6f8e-2f7a-4c1e-9d35-7a1c0e9b4f21")
"""mcdash ids of imported rows are uuid5(NAMESPACE, "table:id"): a re-run finds them again."""

# The tables and columns the importer reads: a database without them is not V1's.
REQUIRED: dict[str, frozenset[str]] = {
    "users": frozenset(
        {"id", "username", "email", "hashed_password", "role", "is_active", "is_approved"}
    ),
    "servers": frozenset(
        {
            "id", "name", "description", "minecraft_version", "server_type", "directory_path",
            "port", "max_memory", "max_players", "owner_id", "is_deleted", "created_at",
        }
    ),
    "groups": frozenset({"id", "name", "description", "type", "players", "owner_id"}),
    "server_groups": frozenset({"server_id", "group_id", "priority"}),
    "backups": frozenset(
        {"id", "server_id", "name", "file_path", "file_size", "backup_type", "status"}
    ),
}  # fmt: skip
OPTIONAL = (
    "server_configurations",
    "backup_schedules",
    "backup_schedule_logs",
    "file_edit_history",
    "audit_logs",
    "resource_visibility",
    "resource_user_access",
)
LEFTOVERS = {"templates": None, "servers": "template_id"}


class NotV1(ValueError):
    """The database cannot be read, or is not a V1 database: nothing is written."""


def v1_id(table: str, row_id: object) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{table}:{row_id}")


def engine_url(database: str) -> str:
    """A URL as given, or a path to a SQLite file (V1's default, `./app.db`)."""
    if "://" in database:
        return database
    path = Path(database).expanduser()
    if not path.is_file():
        raise NotV1(f"no V1 database at {path}")
    return f"sqlite:///{path.resolve()}"


@dataclass
class V1Source:
    """Every row the importer needs, read at once (V1 installations are small)."""

    root: Path
    tables: dict[str, list[dict[str, Any]]]
    leftovers: list[str] = field(default_factory=list)
    naive_timestamps: int = 0

    def rows(self, table: str) -> list[dict[str, Any]]:
        return self.tables.get(table, [])

    def when(self, value: object) -> datetime | None:
        """A V1 timestamp in UTC; a naive one is taken as UTC (and counted for the report)."""
        if value is None or value == "":
            return None
        if isinstance(value, datetime):
            moment = value
        else:
            try:
                moment = datetime.fromisoformat(str(value))
            except ValueError:
                return None
        if moment.tzinfo is None:
            self.naive_timestamps += 1
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


def read_source(database: str, root: Path) -> V1Source:
    """Blocking: check the schema, then read the rows; NotV1 says why it cannot."""
    if not root.is_dir():
        raise NotV1(f"V1's working directory {root} is not a directory")
    try:
        engine = sa.create_engine(engine_url(database))
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise NotV1(f"cannot open the V1 database {database!r}: {exc}") from exc
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            present = set(inspector.get_table_names())
            columns = {name: _columns(inspector, name) for name in present}
            _check(present, columns)
            leftovers = [
                f"{table}.{column}" if column else f"table {table}"
                for table, column in LEFTOVERS.items()
                if table in present and (column is None or column in columns[table])
            ]
            tables = {
                name: [dict(row._mapping) for row in conn.execute(_select_all(name))]
                for name in (*REQUIRED, *OPTIONAL)
                if name in present
            }
    except sa.exc.SQLAlchemyError as exc:
        raise NotV1(f"cannot read the V1 database: {str(exc).splitlines()[0]}") from exc
    finally:
        engine.dispose()
    for group in tables.get("groups", []):
        group["players"] = _players(group.get("players"))
    return V1Source(root=root, tables=tables, leftovers=leftovers)


def _select_all(table: str) -> sa.Select[Any]:
    return sa.select(sa.text("*")).select_from(sa.table(table))


def _columns(inspector: sa.Inspector, table: str) -> set[str]:
    return {column["name"] for column in inspector.get_columns(table)}


def _check(present: set[str], columns: dict[str, set[str]]) -> None:
    missing = [table for table in REQUIRED if table not in present]
    if len(missing) == len(REQUIRED):
        raise NotV1("this is not a V1 database: none of its tables users, servers, groups, backups")
    if missing:
        raise NotV1(f"not a V1 schema this importer knows: no table {', '.join(missing)}")
    for table, needed in REQUIRED.items():
        absent = sorted(needed - columns[table])
        if absent:
            raise NotV1(
                f"not a V1 schema this importer knows: {table} has no column {', '.join(absent)}"
            )


def _players(raw: object) -> list[dict[str, Any]]:
    """V1's players JSON column: a list of {uuid, username, added_at}; anything else is empty."""
    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw)
        except ValueError:
            return []
    if not isinstance(raw, list):
        return []
    return [item for item in raw if isinstance(item, dict)]
