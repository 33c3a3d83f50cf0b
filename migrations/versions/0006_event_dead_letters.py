"""dead letters of the event relay

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 10:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        'domain_events',
        sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    )
    op.add_column('domain_events', sa.Column('last_error', sa.Text(), nullable=True))
    op.add_column(
        'domain_events', sa.Column('last_failed_at', sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        'domain_events', sa.Column('dead_lettered_at', sa.DateTime(timezone=True), nullable=True)
    )
    op.drop_index('ix_domain_events_unprocessed', table_name='domain_events')
    op.create_index(
        'ix_domain_events_unprocessed',
        'domain_events',
        ['position'],
        unique=False,
        postgresql_where=sa.text('processed_at IS NULL AND dead_lettered_at IS NULL'),
    )


def downgrade() -> None:
    op.drop_index('ix_domain_events_unprocessed', table_name='domain_events')
    op.create_index(
        'ix_domain_events_unprocessed',
        'domain_events',
        ['position'],
        unique=False,
        postgresql_where=sa.text('processed_at IS NULL'),
    )
    op.drop_column('domain_events', 'dead_lettered_at')
    op.drop_column('domain_events', 'last_failed_at')
    op.drop_column('domain_events', 'last_error')
    op.drop_column('domain_events', 'attempts')
