"""V1's file edit history, every version with its blob (checked against V1's SHA-256), and the
V1 rows mcdash has no place for yet, reported."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from typing import Any

from app.files.domain.events import FileModified
from app.files.domain.model import FileVersion, Outcome, VersionAction
from app.files.domain.paths import FilePath
from app.files.infrastructure.tables import file_versions
from app.importer.run import Run, from_v1, import_each, resolve
from app.importer.source import v1_id
from app.shared.domain import DomainError


async def import_history(run: Run) -> None:
    rows = sorted(
        run.source.rows("file_edit_history"),
        key=lambda row: (row["server_id"], row["file_path"], row["version_number"]),
    )
    await import_each(run, "file_edit_history", rows, file_versions, _version)


async def _version(run: Run, row: dict[str, Any]) -> str | None:
    server = run.servers.get(row["server_id"])
    if server is None:
        return f"orphan foreign key server_id={row['server_id']} (server not imported)"
    try:
        path = FilePath.parse(str(row["file_path"]))
    except DomainError as exc:
        return f"path {row['file_path']!r} refused: {exc.detail}"
    blob = resolve(run.source.root, row.get("backup_file_path"))
    if blob is None or not blob.is_file():
        return f"missing history file {row.get('backup_file_path')}"
    limit = run.container.settings.file_edit_max_bytes
    if (await asyncio.to_thread(blob.stat)).st_size > limit:
        return f"the version is larger than MCDASH_FILE_EDIT_MAX_BYTES ({limit})"
    content = await asyncio.to_thread(blob.read_bytes)
    sha256 = hashlib.sha256(content).hexdigest()
    if row.get("content_hash") and str(row["content_hash"]).lower() != sha256:
        return "content hash mismatch: the history file is not what V1 recorded"
    number = int(row["version_number"])
    if number < 1:
        return f"version number {number} (mcdash numbers versions from 1)"
    author = run.users.get(row.get("editor_user_id"))  # type: ignore[arg-type]
    version = FileVersion(
        id=v1_id("file_edit_history", row["id"]),
        server_id=server.id,
        path=str(path),
        version=number,
        action=VersionAction.WRITTEN,
        outcome=Outcome.APPLIED,
        author_id=author,
        created_at=run.source.when(row.get("created_at")) or datetime.now(UTC),
        size=len(content),
        sha256=sha256,
        content=content,
        note=(str(row["description"])[:500] if row.get("description") else None),
    )
    if run.dry_run:
        return None
    with from_v1("file_edit_history", row["id"]):
        async with run.deps("files")["uow"]() as work:
            await work.history.add(version)
            work.record_event(
                FileModified(
                    occurred_at=version.created_at,
                    server_id=server.id,
                    path=version.path,
                    action=version.action.value,
                    version=number,
                    size=version.size,
                    sha256=sha256,
                    author_id=author,
                )
            )
            await work.commit()
    return None


UNMAPPED = {
    "resource_visibility": "visibility grants have no mcdash equivalent yet",
    "resource_user_access": "per-user grants have no mcdash equivalent yet",
    "backup_schedule_logs": "V1's schedule change log is not imported (it stays in V1's database)",
}


def report_unmapped(run: Run) -> None:
    for table, reason in UNMAPPED.items():
        for row in run.source.rows(table):
            run.report.skip(table, row.get("id"), reason)
