"""servers and server list view

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 23:15:20.140199+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


SERVER_LIST_VIEW = """
CREATE MATERIALIZED VIEW server_list_view AS
SELECT
    s.id,
    s.name,
    s.description,
    s.status,
    s.status_message,
    s.port,
    s.node,
    s.configuration->>'server_type' AS server_type,
    s.configuration->>'version' AS version,
    (s.configuration->>'memory_mb')::integer AS memory_mb,
    jsonb_array_length(s.players) AS player_count,
    (s.configuration->>'max_players')::integer AS max_players,
    s.restart_required,
    s.created_at,
    s.owner_id,
    u.username AS owner_username
FROM servers s
LEFT JOIN users u ON s.owner_id = u.id
WITH DATA
"""


def upgrade() -> None:
    op.create_table('servers',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('owner_id', sa.UUID(), nullable=False),
    sa.Column('node', sa.String(length=100), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), server_default='stopped', nullable=False),
    sa.Column('configuration', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('eula_accepted', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('status_message', sa.Text(), nullable=True),
    sa.Column('state_changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('process_started_at', sa.Float(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('restart_required', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('restart_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('players', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.CheckConstraint("status IN ('stopped', 'starting', 'running', 'stopping', 'crashed')", name=op.f('ck_servers_status_known')),
    sa.CheckConstraint('port BETWEEN 1024 AND 65535', name=op.f('ck_servers_port_range')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_servers_owner_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_servers')),
    sa.UniqueConstraint('port', name=op.f('uq_servers_port'))
    )
    op.create_index('idx_servers_owner_status', 'servers', ['owner_id', 'status'], unique=False)
    op.create_index('ix_servers_node_status', 'servers', ['node', 'status'], unique=False)
    op.create_index('ix_servers_owner_name_lower', 'servers', ['owner_id', sa.literal_column('lower(name)')], unique=True)
    op.execute(SERVER_LIST_VIEW)
    # A unique index lets the projection refresh the view CONCURRENTLY (readers never block).
    op.execute("CREATE UNIQUE INDEX ix_server_list_view_id ON server_list_view (id)")
    op.execute(
        "CREATE INDEX ix_server_list_view_owner_created ON server_list_view (owner_id, created_at DESC)"
    )
    op.execute("CREATE INDEX ix_server_list_view_created ON server_list_view (created_at DESC, id)")


def downgrade() -> None:
    op.execute("DROP MATERIALIZED VIEW server_list_view")
    op.drop_index('ix_servers_owner_name_lower', table_name='servers')
    op.drop_index('ix_servers_node_status', table_name='servers')
    op.drop_index('idx_servers_owner_status', table_name='servers')
    op.drop_table('servers')
