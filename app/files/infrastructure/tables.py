"""Tables of the files context: every recorded state of a server's file, keyed by path."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import BYTEA, UUID

from app.shared.db import metadata

file_versions = sa.Table(
    "file_versions",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column(
        "server_id",
        UUID(as_uuid=True),
        sa.ForeignKey("servers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False, server_default="applied"),
    sa.Column("author_id", UUID(as_uuid=True), sa.ForeignKey("users.id", ondelete="SET NULL")),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("size", sa.BigInteger),
    sa.Column("sha256", sa.String(64)),
    sa.Column("content", BYTEA),
    sa.Column("note", sa.Text),
    sa.UniqueConstraint("server_id", "path", "version"),
    sa.CheckConstraint("outcome IN ('applied', 'rejected')", name="outcome_known"),
    sa.CheckConstraint("version >= 1", name="version_positive"),
)
