"""groups players and group summary view

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 01:05:13.497482+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


GROUP_SUMMARY_VIEW = """
CREATE MATERIALIZED VIEW group_summary_view AS
SELECT
    g.id,
    g.name,
    g.description,
    g.group_type,
    g.op_level,
    g.created_at,
    g.owner_id,
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


def upgrade() -> None:
    op.create_table('players',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('minecraft_uuid', sa.UUID(), nullable=False),
    sa.Column('username', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_players')),
    sa.UniqueConstraint('minecraft_uuid', name=op.f('uq_players_minecraft_uuid'))
    )
    op.create_table('groups',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('group_type', sa.String(length=20), nullable=False),
    sa.Column('op_level', sa.Integer(), nullable=True),
    sa.Column('owner_id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.CheckConstraint("(group_type = 'op' AND op_level BETWEEN 1 AND 4) OR (group_type = 'whitelist' AND op_level IS NULL)", name=op.f('ck_groups_op_level_fits_type')),
    sa.CheckConstraint("group_type IN ('op', 'whitelist')", name=op.f('ck_groups_group_type_known')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_groups_owner_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_groups'))
    )
    op.create_index('idx_groups_owner_type', 'groups', ['owner_id', 'group_type'], unique=False)
    op.create_index('ix_groups_owner_name_lower', 'groups', ['owner_id', sa.literal_column('lower(name)')], unique=True)
    op.create_table('group_players',
    sa.Column('group_id', sa.UUID(), nullable=False),
    sa.Column('player_id', sa.UUID(), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], name=op.f('fk_group_players_group_id_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['player_id'], ['players.id'], name=op.f('fk_group_players_player_id_players'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'player_id', name=op.f('pk_group_players'))
    )
    op.create_index('ix_group_players_player', 'group_players', ['player_id'], unique=False)
    op.create_table('server_access',
    sa.Column('server_id', sa.UUID(), nullable=False),
    sa.Column('authoritative', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('applied_ops', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('applied_whitelist', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('last_sync', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['server_id'], ['servers.id'], name=op.f('fk_server_access_server_id_servers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('server_id', name=op.f('pk_server_access'))
    )
    op.create_table('server_groups',
    sa.Column('server_id', sa.UUID(), nullable=False),
    sa.Column('group_id', sa.UUID(), nullable=False),
    sa.Column('priority', sa.Integer(), server_default='0', nullable=False),
    sa.Column('attached_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], name=op.f('fk_server_groups_group_id_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['server_id'], ['servers.id'], name=op.f('fk_server_groups_server_id_servers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('server_id', 'group_id', name=op.f('pk_server_groups'))
    )
    op.create_index('ix_server_groups_group', 'server_groups', ['group_id'], unique=False)
    op.execute(GROUP_SUMMARY_VIEW)
    # A unique index lets the projection refresh the view CONCURRENTLY (readers never block).
    op.execute("CREATE UNIQUE INDEX ix_group_summary_view_id ON group_summary_view (id)")
    op.execute(
        "CREATE INDEX ix_group_summary_view_owner_created"
        " ON group_summary_view (owner_id, created_at DESC)"
    )
    op.execute(
        "CREATE INDEX ix_group_summary_view_created ON group_summary_view (created_at DESC, id)"
    )


def downgrade() -> None:
    op.execute("DROP MATERIALIZED VIEW group_summary_view")
    op.drop_index('ix_server_groups_group', table_name='server_groups')
    op.drop_table('server_groups')
    op.drop_table('server_access')
    op.drop_index('ix_group_players_player', table_name='group_players')
    op.drop_table('group_players')
    op.drop_index('ix_groups_owner_name_lower', table_name='groups')
    op.drop_index('idx_groups_owner_type', table_name='groups')
    op.drop_table('groups')
    op.drop_table('players')
