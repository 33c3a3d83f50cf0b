"""Tables of the backups context, and its read model `backup_summary`."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from app.shared.db import metadata


def task_columns() -> list[sa.Column[object]]:
    """What a schedule does (backup by default), its warnings, and the warning last sent."""
    return [
        sa.Column("action", sa.String(10), nullable=False, server_default="backup"),
        sa.Column("command", sa.String(200)),
        sa.Column("warnings", ARRAY(sa.Integer), nullable=False, server_default="{}"),
        sa.Column("message", sa.String(150)),
        sa.Column("skip_if_players_online", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("warned", sa.Integer),
    ]


backups = sa.Table(
    "backups",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column(
        "server_id",
        UUID(as_uuid=True),
        sa.ForeignKey("servers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("file_path", sa.String(500), nullable=False),
    sa.Column("size_bytes", sa.BigInteger),
    sa.Column("backup_type", sa.String(20), nullable=False, server_default="manual"),
    sa.Column("status", sa.String(20), nullable=False, server_default="requested"),
    sa.Column("compression", sa.String(10), nullable=False, server_default="gzip"),
    sa.Column("sha256", sa.String(64)),
    sa.Column("error", sa.Text),
    sa.Column("node", sa.String(100), nullable=False),
    sa.Column(
        "schedule_id",
        UUID(as_uuid=True),
        sa.ForeignKey("backup_schedules.id", ondelete="SET NULL"),
    ),
    sa.Column("requested_by", UUID(as_uuid=True), sa.ForeignKey("users.id", ondelete="SET NULL")),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("saving_off_ms", sa.Integer),
    sa.Column("restore_status", sa.String(20)),
    sa.Column("restore_error", sa.Text),
    sa.Column("restored_at", sa.DateTime(timezone=True)),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.CheckConstraint(
        "status IN ('requested', 'running', 'completed', 'failed')", name="status_known"
    ),
    sa.CheckConstraint(
        "backup_type IN ('manual', 'scheduled', 'safety', 'uploaded')", name="type_known"
    ),
    sa.CheckConstraint("compression IN ('gzip', 'zstd')", name="compression_known"),
    sa.Index("idx_backups_server_created", "server_id", sa.text("created_at DESC")),
    sa.Index(
        "ix_backups_unfinished",
        "node",
        postgresql_where=sa.text("status IN ('requested', 'running')"),
    ),
    sa.Index("ix_backups_schedule", "schedule_id", "created_at"),
)

backup_schedules = sa.Table(
    "backup_schedules",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column(
        "server_id",
        UUID(as_uuid=True),
        sa.ForeignKey("servers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("cron_expression", sa.String(100), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("only_when_running", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("keep_last", sa.Integer),
    sa.Column("keep_days", sa.Integer),
    sa.Column("compression", sa.String(10), nullable=False, server_default="gzip"),
    sa.Column("last_run", sa.DateTime(timezone=True)),
    sa.Column("next_run", sa.DateTime(timezone=True)),
    sa.Column("created_by", UUID(as_uuid=True), sa.ForeignKey("users.id", ondelete="SET NULL")),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    *task_columns(),
    sa.CheckConstraint("keep_last IS NULL OR keep_last >= 1", name="keep_last_positive"),
    sa.CheckConstraint("keep_days IS NULL OR keep_days >= 1", name="keep_days_positive"),
    sa.CheckConstraint("keep_last IS NULL OR keep_last <= 1000", name="keep_last_bounded"),
    sa.CheckConstraint("keep_days IS NULL OR keep_days <= 3650", name="keep_days_bounded"),
    sa.CheckConstraint(
        "action IN ('backup', 'restart', 'stop', 'start', 'command')", name="action_known"
    ),
    sa.Index(
        "idx_schedules_active",
        "server_id",
        "next_run",
        postgresql_where=sa.text("is_active = true"),
    ),
)

backup_locks = sa.Table(
    "backup_locks",
    metadata,
    sa.Column(
        "server_id",
        UUID(as_uuid=True),
        sa.ForeignKey("servers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("operation", sa.String(10), nullable=False),
    sa.Column("backup_id", UUID(as_uuid=True), nullable=False),
    sa.Column("node", sa.String(100), nullable=False),
    sa.Column(
        "acquired_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.CheckConstraint("operation IN ('backup', 'restore')", name="operation_known"),
)

# Backups per server, one row per server, kept by the `backup_summary` projection
# (app/backups/infrastructure/projection.py).
backup_summary = sa.Table(
    "backup_summary",
    metadata,
    sa.Column("server_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("server_name", sa.String(100), nullable=False),
    sa.Column("owner_id", UUID(as_uuid=True), nullable=False),
    sa.Column("backup_count", sa.Integer, nullable=False),
    sa.Column("latest_backup", sa.DateTime(timezone=True)),
    sa.Column("total_size", sa.BigInteger, nullable=False),
    sa.Column("failed_count", sa.Integer, nullable=False),
    sa.Column("success_rate", sa.Numeric),
)
