"""Catalog: papers, versions, authors, categories, organizations, daily lists, trending.

Why: the foundation schema (issue 2) and its full-text index (FTS5 on SQLite, tsvector + GIN on
PostgreSQL).

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("slug", sa.String(100), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("avatar_url", sa.Text),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_organizations"),
        sa.UniqueConstraint("slug", name="uq_organizations_slug"),
    )
    op.create_table(
        "papers",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("arxiv_id", sa.String(64), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("abstract", sa.Text, nullable=False, server_default=""),
        sa.Column("authors_text", sa.Text, nullable=False, server_default=""),
        sa.Column("author_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("ai_summary", sa.Text),
        sa.Column("ai_summary_model", sa.Text),
        sa.Column("primary_category", sa.String(64)),
        sa.Column("published_at", TZ),
        sa.Column("updated_at", TZ),
        sa.Column("latest_version", sa.Integer),
        sa.Column("comments", sa.Text),
        sa.Column("journal_ref", sa.Text),
        sa.Column("doi", sa.Text),
        sa.Column("report_no", sa.Text),
        sa.Column("license", sa.Text),
        sa.Column("msc_class", sa.Text),
        sa.Column("acm_class", sa.Text),
        sa.Column("submitter", sa.Text),
        sa.Column("code_url", sa.Text),
        sa.Column("project_url", sa.Text),
        sa.Column("organization_id", sa.Integer),
        sa.Column("withdrawn", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("imported_upvotes", sa.Integer, nullable=False, server_default="0"),
        sa.Column("upvotes", sa.Integer, nullable=False, server_default="0"),
        sa.Column("field_sources", sa.JSON, nullable=False),
        sa.Column("content_hash", sa.String(32), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("modified_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_papers"),
        sa.UniqueConstraint("arxiv_id", name="uq_papers_arxiv_id"),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_papers_organization_id_organizations",
            ondelete="SET NULL",
        ),
    )
    op.create_index("ix_papers_published_at", "papers", ["published_at"])
    op.create_table(
        "paper_versions",
        sa.Column("paper_id", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("submitted_at", TZ),
        sa.Column("size", sa.String(32)),
        sa.PrimaryKeyConstraint("paper_id", "version", name="pk_paper_versions"),
        _paper_fk("paper_versions"),
    )
    op.create_table(
        "paper_authors",
        sa.Column("paper_id", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("affiliation", sa.Text),
        sa.PrimaryKeyConstraint("paper_id", "position", name="pk_paper_authors"),
        _paper_fk("paper_authors"),
    )
    op.create_index("ix_paper_authors_name", "paper_authors", ["name"])
    op.create_table(
        "paper_categories",
        sa.Column("paper_id", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("paper_id", "position", name="pk_paper_categories"),
        _paper_fk("paper_categories"),
    )
    op.create_index("ix_paper_categories_category", "paper_categories", ["category"])
    op.create_table(
        "daily_entries",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("paper_id", sa.Integer, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("position", sa.Integer),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("submitter_name", sa.Text),
        sa.Column("comment", sa.Text),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_daily_entries"),
        sa.UniqueConstraint("paper_id", "day", name="uq_daily_entries_paper_id_day"),
        _paper_fk("daily_entries"),
    )
    op.create_index("ix_daily_entries_day", "daily_entries", ["day", "position"])
    op.create_table(
        "ingest_state",
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("cursor", sa.Text),
        sa.Column("last_run_at", TZ),
        sa.Column("details", sa.JSON),
        sa.PrimaryKeyConstraint("source", name="pk_ingest_state"),
    )
    op.create_table(
        "trending",
        sa.Column("paper_id", sa.Integer, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("upvotes", sa.Integer, nullable=False),
        sa.Column("listed_on", sa.Date, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("computed_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("paper_id", name="pk_trending"),
        _paper_fk("trending"),
    )
    op.create_index("ix_trending_rank", "trending", ["rank"])
    create_fulltext(op.get_bind())


# The full-text index as this revision made it (FTS5 on SQLite, a generated tsvector on
# PostgreSQL), frozen here: migration 0004 replaces the SQLite part with tantivy beside the file.
SQLITE_DDL = (
    """
    CREATE VIRTUAL TABLE papers_fts USING fts5(
        title, abstract, authors_text,
        content='papers', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2'
    )
    """,
    """
    CREATE TRIGGER papers_fts_insert AFTER INSERT ON papers BEGIN
        INSERT INTO papers_fts(rowid, title, abstract, authors_text)
        VALUES (new.id, new.title, new.abstract, new.authors_text);
    END
    """,
    """
    CREATE TRIGGER papers_fts_delete AFTER DELETE ON papers BEGIN
        INSERT INTO papers_fts(papers_fts, rowid, title, abstract, authors_text)
        VALUES ('delete', old.id, old.title, old.abstract, old.authors_text);
    END
    """,
    """
    CREATE TRIGGER papers_fts_update AFTER UPDATE OF title, abstract, authors_text ON papers
    BEGIN
        INSERT INTO papers_fts(papers_fts, rowid, title, abstract, authors_text)
        VALUES ('delete', old.id, old.title, old.abstract, old.authors_text);
        INSERT INTO papers_fts(rowid, title, abstract, authors_text)
        VALUES (new.id, new.title, new.abstract, new.authors_text);
    END
    """,
)

SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS papers_fts_update",
    "DROP TRIGGER IF EXISTS papers_fts_delete",
    "DROP TRIGGER IF EXISTS papers_fts_insert",
    "DROP TABLE IF EXISTS papers_fts",
)

POSTGRES_DDL = (
    """
    ALTER TABLE papers ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', coalesce(title, '')), 'A') ||
        setweight(to_tsvector('english', coalesce(abstract, '')), 'B') ||
        setweight(to_tsvector('english', coalesce(authors_text, '')), 'C')
    ) STORED
    """,
    "CREATE INDEX ix_papers_search_vector ON papers USING gin (search_vector)",
)

POSTGRES_DROP = (
    "DROP INDEX IF EXISTS ix_papers_search_vector",
    "ALTER TABLE papers DROP COLUMN IF EXISTS search_vector",
)


def create_fulltext(connection: sa.Connection) -> None:
    ddl = SQLITE_DDL if connection.dialect.name == "sqlite" else POSTGRES_DDL
    for statement in ddl:
        connection.exec_driver_sql(statement)


def drop_fulltext(connection: sa.Connection) -> None:
    ddl = SQLITE_DROP if connection.dialect.name == "sqlite" else POSTGRES_DROP
    for statement in ddl:
        connection.exec_driver_sql(statement)


def _paper_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["paper_id"], ["papers.id"], name=f"fk_{table}_paper_id_papers", ondelete="CASCADE"
    )


def downgrade() -> None:
    drop_fulltext(op.get_bind())
    for table in (
        "trending",
        "ingest_state",
        "daily_entries",
        "paper_categories",
        "paper_authors",
        "paper_versions",
        "papers",
        "organizations",
    ):
        op.drop_table(table)
