"""game ports unique per node; the nodes table (cordoning)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 13:00:00.000000+00:00

Each node is its own machine with its own game-port space, so a port is unique on its node,
not across the database. `nodes` keeps what an operator decides about a node (cordoned: it
takes no new servers); what a node advertises about itself stays in its Redis record.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(op.f("uq_servers_port"), "servers", type_="unique")
    op.create_unique_constraint(op.f("uq_servers_node_port"), "servers", ["node", "port"])
    op.create_table(
        "nodes",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("cordoned", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_nodes")),
    )


def downgrade() -> None:
    op.drop_table("nodes")
    op.drop_constraint(op.f("uq_servers_node_port"), "servers", type_="unique")
    op.create_unique_constraint(op.f("uq_servers_port"), "servers", ["port"])
