"""scheduled tasks: backup_schedules gain an action, a command, warnings and their message

Revision ID: 0011_tasks
Revises: 0010
Create Date: 2026-12-01 23:40:00.000000+00:00

A schedule backs up (the default, so every stored schedule keeps doing what it did), restarts,
stops, starts its server or sends it a console command. A restart or stop warns the players at
`warnings` minutes before the run with `message`; `warned` is the shortest warning already sent
for the coming run.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011_tasks"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "backup_schedules",
        sa.Column("action", sa.String(10), nullable=False, server_default="backup"),
    )
    op.add_column("backup_schedules", sa.Column("command", sa.String(200), nullable=True))
    op.add_column(
        "backup_schedules",
        sa.Column(
            "warnings", postgresql.ARRAY(sa.Integer()), nullable=False, server_default="{}"
        ),
    )
    op.add_column("backup_schedules", sa.Column("message", sa.String(150), nullable=True))
    op.add_column(
        "backup_schedules",
        sa.Column(
            "skip_if_players_online", sa.Boolean(), nullable=False, server_default=sa.false()
        ),
    )
    op.add_column("backup_schedules", sa.Column("warned", sa.Integer(), nullable=True))
    op.create_check_constraint(
        op.f("ck_backup_schedules_action_known"),
        "backup_schedules",
        "action IN ('backup', 'restart', 'stop', 'start', 'command')",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_backup_schedules_action_known"), "backup_schedules")
    for column in ("warned", "skip_if_players_online", "message", "warnings", "command", "action"):
        op.drop_column("backup_schedules", column)
