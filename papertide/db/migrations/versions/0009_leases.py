"""The ``leases`` table: the scheduler's election on SQLite, its leader's record on PostgreSQL.

Several web workers each run a scheduler thread, and exactly one may lead. On PostgreSQL a session
advisory lock elects it (released by the server when the leader's connection dies); SQLite has no
such lock, so the leader holds a row with an expiry that it renews, and a stand-by takes the row
once it has expired. See papertide/jobs.py.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("acquired_at", TZ, nullable=False),
        sa.Column("renewed_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )


def downgrade() -> None:
    op.drop_table("leases")
