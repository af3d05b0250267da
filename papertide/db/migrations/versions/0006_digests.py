"""Email digests: subscriptions, the outbox, and the scheduler's record of job runs.

Why: issue 6 (digests sent exactly once through SMTP). ``subscriptions`` holds double opt-in
subscribers (with or without an account), their preferences and bounce count; ``outbox`` one row
per (subscription, period), unique, with the Message-ID fixed when the row is created; and
``job_runs`` which scheduled runs already happened.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("user_id", sa.Integer),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("frequency", sa.String(8), nullable=False, server_default="daily"),
        sa.Column("size", sa.Integer, nullable=False, server_default="10"),
        sa.Column("personal", sa.Boolean, nullable=False, server_default="1"),
        sa.Column("rules", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("confirm_sent_at", TZ),
        sa.Column("confirmed_at", TZ),
        sa.Column("unsubscribed_at", TZ),
        sa.Column("bounces", sa.Integer, nullable=False, server_default="0"),
        sa.Column("bouncing_at", TZ),
        sa.Column("last_error", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_subscriptions"),
        sa.UniqueConstraint("email", name="uq_subscriptions_email"),
        sa.UniqueConstraint("token", name="uq_subscriptions_token"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_subscriptions_user_id_users", ondelete="SET NULL"
        ),
    )
    op.create_index("ix_subscriptions_user_id", "subscriptions", ["user_id"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("subscription_id", sa.Integer, nullable=False),
        sa.Column("period", sa.String(32), nullable=False),
        sa.Column("status", sa.String(8), nullable=False, server_default="pending"),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("resends", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("sent_at", TZ),
        sa.Column("paper_ids", sa.JSON),
        sa.Column("raw", sa.LargeBinary),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("message_id", name="uq_outbox_message_id"),
        sa.UniqueConstraint("subscription_id", "period", name="uq_outbox_subscription_id_period"),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name="fk_outbox_subscription_id_subscriptions",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_outbox_status_id", "outbox", ["status", "id"])
    op.create_index("ix_outbox_period_status", "outbox", ["period", "status"])
    op.create_table(
        "job_runs",
        sa.Column("job", sa.String(40), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("finished_at", TZ),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("detail", sa.Text),
        sa.PrimaryKeyConstraint("job", "key", name="pk_job_runs"),
    )


def downgrade() -> None:
    op.drop_table("job_runs")
    op.drop_index("ix_outbox_period_status", table_name="outbox")
    op.drop_index("ix_outbox_status_id", table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("ix_subscriptions_user_id", table_name="subscriptions")
    op.drop_table("subscriptions")
