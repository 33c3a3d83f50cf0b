"""read models kept by key: server_list, backup_summary, group_summary as projection tables

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 19:30:00.000000+00:00

The three materialized views were refreshed whole on every event, so a command cost more the
more servers there were. They become tables of the same columns, kept row by row by
projections with checkpoints in projection_checkpoints, which gains `applied` (the positions
above the checkpoint already applied, so positions that commit out of order are not skipped).
The tables start from the views' contents and their checkpoints at the newest event.

servers gains memory_mb, generated from its configuration, and an index of node with it, so
placing a server sums a node's usage from the index instead of parsing every row's JSON.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_READ_MODELS = ("server_list", "backup_summary", "group_summary")

_FILL_SERVER_LIST = """
INSERT INTO server_list
SELECT s.id, s.name, s.description, s.status, s.status_message, s.port, s.node,
    s.configuration->>'server_type', s.configuration->>'version',
    (s.configuration->>'memory_mb')::integer, jsonb_array_length(s.players),
    (s.configuration->>'max_players')::integer, s.restart_required, s.created_at, s.owner_id,
    u.username, b.backup_count, b.latest_backup
FROM servers s
LEFT JOIN users u ON u.id = s.owner_id
CROSS JOIN LATERAL (
    SELECT count(*) AS backup_count, max(created_at) AS latest_backup
    FROM backups WHERE server_id = s.id AND status = 'completed'
) b
"""

_FILL_BACKUP_SUMMARY = """
INSERT INTO backup_summary
SELECT s.id, s.name, s.owner_id, c.completed, c.latest, c.total_size, c.failed,
    CASE WHEN c.completed + c.failed = 0 THEN NULL
         ELSE round(c.completed::numeric / (c.completed + c.failed), 4) END
FROM servers s
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE status = 'completed') AS completed,
        count(*) FILTER (WHERE status = 'failed') AS failed,
        max(created_at) FILTER (WHERE status = 'completed') AS latest,
        coalesce(sum(size_bytes) FILTER (WHERE status = 'completed'), 0)::bigint AS total_size
    FROM backups WHERE server_id = s.id
) c
"""

_FILL_GROUP_SUMMARY = """
INSERT INTO group_summary
SELECT g.id, g.name, g.description, g.group_type, g.op_level, g.created_at, g.owner_id,
    u.username,
    (SELECT count(*) FROM group_players gp WHERE gp.group_id = g.id),
    (SELECT count(*) FROM server_groups sg WHERE sg.group_id = g.id)
FROM groups g
LEFT JOIN users u ON u.id = g.owner_id
"""

# The views as migrations 0003 and 0005 left them, for the downgrade.
_SERVER_LIST_VIEW = """
CREATE MATERIALIZED VIEW server_list_view AS
SELECT s.id, s.name, s.description, s.status, s.status_message, s.port, s.node,
    s.configuration->>'server_type' AS server_type,
    s.configuration->>'version' AS version,
    (s.configuration->>'memory_mb')::integer AS memory_mb,
    jsonb_array_length(s.players) AS player_count,
    (s.configuration->>'max_players')::integer AS max_players,
    s.restart_required, s.created_at, s.owner_id, u.username AS owner_username,
    COALESCE(b.backup_count, 0) AS backup_count, b.latest_backup
FROM servers s
LEFT JOIN users u ON s.owner_id = u.id
LEFT JOIN (
    SELECT server_id, count(*) AS backup_count, max(created_at) AS latest_backup
    FROM backups WHERE status = 'completed' GROUP BY server_id
) b ON b.server_id = s.id
WITH DATA
"""

_BACKUP_SUMMARY_VIEW = """
CREATE MATERIALIZED VIEW backup_summary_view AS
SELECT
    s.id AS server_id,
    s.name AS server_name,
    s.owner_id,
    count(b.id) FILTER (WHERE b.status = 'completed') AS backup_count,
    max(b.created_at) FILTER (WHERE b.status = 'completed') AS latest_backup,
    COALESCE(sum(b.size_bytes) FILTER (WHERE b.status = 'completed'), 0)::bigint AS total_size,
    count(b.id) FILTER (WHERE b.status = 'failed') AS failed_count,
    CASE WHEN count(b.id) FILTER (WHERE b.status IN ('completed', 'failed')) = 0 THEN NULL
         ELSE round(
             (count(b.id) FILTER (WHERE b.status = 'completed'))::numeric
             / count(b.id) FILTER (WHERE b.status IN ('completed', 'failed')), 4)
    END AS success_rate
FROM servers s
LEFT JOIN backups b ON b.server_id = s.id
GROUP BY s.id, s.name, s.owner_id
WITH DATA
"""

_GROUP_SUMMARY_VIEW = """
CREATE MATERIALIZED VIEW group_summary_view AS
SELECT
    g.id, g.name, g.description, g.group_type, g.op_level, g.created_at, g.owner_id,
    u.username AS owner_username,
    COUNT(DISTINCT gp.player_id) AS player_count,
    COUNT(DISTINCT sg.server_id) AS server_count
FROM groups g
LEFT JOIN users u ON g.owner_id = u.id
LEFT JOIN group_players gp ON g.id = gp.group_id
LEFT JOIN server_groups sg ON g.id = sg.group_id
GROUP BY g.id, g.name, g.description, g.group_type, g.op_level, g.created_at, g.owner_id,
    u.username
WITH DATA
"""

_VIEW_INDEXES = (
    "CREATE UNIQUE INDEX ix_server_list_view_id ON server_list_view (id)",
    "CREATE INDEX ix_server_list_view_owner_created ON server_list_view (owner_id, created_at DESC)",
    "CREATE INDEX ix_server_list_view_created ON server_list_view (created_at DESC, id)",
    "CREATE UNIQUE INDEX ix_backup_summary_view_server ON backup_summary_view (server_id)",
    "CREATE UNIQUE INDEX ix_group_summary_view_id ON group_summary_view (id)",
    "CREATE INDEX ix_group_summary_view_owner_created"
    " ON group_summary_view (owner_id, created_at DESC)",
    "CREATE INDEX ix_group_summary_view_created ON group_summary_view (created_at DESC, id)",
)


def upgrade() -> None:
    op.add_column(
        "servers",
        sa.Column(
            "memory_mb",
            sa.Integer(),
            sa.Computed("((configuration ->> 'memory_mb'::text))::integer", persisted=True),
            nullable=True,
        ),
    )
    op.create_index(
        "ix_servers_node_memory", "servers", ["node"], postgresql_include=["memory_mb"]
    )
    op.add_column(
        "projection_checkpoints",
        sa.Column(
            "applied",
            postgresql.ARRAY(sa.BigInteger()),
            server_default=sa.text("'{}'::bigint[]"),
            nullable=False,
        ),
    )
    op.create_table(
        "server_list",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=100), nullable=False),
        sa.Column("server_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column("player_count", sa.Integer(), nullable=False),
        sa.Column("max_players", sa.Integer(), nullable=False),
        sa.Column("restart_required", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner_id", sa.UUID(), nullable=False),
        sa.Column("owner_username", sa.String(length=50), nullable=True),
        sa.Column("backup_count", sa.Integer(), nullable=False),
        sa.Column("latest_backup", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_server_list")),
    )
    op.execute(
        "CREATE INDEX ix_server_list_owner_created ON server_list (owner_id, created_at DESC)"
    )
    op.execute("CREATE INDEX ix_server_list_created ON server_list (created_at DESC, id)")
    op.create_table(
        "backup_summary",
        sa.Column("server_id", sa.UUID(), nullable=False),
        sa.Column("server_name", sa.String(length=100), nullable=False),
        sa.Column("owner_id", sa.UUID(), nullable=False),
        sa.Column("backup_count", sa.Integer(), nullable=False),
        sa.Column("latest_backup", sa.DateTime(timezone=True), nullable=True),
        sa.Column("total_size", sa.BigInteger(), nullable=False),
        sa.Column("failed_count", sa.Integer(), nullable=False),
        sa.Column("success_rate", sa.Numeric(), nullable=True),
        sa.PrimaryKeyConstraint("server_id", name=op.f("pk_backup_summary")),
    )
    op.create_table(
        "group_summary",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("group_type", sa.String(length=20), nullable=False),
        sa.Column("op_level", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner_id", sa.UUID(), nullable=False),
        sa.Column("owner_username", sa.String(length=50), nullable=True),
        sa.Column("player_count", sa.Integer(), nullable=False),
        sa.Column("server_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_summary")),
    )
    op.execute(
        "CREATE INDEX ix_group_summary_owner_created ON group_summary (owner_id, created_at DESC)"
    )
    op.execute("CREATE INDEX ix_group_summary_created ON group_summary (created_at DESC, id)")
    for fill in (_FILL_SERVER_LIST, _FILL_BACKUP_SUMMARY, _FILL_GROUP_SUMMARY):
        op.execute(fill)
    # Filled from the tables as they are now: the projections go on from the newest event.
    for name in _READ_MODELS:
        op.execute(
            "INSERT INTO projection_checkpoints (name, position)"  # noqa: S608 - fixed names
            f" SELECT '{name}', coalesce(max(position), 0) FROM domain_events"
            " ON CONFLICT (name) DO NOTHING"
        )
    for view in ("server_list_view", "backup_summary_view", "group_summary_view"):
        op.execute(f"DROP MATERIALIZED VIEW {view}")


def downgrade() -> None:
    for view in (_SERVER_LIST_VIEW, _BACKUP_SUMMARY_VIEW, _GROUP_SUMMARY_VIEW):
        op.execute(view)
    for index in _VIEW_INDEXES:
        op.execute(index)
    op.execute(
        "DELETE FROM projection_checkpoints"
        " WHERE name IN ('server_list', 'backup_summary', 'group_summary')"
    )
    op.drop_table("group_summary")
    op.drop_table("backup_summary")
    op.drop_table("server_list")
    op.drop_column("projection_checkpoints", "applied")
    op.drop_index("ix_servers_node_memory", table_name="servers")
    op.drop_column("servers", "memory_mb")
