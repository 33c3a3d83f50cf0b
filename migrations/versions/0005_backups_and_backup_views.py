"""backups, schedules, activity locks and backup views

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 01:08:10.071445+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


SERVER_LIST_COLUMNS = """
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
    u.username AS owner_username"""

# The spec's server list with backup_count / latest_backup; only completed backups count.
SERVER_LIST_VIEW = f"""
CREATE MATERIALIZED VIEW server_list_view AS
SELECT {SERVER_LIST_COLUMNS},
    COALESCE(b.backup_count, 0) AS backup_count,
    b.latest_backup
FROM servers s
LEFT JOIN users u ON s.owner_id = u.id
LEFT JOIN (
    SELECT server_id, count(*) AS backup_count, max(created_at) AS latest_backup
    FROM backups WHERE status = 'completed' GROUP BY server_id
) b ON b.server_id = s.id
WITH DATA
"""

SERVER_LIST_VIEW_0002 = f"""
CREATE MATERIALIZED VIEW server_list_view AS
SELECT {SERVER_LIST_COLUMNS}
FROM servers s
LEFT JOIN users u ON s.owner_id = u.id
WITH DATA
"""

SERVER_LIST_INDEXES = (
    "CREATE UNIQUE INDEX ix_server_list_view_id ON server_list_view (id)",
    "CREATE INDEX ix_server_list_view_owner_created ON server_list_view (owner_id, created_at DESC)",
    "CREATE INDEX ix_server_list_view_created ON server_list_view (created_at DESC, id)",
)

BACKUP_SUMMARY_VIEW = """
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


def upgrade() -> None:
    op.create_table('backup_locks',
    sa.Column('server_id', sa.UUID(), nullable=False),
    sa.Column('operation', sa.String(length=10), nullable=False),
    sa.Column('backup_id', sa.UUID(), nullable=False),
    sa.Column('node', sa.String(length=100), nullable=False),
    sa.Column('acquired_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("operation IN ('backup', 'restore')", name=op.f('ck_backup_locks_operation_known')),
    sa.ForeignKeyConstraint(['server_id'], ['servers.id'], name=op.f('fk_backup_locks_server_id_servers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('server_id', name=op.f('pk_backup_locks'))
    )
    op.create_table('backup_schedules',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('server_id', sa.UUID(), nullable=False),
    sa.Column('cron_expression', sa.String(length=100), nullable=False),
    sa.Column('timezone', sa.String(length=64), server_default='UTC', nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('only_when_running', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('keep_last', sa.Integer(), nullable=True),
    sa.Column('keep_days', sa.Integer(), nullable=True),
    sa.Column('compression', sa.String(length=10), server_default='gzip', nullable=False),
    sa.Column('last_run', sa.DateTime(timezone=True), nullable=True),
    sa.Column('next_run', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.UUID(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.CheckConstraint('keep_days IS NULL OR keep_days >= 1', name=op.f('ck_backup_schedules_keep_days_positive')),
    sa.CheckConstraint('keep_last IS NULL OR keep_last >= 1', name=op.f('ck_backup_schedules_keep_last_positive')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_backup_schedules_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['server_id'], ['servers.id'], name=op.f('fk_backup_schedules_server_id_servers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_backup_schedules'))
    )
    op.create_index('idx_schedules_active', 'backup_schedules', ['server_id', 'next_run'], unique=False, postgresql_where=sa.text('is_active = true'))
    op.create_table('backups',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('server_id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('file_path', sa.String(length=500), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=True),
    sa.Column('backup_type', sa.String(length=20), server_default='manual', nullable=False),
    sa.Column('status', sa.String(length=20), server_default='requested', nullable=False),
    sa.Column('compression', sa.String(length=10), server_default='gzip', nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('node', sa.String(length=100), nullable=False),
    sa.Column('schedule_id', sa.UUID(), nullable=True),
    sa.Column('requested_by', sa.UUID(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('saving_off_ms', sa.Integer(), nullable=True),
    sa.Column('restore_status', sa.String(length=20), nullable=True),
    sa.Column('restore_error', sa.Text(), nullable=True),
    sa.Column('restored_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.CheckConstraint("backup_type IN ('manual', 'scheduled', 'safety', 'uploaded')", name=op.f('ck_backups_type_known')),
    sa.CheckConstraint("compression IN ('gzip', 'zstd')", name=op.f('ck_backups_compression_known')),
    sa.CheckConstraint("status IN ('requested', 'running', 'completed', 'failed')", name=op.f('ck_backups_status_known')),
    sa.ForeignKeyConstraint(['requested_by'], ['users.id'], name=op.f('fk_backups_requested_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['schedule_id'], ['backup_schedules.id'], name=op.f('fk_backups_schedule_id_backup_schedules'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['server_id'], ['servers.id'], name=op.f('fk_backups_server_id_servers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_backups'))
    )
    op.create_index('idx_backups_server_created', 'backups', ['server_id', sa.literal_column('created_at DESC')], unique=False)
    op.create_index('ix_backups_schedule', 'backups', ['schedule_id', 'created_at'], unique=False)
    op.create_index('ix_backups_unfinished', 'backups', ['node'], unique=False, postgresql_where=sa.text("status IN ('requested', 'running')"))
    op.execute("DROP MATERIALIZED VIEW server_list_view")
    op.execute(SERVER_LIST_VIEW)
    for index in SERVER_LIST_INDEXES:
        op.execute(index)
    op.execute(BACKUP_SUMMARY_VIEW)
    # Unique indexes let the projections refresh both views CONCURRENTLY.
    op.execute("CREATE UNIQUE INDEX ix_backup_summary_view_server ON backup_summary_view (server_id)")


def downgrade() -> None:
    op.execute("DROP MATERIALIZED VIEW backup_summary_view")
    op.execute("DROP MATERIALIZED VIEW server_list_view")
    op.execute(SERVER_LIST_VIEW_0002)
    for index in SERVER_LIST_INDEXES:
        op.execute(index)
    op.drop_index('ix_backups_unfinished', table_name='backups', postgresql_where=sa.text("status IN ('requested', 'running')"))
    op.drop_index('ix_backups_schedule', table_name='backups')
    op.drop_index('idx_backups_server_created', table_name='backups')
    op.drop_table('backups')
    op.drop_index('idx_schedules_active', table_name='backup_schedules', postgresql_where=sa.text('is_active = true'))
    op.drop_table('backup_schedules')
    op.drop_table('backup_locks')
