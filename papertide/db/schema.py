"""The one logical schema, in SQLAlchemy Core, shared by SQLite and PostgreSQL.

Papers carry an integer surrogate key (``id``) used by every child table and the search indexes;
the arXiv id without version (``arxiv_id``) is the natural key and is unique. Engine-specific
search parts (the change-marking triggers on SQLite, the ``tsvector`` column and GIN index on
PostgreSQL) are not Core objects: they live in :mod:`papertide.db.fulltext` and are created by
the migrations.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.types import LargeBinary

from papertide.db.column_types import EmbeddingVector, UTCDateTime
from papertide.db.metadata import NAMING, metadata
from papertide.db.schema_jobs import job_runs, leases

__all__ = ["NAMING", "job_runs", "leases", "metadata"]  # and every table below
# The moderation queue's partial index holds pending entries only (see migration 0008).
_PENDING = text("status = 'pending'")

organizations = Table(
    "organizations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("slug", String(100), nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("avatar_url", Text),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("description", Text),  # migration 0003
)

papers = Table(
    "papers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("arxiv_id", String(64), nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("abstract", Text, nullable=False, server_default=""),
    # Denormalised "A. One, B. Two" for the full-text index and cards; the ordered truth is
    # paper_authors.
    Column("authors_text", Text, nullable=False, server_default=""),
    Column("author_count", Integer, nullable=False, server_default="0"),
    Column("ai_summary", Text),
    Column("ai_summary_model", Text),
    Column("primary_category", String(64)),
    Column("published_at", UTCDateTime()),
    Column("updated_at", UTCDateTime()),
    Column("latest_version", Integer),
    Column("comments", Text),
    Column("journal_ref", Text),
    Column("doi", Text),
    Column("report_no", Text),
    Column("license", Text),
    Column("msc_class", Text),
    Column("acm_class", Text),
    Column("submitter", Text),
    Column("code_url", Text),
    Column("project_url", Text),
    Column("organization_id", Integer, ForeignKey("organizations.id", ondelete="SET NULL")),
    Column("withdrawn", Boolean, nullable=False, server_default="0"),
    Column("imported_upvotes", Integer, nullable=False, server_default="0"),
    Column("upvotes", Integer, nullable=False, server_default="0"),
    # {"title": "kaggle", "ai_summary": "hf_jsonfeed", ...}: which source set each field.
    Column("field_sources", JSON, nullable=False),
    # Hash of the metadata fields, so re-ingesting unchanged records costs one comparison.
    Column("content_hash", String(32), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("modified_at", UTCDateTime(), nullable=False),
    # Set by a moderator: the paper is left out of every list and answers 404 (migration 0003).
    Column("hidden_at", UTCDateTime()),
    Index("ix_papers_published_at", "published_at"),
)
# Exact-title matches are pinned first in search results (migration 0004).
Index("ix_papers_title_lower", func.lower(papers.c.title))

paper_versions = Table(
    "paper_versions",
    metadata,
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("submitted_at", UTCDateTime()),
    Column("size", String(32)),
    PrimaryKeyConstraint("paper_id", "version"),
)

paper_authors = Table(
    "paper_authors",
    metadata,
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("name", Text, nullable=False),
    Column("affiliation", Text),
    PrimaryKeyConstraint("paper_id", "position"),
    Index("ix_paper_authors_name", "name"),
)

paper_categories = Table(
    "paper_categories",
    metadata,
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("category", String(64), nullable=False),
    PrimaryKeyConstraint("paper_id", "position"),
    Index("ix_paper_categories_category", "category"),
)

daily_entries = Table(
    "daily_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), nullable=False),
    Column("day", Date, nullable=False),
    # Order on the day's list as the source gave it (0 = first); NULL for manual/auto entries.
    Column("position", Integer),
    # How the entry got there: an import source name, "auto-follow" or "submission".
    Column("source", String(32), nullable=False),
    Column("submitter_name", Text),
    Column("comment", Text),
    Column("created_at", UTCDateTime(), nullable=False),
    # Submissions by people (migration 0003): who, and whether the entry shows on the list
    # ("published"), waits for a moderator ("pending") or was turned down ("rejected").
    Column("submitted_by_user_id", Integer, ForeignKey("users.id", ondelete="SET NULL")),
    Column("status", String(16), nullable=False, server_default="published"),
    UniqueConstraint("paper_id", "day"),
    Index("ix_daily_entries_day", "day", "position"),
    Index("ix_daily_entries_submitted_by_user_id", "submitted_by_user_id", "day"),
    Index("ix_daily_entries_pending", "day", sqlite_where=_PENDING, postgresql_where=_PENDING),
)

ingest_state = Table(
    "ingest_state",
    metadata,
    # e.g. "oai-pmh https://oaipmh.arxiv.org/oai set=cs from=2025-01-01"
    Column("source", String(255), primary_key=True),
    Column("cursor", Text),
    Column("last_run_at", UTCDateTime()),
    Column("details", JSON),
)

trending = Table(
    "trending",
    metadata,
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), nullable=False),
    Column("score", Float, nullable=False),
    Column("rank", Integer, nullable=False),
    Column("upvotes", Integer, nullable=False),
    Column("listed_on", Date, nullable=False),
    Column("reason", Text, nullable=False),
    Column("computed_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("paper_id"),
    Index("ix_trending_rank", "rank"),
)

# --- search (migration 0004) --------------------------------------------------------------------

# SQLite only: papers whose searchable fields changed since the keyword index (tantivy, beside the
# database file) last saw them. Triggers on papers, paper_categories and daily_entries fill it;
# ``changes`` counts changes so the indexer removes only the marks it has handled. No foreign
# key: a deleted paper's mark tells the indexer to drop it. Empty on PostgreSQL, where the
# ``tsvector`` column is kept in step by the database itself.
search_changes = Table(
    "search_changes",
    metadata,
    Column("paper_id", Integer, primary_key=True, autoincrement=False),
    Column("changes", Integer, nullable=False, server_default="1"),
)

paper_embeddings = Table(
    "paper_embeddings",
    metadata,
    # Increasing with every write: vector indexes beside the database catch up by it.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), nullable=False),
    Column("model", String(200), nullable=False),
    Column("vector", EmbeddingVector(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("paper_id", "model"),
    Index("ix_paper_embeddings_model_id", "model", "id"),
)

# --- accounts and community (migration 0002) ---------------------------------------------------

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(40), nullable=False, unique=True),  # as typed, shown
    Column("username_key", String(40), nullable=False, unique=True),  # lower-case, for lookups
    Column("email", String(320), nullable=False, unique=True),  # lower-cased
    Column("password_hash", Text, nullable=False),
    Column("role", String(16), nullable=False, server_default="user"),
    Column("display_name", Text),
    Column("votes_public", Boolean, nullable=False, server_default="1"),
    Column("suspended_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_login_at", UTCDateTime()),
)

sessions = Table(
    "sessions",
    metadata,
    # SHA-256 of the random session id the cookie carries: a stolen database leaks no session.
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime()),
    Column("ip", String(64)),
    Column("user_agent", Text),
    Index("ix_sessions_user_id", "user_id"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),  # shown in lists: "pt_3f9a..."
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime()),
    Column("revoked_at", UTCDateTime()),
    Index("ix_api_tokens_user_id", "user_id"),
)

password_resets = Table(
    "password_resets",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime()),
)

rate_limits = Table(
    "rate_limits",
    metadata,
    # Fixed windows counted in the database, so limits hold across web workers.
    Column("key", String(200), nullable=False),
    Column("window_start", Integer, nullable=False),  # unix seconds
    Column("count", Integer, nullable=False),
    PrimaryKeyConstraint("key", "window_start"),
)

votes = Table(
    "votes",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("user_id", "paper_id"),
    Index("ix_votes_paper_id", "paper_id"),
)

comments = Table(
    "comments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("parent_id", Integer, ForeignKey("comments.id", ondelete="CASCADE")),
    Column("body_markdown", Text, nullable=False),
    Column("body_html", Text, nullable=False),  # rendered and sanitized (nh3) when written
    Column("created_at", UTCDateTime(), nullable=False),
    Column("edited_at", UTCDateTime()),
    Column("deleted_at", UTCDateTime()),
    Index("ix_comments_paper_id", "paper_id", "created_at"),
    Index("ix_comments_user_id", "user_id"),
)

site_secrets = Table(
    "site_secrets",
    metadata,
    # Generated on first start when no secret_key setting is given, shared by every worker.
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor_id", Integer, ForeignKey("users.id", ondelete="SET NULL")),
    Column("action", String(64), nullable=False),  # "paper.hide", "comment.delete", ...
    Column("target", String(200), nullable=False),  # "paper:2505.01234", "user:alice"
    Column("details", JSON),
    Index("ix_audit_log_at", "at"),
)

# --- organizations, submissions, authorship claims, moderation (migration 0003) ----------------

organization_members = Table(
    "organization_members",
    metadata,
    Column(
        "organization_id",
        Integer,
        ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(16), nullable=False, server_default="member"),  # member | admin
    Column("added_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("organization_id", "user_id"),
    Index("ix_organization_members_user_id", "user_id"),
)

author_claims = Table(
    "author_claims",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), nullable=False),
    # paper_authors.position; not a foreign key, since re-ingesting a paper rewrites its authors.
    Column("author_position", Integer, nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("decided_by", Integer, ForeignKey("users.id", ondelete="SET NULL")),
    Column("decided_at", UTCDateTime()),
    UniqueConstraint("paper_id", "author_position", "user_id"),
    Index("ix_author_claims_user_id", "user_id"),
    Index("ix_author_claims_status", "status"),
)

# --- personal feeds (migration 0005) ---------------------------------------------------------

folders = Table(
    "folders",
    metadata,
    # A user's named collection of saved papers; public ones can be followed by others.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("slug", String(80), nullable=False),
    Column("name", Text, nullable=False),
    Column("public", Boolean, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("user_id", "slug"),
)

saved_papers = Table(
    "saved_papers",
    metadata,
    Column("folder_id", Integer, ForeignKey("folders.id", ondelete="CASCADE"), nullable=False),
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("saved_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("folder_id", "paper_id"),
    Index("ix_saved_papers_user_id", "user_id", "paper_id"),
)

folder_follows = Table(
    "folder_follows",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("folder_id", Integer, ForeignKey("folders.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("user_id", "folder_id"),
    Index("ix_folder_follows_folder_id", "folder_id"),
)

# "dismissed" (not interested: a negative for the feed, never shown again) and "seen" (opened,
# or delivered by a digest or feed: never recommended again), one row per user, paper and kind.
paper_marks = Table(
    "paper_marks",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("via", String(16), nullable=False),  # web | digest | feed | api
    Column("at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("user_id", "paper_id", "kind"),
)

interests = Table(
    "interests",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    # ["diffusion language models", ...]: free-text topics, embedded for the cold start.
    Column("topics", JSON, nullable=False),
    # {"include": {"keywords": [...], "categories": [...], "authors": [...],
    #  "organizations": [...]}, "exclude": {...}}: hard filters.
    Column("rules", JSON, nullable=False),
    Column("threshold", Float, nullable=False, server_default="0"),
    Column("trending_weight", Float, nullable=False, server_default="0.3"),
    Column("window_days", Integer, nullable=False, server_default="7"),
    Column("onboarded_at", UTCDateTime()),
    Column("updated_at", UTCDateTime(), nullable=False),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),  # lower-cased
    # The account it belongs to (its "picked for you" section); None for email-only subscribers.
    Column("user_id", Integer, ForeignKey("users.id", ondelete="SET NULL")),
    # The secret in every email's links (preferences, preview, one-click unsubscribe).
    Column("token", String(64), nullable=False, unique=True),
    Column("frequency", String(8), nullable=False, server_default="daily"),  # daily | weekly
    Column("size", Integer, nullable=False, server_default="10"),  # papers per section
    Column("personal", Boolean, nullable=False, server_default="1"),  # add "picked for you"
    # {"include": {"keywords": [...], "categories": [...], ...}, "exclude": {...}}
    Column("rules", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("confirm_sent_at", UTCDateTime()),
    Column("confirmed_at", UTCDateTime()),
    Column("unsubscribed_at", UTCDateTime()),
    Column("bounces", Integer, nullable=False, server_default="0"),  # permanent refusals in a row
    Column("bouncing_at", UTCDateTime()),  # set at digest_bounce_limit: no more mail
    Column("last_error", Text),
    Index("ix_subscriptions_user_id", "user_id"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "subscription_id",
        Integer,
        ForeignKey("subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("period", String(32), nullable=False),  # daily:2026-11-30 | weekly:2026-W48
    # pending -> ready (composed) -> sending (handed to SMTP) -> sent | failed | skipped
    Column("status", String(8), nullable=False, server_default="pending"),
    Column("message_id", String(200), nullable=False, unique=True),  # fixed at creation
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("resends", Integer, nullable=False, server_default="0"),  # after an interruption
    Column("last_error", Text),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("sent_at", UTCDateTime()),
    Column("paper_ids", JSON),  # what the digest holds, fixed when composed
    Column("raw", LargeBinary),  # the composed message while it is in flight
    UniqueConstraint("subscription_id", "period"),
    Index("ix_outbox_status_id", "status", "id"),
    Index("ix_outbox_period_status", "period", "status"),
)

feed_tokens = Table(
    "feed_tokens",
    metadata,
    # The secret of a private "for you" feed URL (/feeds/for-you/<token>.atom). Only its SHA-256
    # is kept, like API tokens; a user has at most one live token (a new one revokes the old).
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),  # shown to its owner: "ft_3f9a..."
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime()),
    Index("ix_feed_tokens_user_id", "user_id"),
)
