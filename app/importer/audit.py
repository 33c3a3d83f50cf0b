"""V1's audit log, read-only, into the audit history: one V1AuditEntryImported event per row,
at V1's time, by the imported user, with V1's client address, each row committed on its own."""

from __future__ import annotations

import json
from typing import Any

from app.importer.run import Run, from_v1
from app.importer.source import v1_id
from app.monitoring.domain.audit import V1AuditEntryImported
from app.shared.context import client_addr_var
from app.shared.events import append_events

BATCH = 500
DETAILS_MAX = 4096
"""Bytes of V1's details JSON kept per row; larger ones are replaced by a note."""


def _details(raw: object) -> dict[str, Any]:
    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {"text": str(raw)[:DETAILS_MAX]}
    if not isinstance(raw, dict):
        return {}
    if len(json.dumps(raw, default=str)) > DETAILS_MAX:
        return {"truncated": f"V1's details were over {DETAILS_MAX} bytes"}
    return json.loads(json.dumps(raw, default=str))  # type: ignore[no-any-return]


def _event(run: Run, row: dict[str, Any]) -> V1AuditEntryImported | None:
    when = run.source.when(row.get("created_at"))
    if when is None:
        run.report.skip("audit_logs", row["id"], "no created_at")
        return None
    resource_type = str(row.get("resource_type") or "")[:50]
    server = run.servers.get(row["resource_id"]) if resource_type == "server" else None
    return V1AuditEntryImported(
        occurred_at=when,
        entry_id=v1_id("audit_logs", row["id"]),
        action=str(row.get("action") or "")[:100],
        resource_type=resource_type,
        resource_id=str(row["resource_id"])[:50] if row.get("resource_id") is not None else None,
        author_id=run.users.get(row.get("user_id")),  # type: ignore[arg-type]
        server_id=server.id if server else None,
        details=_details(row.get("details")),
    )


async def import_audit(run: Run) -> None:
    rows = sorted(run.source.rows("audit_logs"), key=lambda row: row["id"])
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        done = await run.imported_streams([v1_id("audit_logs", row["id"]) for row in batch])
        for row in batch:
            if v1_id("audit_logs", row["id"]) in done:
                run.report.imported("audit_logs", existed=True)
                continue
            event = _event(run, row)
            if event is None:
                continue
            run.report.imported("audit_logs")
            if run.dry_run:
                continue
            addr = client_addr_var.set(str(row.get("ip_address") or "")[:64] or None)
            try:
                with from_v1("audit_logs", row["id"]):
                    async with run.engine.begin() as conn:
                        await append_events(conn, run.container.infra.codec, [event])
            finally:
                client_addr_var.reset(addr)
