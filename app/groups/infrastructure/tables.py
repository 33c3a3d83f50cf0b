"""Tables of the groups context, and its read model `group_summary`."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from app.shared.db import metadata

groups = sa.Table(
    "groups",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("group_type", sa.String(20), nullable=False),
    sa.Column("op_level", sa.Integer),
    sa.Column("owner_id", UUID(as_uuid=True), sa.ForeignKey("users.id"), nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.CheckConstraint("group_type IN ('op', 'whitelist')", name="group_type_known"),
    sa.CheckConstraint(
        "(group_type = 'op' AND op_level BETWEEN 1 AND 4) "
        "OR (group_type = 'whitelist' AND op_level IS NULL)",
        name="op_level_fits_type",
    ),
    sa.Index("idx_groups_owner_type", "owner_id", "group_type"),
    sa.Index(
        "ix_groups_owner_name_lower", "owner_id", sa.func.lower(sa.column("name")), unique=True
    ),
)

players = sa.Table(
    "players",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("minecraft_uuid", UUID(as_uuid=True), nullable=False, unique=True),
    sa.Column("username", sa.String(16), nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

group_players = sa.Table(
    "group_players",
    metadata,
    sa.Column(
        "group_id",
        UUID(as_uuid=True),
        sa.ForeignKey("groups.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "player_id",
        UUID(as_uuid=True),
        sa.ForeignKey("players.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("added_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Index("ix_group_players_player", "player_id"),
)

server_groups = sa.Table(
    "server_groups",
    metadata,
    sa.Column(
        "server_id",
        UUID(as_uuid=True),
        sa.ForeignKey("servers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "group_id",
        UUID(as_uuid=True),
        sa.ForeignKey("groups.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    sa.Column(
        "attached_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Index("ix_server_groups_group", "group_id"),
)

server_access = sa.Table(
    "server_access",
    metadata,
    sa.Column(
        "server_id",
        UUID(as_uuid=True),
        sa.ForeignKey("servers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("authoritative", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("applied_ops", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("applied_whitelist", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("last_sync", JSONB),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

# The groups list, one row per group, kept by the `group_summary` projection
# (app/groups/infrastructure/projection.py).
group_summary = sa.Table(
    "group_summary",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("group_type", sa.String(20), nullable=False),
    sa.Column("op_level", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("owner_id", UUID(as_uuid=True), nullable=False),
    sa.Column("owner_username", sa.String(50)),
    sa.Column("player_count", sa.Integer, nullable=False),
    sa.Column("server_count", sa.Integer, nullable=False),
)
sa.Index(
    "ix_group_summary_owner_created", group_summary.c.owner_id, group_summary.c.created_at.desc()
)
sa.Index("ix_group_summary_created", group_summary.c.created_at.desc(), group_summary.c.id)
