"""bounded retention of backup schedules

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 09:00:00.000000+00:00

Limits over the bounds (keep_last 1000, keep_days 3650) were accepted before; every
scheduled backup of such a schedule then failed at retention. They meant "keep them all",
so they become no limit rather than a smaller one that would delete backups.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("UPDATE backup_schedules SET keep_last = NULL WHERE keep_last > 1000")
    op.execute("UPDATE backup_schedules SET keep_days = NULL WHERE keep_days > 3650")
    op.create_check_constraint(
        op.f("ck_backup_schedules_keep_last_bounded"),
        "backup_schedules",
        "keep_last IS NULL OR keep_last <= 1000",
    )
    op.create_check_constraint(
        op.f("ck_backup_schedules_keep_days_bounded"),
        "backup_schedules",
        "keep_days IS NULL OR keep_days <= 3650",
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("ck_backup_schedules_keep_days_bounded"), "backup_schedules", type_="check"
    )
    op.drop_constraint(
        op.f("ck_backup_schedules_keep_last_bounded"), "backup_schedules", type_="check"
    )
