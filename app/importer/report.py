"""What an import did or, in a dry run, would do: counts per V1 table and every row left out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table


@dataclass(frozen=True, slots=True)
class Skipped:
    table: str
    row_id: object
    reason: str


@dataclass
class Report:
    """`new` rows written by this run, `present` ones an earlier run wrote, `skipped` rows."""

    dry_run: bool = False
    new: Counter[str] = field(default_factory=Counter)
    present: Counter[str] = field(default_factory=Counter)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def imported(self, table: str, *, existed: bool = False) -> None:
        (self.present if existed else self.new)[table] += 1

    def skip(self, table: str, row_id: object, reason: str) -> None:
        self.skipped.append(Skipped(table, row_id, reason))

    def note(self, text: str) -> None:
        self.notes.append(text)

    @property
    def total_new(self) -> int:
        return sum(self.new.values())

    def as_dict(self) -> dict[str, Any]:
        tables = sorted({*self.new, *self.present, *(s.table for s in self.skipped)})
        return {
            "dry_run": self.dry_run,
            "tables": {
                table: {
                    "new": self.new[table],
                    "present": self.present[table],
                    "skipped": sum(1 for s in self.skipped if s.table == table),
                }
                for table in tables
            },
            "skipped": [
                {"table": s.table, "id": s.row_id, "reason": s.reason} for s in self.skipped
            ],
            "notes": list(self.notes),
        }

    def render(self, console: Console) -> None:
        summary = self.as_dict()
        title = "V1 import (dry run: nothing written)" if self.dry_run else "V1 import"
        table = Table(title=title)
        table.add_column("V1 table")
        table.add_column("would import" if self.dry_run else "new", justify="right")
        table.add_column("already imported", justify="right")
        table.add_column("not imported", justify="right")
        for name, counts in summary["tables"].items():
            table.add_row(name, str(counts["new"]), str(counts["present"]), str(counts["skipped"]))
        console.print(table)
        for skipped in self.skipped:
            console.print(f"not imported: {skipped.table} {skipped.row_id}: {skipped.reason}")
        for note in self.notes:
            console.print(f"note: {note}")


class Copies:
    """One progress bar per copy of a server directory or backup archive, on stderr."""

    def __init__(self, console: Console, *, enabled: bool) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not enabled,
        )

    def __enter__(self) -> Copies:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    @contextmanager
    def copy(self, description: str, total: int) -> Iterator[CopyBar]:
        task = self._progress.add_task(description, total=total)
        try:
            yield CopyBar(self._progress, task)
        finally:
            self._progress.update(task, completed=total)


class CopyBar:
    def __init__(self, progress: Progress, task: Any) -> None:
        self._progress = progress
        self._task = task

    def advance(self, amount: int) -> None:
        self._progress.advance(self._task, amount)
