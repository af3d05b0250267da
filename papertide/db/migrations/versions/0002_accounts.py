"""Accounts and community: users, sessions, tokens, rate limits, votes, comments, audit log.

Why: issue 3 (accounts and community) needs people: they sign up, log in, vote and comment;
rate limits and sessions live in the database so they hold across web workers.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def _user_fk(table: str, column: str = "user_id", ondelete: str = "CASCADE") -> sa.Constraint:
    return sa.ForeignKeyConstraint(
        [column], ["users.id"], name=f"fk_{table}_{column}_users", ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("username", sa.String(40), nullable=False),
        sa.Column("username_key", sa.String(40), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.String(16), nullable=False, server_default="user"),
        sa.Column("display_name", sa.Text),
        sa.Column("votes_public", sa.Boolean, nullable=False, server_default="1"),
        sa.Column("suspended_at", TZ),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("last_login_at", TZ),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
        sa.UniqueConstraint("username_key", name="uq_users_username_key"),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    op.create_table(
        "sessions",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("last_seen_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ),
        sa.Column("ip", sa.String(64)),
        sa.Column("user_agent", sa.Text),
        sa.PrimaryKeyConstraint("id_hash", name="pk_sessions"),
        _user_fk("sessions"),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("last_used_at", TZ),
        sa.Column("revoked_at", TZ),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
        _user_fk("api_tokens"),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "password_resets",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("used_at", TZ),
        sa.PrimaryKeyConstraint("token_hash", name="pk_password_resets"),
        _user_fk("password_resets"),
    )
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("window_start", sa.Integer, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("key", "window_start", name="pk_rate_limits"),
    )
    op.create_table(
        "votes",
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("paper_id", sa.Integer, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "paper_id", name="pk_votes"),
        _user_fk("votes"),
        sa.ForeignKeyConstraint(
            ["paper_id"], ["papers.id"], name="fk_votes_paper_id_papers", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_votes_paper_id", "votes", ["paper_id"])
    op.create_table(
        "comments",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("paper_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("parent_id", sa.Integer),
        sa.Column("body_markdown", sa.Text, nullable=False),
        sa.Column("body_html", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("edited_at", TZ),
        sa.Column("deleted_at", TZ),
        sa.PrimaryKeyConstraint("id", name="pk_comments"),
        _user_fk("comments"),
        sa.ForeignKeyConstraint(
            ["paper_id"], ["papers.id"], name="fk_comments_paper_id_papers", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["comments.id"],
            name="fk_comments_parent_id_comments",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_comments_paper_id", "comments", ["paper_id", "created_at"])
    op.create_index("ix_comments_user_id", "comments", ["user_id"])
    op.create_table(
        "site_secrets",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_site_secrets"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor_id", sa.Integer),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("details", sa.JSON),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
        _user_fk("audit_log", "actor_id", "SET NULL"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def downgrade() -> None:
    for table in (
        "audit_log",
        "site_secrets",
        "comments",
        "votes",
        "rate_limits",
        "password_resets",
        "api_tokens",
        "sessions",
        "users",
    ):
        op.drop_table(table)
