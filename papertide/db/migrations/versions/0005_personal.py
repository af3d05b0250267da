"""Personal feeds: folders of saved papers, follows, dismissals and seen marks, interests.

Why: issue 5 ("for you" ranking). Saves (in named folders, public ones followable) and upvotes
are a user's positives, dismissals ("not interested") the negatives; ``paper_marks`` also holds
"seen", shared by pages, digests and feeds so nothing is recommended twice; ``interests`` holds
topics, include/exclude rules, the relevance threshold and the trending weight.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "folders",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("slug", sa.String(80), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("public", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_folders"),
        sa.UniqueConstraint("user_id", "slug", name="uq_folders_user_id_slug"),
        _fk("folders", "user_id", "users"),
    )
    op.create_table(
        "saved_papers",
        sa.Column("folder_id", sa.Integer, nullable=False),
        sa.Column("paper_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("saved_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("folder_id", "paper_id", name="pk_saved_papers"),
        _fk("saved_papers", "folder_id", "folders"),
        _fk("saved_papers", "paper_id", "papers"),
        _fk("saved_papers", "user_id", "users"),
    )
    op.create_index("ix_saved_papers_user_id", "saved_papers", ["user_id", "paper_id"])
    op.create_table(
        "folder_follows",
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("folder_id", sa.Integer, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "folder_id", name="pk_folder_follows"),
        _fk("folder_follows", "user_id", "users"),
        _fk("folder_follows", "folder_id", "folders"),
    )
    op.create_index("ix_folder_follows_folder_id", "folder_follows", ["folder_id"])
    op.create_table(
        "paper_marks",
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("paper_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "paper_id", "kind", name="pk_paper_marks"),
        _fk("paper_marks", "user_id", "users"),
        _fk("paper_marks", "paper_id", "papers"),
    )
    op.create_table(
        "interests",
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("topics", sa.JSON, nullable=False),
        sa.Column("rules", sa.JSON, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False, server_default="0"),
        sa.Column("trending_weight", sa.Float, nullable=False, server_default="0.3"),
        sa.Column("window_days", sa.Integer, nullable=False, server_default="7"),
        sa.Column("onboarded_at", TZ),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_interests"),
        _fk("interests", "user_id", "users"),
    )


def downgrade() -> None:
    for table in ("interests", "paper_marks", "folder_follows", "saved_papers", "folders"):
        op.drop_table(table)
