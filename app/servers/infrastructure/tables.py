"""Tables of the servers context, and its read model `server_list`."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from app.shared.db import metadata

servers = sa.Table(
    "servers",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("owner_id", UUID(as_uuid=True), sa.ForeignKey("users.id"), nullable=False),
    sa.Column("node", sa.String(100), nullable=False),
    sa.Column("port", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False, server_default="stopped"),
    sa.Column("configuration", JSONB, nullable=False),
    sa.Column("eula_accepted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("status_message", sa.Text),
    sa.Column("state_changed_at", sa.DateTime(timezone=True)),
    sa.Column("pid", sa.Integer),
    sa.Column("process_started_at", sa.Float),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("restart_required", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("restart_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("players", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    # The heap, out of the JSON: a node's usage is summed from the index below alone.
    sa.Column(
        "memory_mb",
        sa.Integer,
        sa.Computed("((configuration ->> 'memory_mb'::text))::integer", persisted=True),
    ),
    sa.CheckConstraint(
        "status IN ('stopped', 'starting', 'running', 'stopping', 'crashed')", name="status_known"
    ),
    sa.CheckConstraint("port BETWEEN 1024 AND 65535", name="port_range"),
    sa.UniqueConstraint("node", "port"),
    sa.Index("idx_servers_owner_status", "owner_id", "status"),
    sa.Index("ix_servers_node_status", "node", "status"),
    sa.Index("ix_servers_node_memory", "node", postgresql_include=["memory_mb"]),
    sa.Index(
        "ix_servers_owner_name_lower", "owner_id", sa.func.lower(sa.column("name")), unique=True
    ),
)

nodes = sa.Table(
    "nodes",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("cordoned", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

# The dashboard's server list, one row per server, kept by the `server_list` projection
# (app/servers/infrastructure/projection.py): the row's columns flattened, its owner's name,
# and its completed backups.
server_list = sa.Table(
    "server_list",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("status_message", sa.Text),
    sa.Column("port", sa.Integer, nullable=False),
    sa.Column("node", sa.String(100), nullable=False),
    sa.Column("server_type", sa.Text, nullable=False),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("memory_mb", sa.Integer, nullable=False),
    sa.Column("player_count", sa.Integer, nullable=False),
    sa.Column("max_players", sa.Integer, nullable=False),
    sa.Column("restart_required", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("owner_id", UUID(as_uuid=True), nullable=False),
    sa.Column("owner_username", sa.String(50)),
    sa.Column("backup_count", sa.Integer, nullable=False),
    sa.Column("latest_backup", sa.DateTime(timezone=True)),
)
sa.Index("ix_server_list_owner_created", server_list.c.owner_id, server_list.c.created_at.desc())
sa.Index("ix_server_list_created", server_list.c.created_at.desc(), server_list.c.id)
