"""The monitoring context's tables: the audit log, metrics history, notifications, webhooks."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from app.shared.db import metadata

# One row per stored event (its position is the key): who did what to which resource, from where.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor_id", UUID(as_uuid=True)),
    sa.Column("actor_username", sa.String(50)),
    sa.Column("action", sa.String(100), nullable=False),
    sa.Column("resource_type", sa.String(50), nullable=False),
    sa.Column("resource_id", UUID(as_uuid=True), nullable=False),
    sa.Column("server_id", UUID(as_uuid=True)),
    sa.Column("client_addr", sa.String(64)),
    sa.Column("request_id", sa.String(64)),
    sa.Column("summary", sa.String(300), nullable=False),
    sa.Column("details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Index("ix_audit_log_occurred_at", "occurred_at"),
    sa.Index("ix_audit_log_server_position", "server_id", "position"),
    sa.Index("ix_audit_log_actor_position", "actor_id", "position"),
    sa.Index("ix_audit_log_action_position", "action", "position"),
    sa.Index("ix_audit_log_resource", "resource_type", "resource_id", "position"),
)

# Samples of each server: raw (resolution 0) every MCDASH_METRICS_INTERVAL_SECONDS, and rollups
# over 60 s and 3600 s (averages, with maxima beside them and how many samples they hold).
server_metrics = sa.Table(
    "server_metrics",
    metadata,
    sa.Column("server_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("resolution", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("node", sa.String(100), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("samples", sa.Integer, nullable=False, server_default=sa.text("1")),
    sa.Column("cpu_percent", sa.Float, nullable=False),
    sa.Column("cpu_percent_max", sa.Float, nullable=False),
    sa.Column("rss_bytes", sa.BigInteger, nullable=False),
    sa.Column("rss_bytes_max", sa.BigInteger, nullable=False),
    sa.Column("players_online", sa.Float, nullable=False),
    sa.Column("players_max", sa.Integer, nullable=False),
    sa.Column("disk_bytes", sa.BigInteger),
    sa.Column("tick_ms", sa.Float),
    sa.Column("tick_ms_max", sa.Float),
    sa.Column("tps", sa.Float),
    sa.Index("ix_server_metrics_resolution_at", "resolution", "at"),
)

# The same for each node: its machine, and how many servers it runs.
node_metrics = sa.Table(
    "node_metrics",
    metadata,
    sa.Column("node", sa.String(100), primary_key=True),
    sa.Column("resolution", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("samples", sa.Integer, nullable=False, server_default=sa.text("1")),
    sa.Column("cpu_percent", sa.Float, nullable=False),
    sa.Column("cpu_percent_max", sa.Float, nullable=False),
    sa.Column("memory_used_bytes", sa.BigInteger, nullable=False),
    sa.Column("memory_total_bytes", sa.BigInteger, nullable=False),
    sa.Column("disk_used_bytes", sa.BigInteger, nullable=False),
    sa.Column("disk_total_bytes", sa.BigInteger, nullable=False),
    sa.Column("servers_running", sa.Float, nullable=False),
    sa.Index("ix_node_metrics_resolution_at", "resolution", "at"),
)

# What each user was told, kept so that someone who was away sees it; one row per user and
# event (event_position), so a redelivered event notifies nobody twice.
notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column(
        "user_id",
        UUID(as_uuid=True),
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("severity", sa.String(20), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("body", sa.String(1000), nullable=False, server_default=""),
    sa.Column("server_id", UUID(as_uuid=True)),
    sa.Column("event_position", sa.BigInteger),
    sa.Column("data", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("read_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("user_id", "event_position"),
    sa.Index("ix_notifications_user_created", "user_id", "created_at"),
    sa.Index(
        "ix_notifications_unread",
        "user_id",
        postgresql_where=sa.text("read_at IS NULL"),
    ),
)

webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column(
        "owner_id",
        UUID(as_uuid=True),
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("event_types", JSONB, nullable=False),
    sa.Column("server_id", UUID(as_uuid=True)),
    sa.Column("secret", sa.String(200), nullable=False),
    sa.Column("format", sa.String(20), nullable=False, server_default="json"),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_webhooks_owner", "owner_id"),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column(
        "webhook_id",
        UUID(as_uuid=True),
        sa.ForeignKey("webhooks.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("event_id", UUID(as_uuid=True)),
    sa.Column("event_type", sa.String(100), nullable=False),
    sa.Column("payload", JSONB, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("response_status", sa.Integer),
    sa.Column("last_error", sa.String(2000)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_attempt_at", sa.DateTime(timezone=True)),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    sa.Column("delivered_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("webhook_id", "event_id"),
    sa.Index("ix_webhook_deliveries_webhook_created", "webhook_id", "created_at"),
    # The scheduler's re-queue of due deliveries, and retention by age.
    sa.Index(
        "ix_webhook_deliveries_due",
        "next_attempt_at",
        postgresql_where=sa.text("status IN ('pending', 'retrying', 'sending')"),
    ),
    sa.Index("ix_webhook_deliveries_created_at", "created_at"),
)
