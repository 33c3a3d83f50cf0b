"""`mcdash import-v1`: one run over a V1 installation, phase by phase, each row in its own
transaction under an id derived from its V1 id, so a re-run finds what an earlier (or killed)
run wrote and goes on from there."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console

from app.bootstrap import Container, bootstrap
from app.importer.report import Copies, Report
from app.importer.source import V1Source, read_source, v1_id
from app.settings import Settings
from app.shared.context import provenance
from app.shared.db import domain_events
from app.shared.migrations import head_revisions

CHUNK = 1 << 20
ID_SLICE = 5000


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    database: str
    root: Path
    dry_run: bool = False
    include_deleted: bool = False
    node: str | None = None
    keep_jars: bool = False
    progress: bool = True


@dataclass(frozen=True, slots=True)
class ImportedServer:
    id: uuid.UUID
    node: str


@dataclass
class Run:
    """What the phases share: the app, the V1 rows, the report, and the ids mapped so far."""

    container: Container
    source: V1Source
    options: Options
    report: Report
    copies: Copies
    users: dict[int, uuid.UUID] = field(default_factory=dict)
    servers: dict[int, ImportedServer] = field(default_factory=dict)

    @property
    def dry_run(self) -> bool:
        return self.options.dry_run

    def deps(self, context: str) -> dict[str, Any]:
        return self.container.deps[context]

    @property
    def engine(self) -> Any:
        return self.container.infra.engine

    async def existing(self, table: sa.Table, ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """Which of `ids` an earlier run already wrote into `table` (asked in slices: a query
        takes at most 32767 parameters)."""
        found: set[uuid.UUID] = set()
        async with self.engine.connect() as conn:
            for start in range(0, len(ids), ID_SLICE):
                chosen = ids[start : start + ID_SLICE]
                rows = await conn.execute(sa.select(table.c.id).where(table.c.id.in_(chosen)))
                found.update(row[0] for row in rows)
        return found

    async def imported_streams(self, ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """Aggregates that already have events in the store (for those without a table row)."""
        if not ids:
            return set()
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(domain_events.c.aggregate_id)
                .where(domain_events.c.aggregate_id.in_(ids))
                .distinct()
            )
            return {row[0] for row in rows}


async def import_each(
    run: Run,
    v1_table: str,
    rows: list[dict[str, Any]],
    table: sa.Table,
    one: Callable[[Run, dict[str, Any]], Awaitable[str | None]],
) -> None:
    """Import with `one` each row an earlier run did not; `one` returns why it left a row out,
    or None once it imported it."""
    ids = {row["id"]: v1_id(v1_table, row["id"]) for row in rows}
    present = await run.existing(table, list(ids.values()))
    for row in rows:
        if ids[row["id"]] in present:
            run.report.imported(v1_table, existed=True)
            continue
        reason = await one(run, row)
        if reason is None:
            run.report.imported(v1_table)
        else:
            run.report.skip(v1_table, row["id"], reason)


class ImportRefused(ValueError):
    """mcdash is not ready for the import (not migrated, no node to take the servers)."""


async def _preflight(container: Container, source: V1Source, options: Options) -> None:
    try:
        async with container.infra.engine.connect() as conn:
            applied = {row[0] for row in await conn.execute(sa.text(ALEMBIC_VERSION))}
    except sa.exc.DBAPIError as exc:
        raise ImportRefused(
            f"mcdash's database is not migrated or not reachable ({type(exc.orig).__name__}): "
            "run mcdash migrate first"
        ) from exc
    if applied != head_revisions():
        raise ImportRefused(f"mcdash's database is at {sorted(applied)}: run mcdash migrate first")
    if options.dry_run or not source.rows("servers"):
        return
    online = {node.name for node in await container.deps["servers"]["nodes"].nodes()}
    if not online or (options.node and options.node not in online):
        which = f"node {options.node} is not" if options.node else "no node is"
        raise ImportRefused(
            f"{which} online to take the servers: start its worker (mcdash worker --node NAME)"
        )


ALEMBIC_VERSION = "SELECT version_num FROM alembic_version"


@contextmanager
def from_v1(table: str, row_id: object) -> Iterator[None]:
    """Events appended inside are marked as imported from that V1 row."""
    with provenance(imported_from="v1", v1_table=table, v1_id=f"{table}:{row_id}"):
        yield


async def file_chunks(path: Path, bar: Any = None) -> AsyncIterator[bytes]:
    """A file's bytes, read off the event loop."""
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, CHUNK):
            if bar is not None:
                bar.advance(len(chunk))
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


def resolve(root: Path, stored: str | None) -> Path | None:
    """A path V1 stored (absolute for live servers, relative to its working directory else)."""
    if not stored:
        return None
    path = Path(stored)
    if path.is_absolute() and path.exists():
        return path
    relative = root / stored.lstrip("/") if not path.is_absolute() else root / path.name
    return relative if relative.exists() else None


async def import_v1(settings: Settings, options: Options, console: Console) -> Report:
    """Read V1, refuse what is not V1 before writing anything, then run every phase."""
    from app.importer import audit, files, groups, servers, users
    from app.importer import backups as backup_phase

    source = await asyncio.to_thread(read_source, options.database, options.root)
    report = Report(dry_run=options.dry_run)
    for leftover in source.leftovers:
        report.note(f"leftover V1 template column {leftover} is present; it is not imported")
    container = bootstrap(settings)
    try:
        await _preflight(container, source, options)
        with Copies(console, enabled=options.progress and not options.dry_run) as copies:
            run = Run(container, source, options, report, copies)
            await users.import_users(run)
            await servers.import_servers(run)
            await groups.import_groups(run)
            await backup_phase.import_backups(run)
            await backup_phase.import_schedules(run)
            await files.import_history(run)
            await audit.import_audit(run)
            files.report_unmapped(run)
    finally:
        await container.close()
    if source.naive_timestamps:
        report.note(f"{source.naive_timestamps} naive V1 timestamps were taken as UTC")
    return report
