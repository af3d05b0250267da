"""Feed tokens: the secret of each user's private "for you" feed URL.

Why: the feeds issue gives every user a private Atom/RSS/JSON feed of their "for you" page at a
secret URL a feed reader can poll without a session; the URL can be revoked. Only the token's
SHA-256 is stored (like ``api_tokens``), with a short prefix its owner recognises it by.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "feed_tokens",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ),
        sa.PrimaryKeyConstraint("id", name="pk_feed_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_feed_tokens_token_hash"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_feed_tokens_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_feed_tokens_user_id", "feed_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_feed_tokens_user_id", table_name="feed_tokens")
    op.drop_table("feed_tokens")
