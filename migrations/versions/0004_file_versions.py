"""file versions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 01:06:09.825327+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('file_versions',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('server_id', sa.UUID(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('outcome', sa.String(length=20), server_default='applied', nullable=False),
    sa.Column('author_id', sa.UUID(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('content', postgresql.BYTEA(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.CheckConstraint("outcome IN ('applied', 'rejected')", name=op.f('ck_file_versions_outcome_known')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_file_versions_version_positive')),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_file_versions_author_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['server_id'], ['servers.id'], name=op.f('fk_file_versions_server_id_servers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_file_versions')),
    sa.UniqueConstraint('server_id', 'path', 'version', name=op.f('uq_file_versions_server_id_path_version'))
    )


def downgrade() -> None:
    op.drop_table('file_versions')
