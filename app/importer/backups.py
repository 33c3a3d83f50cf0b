"""V1 backups (completed ones whose archive is there and has the size V1 recorded), uploaded
through their server's node into the configured storage and hashed again; and V1's backup
schedules, whose interval becomes a cron expression and whose max_backups becomes keep_last.

An archive is stored under a key derived from its id before its row commits: a run killed in
between leaves it there, and the next run writes the same key again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from app.backups.domain.model import Backup, BackupType
from app.backups.domain.schedule import BackupSchedule, Retention
from app.backups.infrastructure.tables import backup_schedules, backups
from app.importer.run import Run, file_chunks, from_v1, import_each, resolve
from app.importer.source import v1_id
from app.shared.domain import DomainError

TYPES = {
    "manual": BackupType.MANUAL,
    "scheduled": BackupType.SCHEDULED,
    "pre_update": BackupType.SAFETY,
}


def interval_cron(hours: int) -> tuple[str, str | None]:
    """A cron expression for every `hours` hours, and a note when it can only approximate."""
    if hours < 24 and 24 % hours == 0:
        return ("0 * * * *" if hours == 1 else f"0 */{hours} * * *"), None
    if hours == 24:
        return "0 0 * * *", None
    if hours == 168:
        return "0 0 * * 0", None
    if hours % 24 == 0:
        days = hours // 24
        return f"0 0 */{days} * *", f"every {days} days counted by day of month"
    below = max(d for d in (1, 2, 3, 4, 6, 8, 12) if d <= hours)
    return f"0 */{below} * * *", f"every {hours} hours has no cron form: every {below} hours"


async def import_backups(run: Run) -> None:
    rows = sorted(run.source.rows("backups"), key=lambda row: row["id"])
    await import_each(run, "backups", rows, backups, _backup)


async def _backup(run: Run, row: dict[str, Any]) -> str | None:
    """Import one backup; the reason it is not imported, or None."""
    if str(row["status"]).lower() != "completed":
        return f"status {row['status']} (only completed backups are imported)"
    server = run.servers.get(row["server_id"])
    if server is None:
        return f"orphan foreign key server_id={row['server_id']} (server not imported)"
    path = resolve(run.source.root, row.get("file_path"))
    if path is None or not path.is_file():
        return f"missing archive {row.get('file_path')}"
    size = (await asyncio.to_thread(path.stat)).st_size
    if row.get("file_size") is not None and int(row["file_size"]) != size:
        return f"size mismatch: V1 recorded {row['file_size']} bytes, the archive has {size}"
    if run.dry_run:
        return None
    archives = run.deps("backups")["archives"]
    created = run.source.when(row.get("created_at")) or datetime.now(UTC)
    with run.copies.copy(f"backup {row['id']}", size) as bar:
        try:
            upload = await archives.upload(server.node, server.id, file_chunks(path, bar))
        except DomainError as exc:
            return f"archive refused: {exc.detail}"
    facts = upload.facts
    try:
        backup = Backup.request(
            backup_id=v1_id("backups", row["id"]),
            server_id=server.id,
            node=server.node,
            backup_type=TYPES.get(str(row["backup_type"]).lower(), BackupType.UPLOADED),
            compression=facts.compression,
            name=(str(row["name"])[:200] if row.get("name") else None),
            now=created,
        )
        await upload.commit(backup.file_path)
    except BaseException:
        await asyncio.shield(upload.abort())
        raise
    backup.complete(
        size_bytes=facts.size_bytes, sha256=facts.sha256, saving_off_ms=None, now=created
    )
    with from_v1("backups", row["id"]):
        async with run.deps("backups")["uow"]() as work:
            work.backups.add(backup)
            await work.commit()
    return None


async def import_schedules(run: Run) -> None:
    rows = sorted(run.source.rows("backup_schedules"), key=lambda row: row["server_id"])
    ids = {row["server_id"]: v1_id("backup_schedules", row["server_id"]) for row in rows}
    present = await run.existing(backup_schedules, list(ids.values()))
    deps = run.deps("backups")
    for row in rows:
        if ids[row["server_id"]] in present:
            run.report.imported("backup_schedules", existed=True)
            continue
        server = run.servers.get(row["server_id"])
        if server is None:
            run.report.skip(
                "backup_schedules",
                row["server_id"],
                f"orphan foreign key server_id={row['server_id']} (server not imported)",
            )
            continue
        cron, approximated = interval_cron(max(1, min(int(row["interval_hours"]), 168)))
        if approximated:
            run.report.note(f"V1 schedule of server {row['server_id']}: {approximated}")
        try:
            schedule = BackupSchedule.create(
                schedule_id=ids[row["server_id"]],
                server_id=server.id,
                cron_expression=cron,
                timezone="UTC",
                is_active=bool(row.get("enabled", True)),
                only_when_running=bool(row.get("only_when_running", False)),
                retention=Retention(keep_last=int(row["max_backups"])),
                compression=deps["policy"].compression,
                calendar=deps["calendar"],
                created_by=None,
                now=datetime.now(UTC),
            )
        except DomainError as exc:
            run.report.skip("backup_schedules", row["server_id"], exc.detail)
            continue
        with from_v1("backup_schedules", row["server_id"]):
            async with deps["uow"]() as work:
                work.schedules.add(schedule)
                if not run.dry_run:
                    await work.commit()
        run.report.imported("backup_schedules")
