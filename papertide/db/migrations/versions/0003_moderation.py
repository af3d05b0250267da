"""Moderation: organization members, submissions, authorship claims, hidden papers.

Why: issue 3 (accounts and community), second part: people submit papers to the daily list
(``daily_entries`` learn who submitted them and whether they wait for a moderator), labs manage
their organization (``organization_members``, ``organizations.description``), authors claim
their entries (``author_claims``), and moderators hide papers (``papers.hidden_at``).

``papers`` gets its column by a plain ``ADD COLUMN``, never a batch table copy: on SQLite a copy
would drop the full-text triggers. ``daily_entries`` has no triggers, so SQLite may rebuild it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("organizations", sa.Column("description", sa.Text))
    op.add_column("papers", sa.Column("hidden_at", TZ))
    with op.batch_alter_table("daily_entries") as batch:
        batch.add_column(sa.Column("submitted_by_user_id", sa.Integer))
        batch.add_column(
            sa.Column("status", sa.String(16), nullable=False, server_default="published")
        )
        batch.create_foreign_key(
            "fk_daily_entries_submitted_by_user_id_users",
            "users",
            ["submitted_by_user_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index("ix_daily_entries_submitted_by_user_id", ["submitted_by_user_id", "day"])
        batch.create_index("ix_daily_entries_status", ["status"])
    op.create_table(
        "organization_members",
        sa.Column("organization_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False, server_default="member"),
        sa.Column("added_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "user_id", name="pk_organization_members"),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_organization_members_organization_id_organizations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_organization_members_user_id_users",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_organization_members_user_id", "organization_members", ["user_id"])
    op.create_table(
        "author_claims",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("paper_id", sa.Integer, nullable=False),
        sa.Column("author_position", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("decided_by", sa.Integer),
        sa.Column("decided_at", TZ),
        sa.PrimaryKeyConstraint("id", name="pk_author_claims"),
        sa.UniqueConstraint(
            "paper_id",
            "author_position",
            "user_id",
            name="uq_author_claims_paper_id_author_position_user_id",
        ),
        sa.ForeignKeyConstraint(
            ["paper_id"], ["papers.id"], name="fk_author_claims_paper_id_papers", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_author_claims_user_id_users", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["users.id"],
            name="fk_author_claims_decided_by_users",
            ondelete="SET NULL",
        ),
    )
    op.create_index("ix_author_claims_user_id", "author_claims", ["user_id"])
    op.create_index("ix_author_claims_status", "author_claims", ["status"])


def downgrade() -> None:
    op.drop_table("author_claims")
    op.drop_table("organization_members")
    with op.batch_alter_table("daily_entries") as batch:
        batch.drop_index("ix_daily_entries_status")
        batch.drop_index("ix_daily_entries_submitted_by_user_id")
        batch.drop_constraint("fk_daily_entries_submitted_by_user_id_users", type_="foreignkey")
        batch.drop_column("status")
        batch.drop_column("submitted_by_user_id")
    op.drop_column("papers", "hidden_at")
    op.drop_column("organizations", "description")
