"""Running Alembic from code: the CLI, the readiness probe and the tests share this.

Alembic is imported only to migrate: the API needs no more of it than the head revisions its
readiness probe compares the database with, and those are read from the migration files
themselves (`head_revisions`), which keeps Alembic and Mako (9 MB) out of every API process.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VERSIONS = PROJECT_ROOT / "migrations" / "versions"


def alembic_config(database_url: str | None = None) -> Config:
    from alembic.config import Config

    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    if database_url:
        config.attributes["database_url"] = database_url
    return config


def head_revisions(versions: Path = VERSIONS) -> set[str]:
    """The revisions no other one follows, from each script's `revision` and `down_revision`
    (what Alembic's ScriptDirectory.get_heads() answers; a test holds the two together)."""
    revisions: set[str] = set()
    followed: set[str] = set()
    for script in versions.glob("*.py"):
        found = _assigned(script, ("revision", "down_revision"))
        if "revision" not in found:
            raise ValueError(f"{script.name} names no revision")
        revisions.add(str(found["revision"]))
        down = found.get("down_revision")
        if isinstance(down, str):
            followed.add(down)
        elif isinstance(down, tuple | list):
            followed.update(str(parent) for parent in down)
    return revisions - followed


def _assigned(script: Path, names: tuple[str, ...]) -> dict[str, object]:
    """The literal values a script's module level assigns to `names`."""
    values: dict[str, object] = {}
    for node in ast.parse(script.read_text(encoding="utf-8"), filename=str(script)).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            target, value = node.target.id, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            first = node.targets[0]
            target, value = (first.id if isinstance(first, ast.Name) else ""), node.value
        else:
            continue
        if target in names and value is not None:
            values[target] = ast.literal_eval(value)
    return values


def upgrade(database_url: str, revision: str = "head") -> None:
    """Blocking: run from a thread or a CLI, never on a running event loop."""
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(database_url), revision)
