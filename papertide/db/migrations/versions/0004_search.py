"""Search: tantivy replaces FTS5 on SQLite; paper embeddings; exact-title index.

Why: issue 4 (hybrid search). On SQLite the keyword index moves out of the database into a
tantivy index beside the file (measured ~100x faster on broad queries at 1M papers), so the
FTS5 table and its triggers go, and ``search_changes`` with its triggers tells the indexer what
changed. ``paper_embeddings`` holds one vector per paper and model (pgvector ``halfvec`` on
PostgreSQL, so this revision enables the ``vector`` extension there); a trigger drops a paper's
vectors when its title or abstract changes. ``lower(title)`` is indexed for exact-title pins.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op

from papertide.db.column_types import EmbeddingVector
from papertide.db.fulltext import create_search_triggers, drop_search_triggers

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)

# The FTS5 index of revision 0001, dropped here and recreated by the downgrade.
_FTS5_DROP = (
    "DROP TRIGGER IF EXISTS papers_fts_update",
    "DROP TRIGGER IF EXISTS papers_fts_delete",
    "DROP TRIGGER IF EXISTS papers_fts_insert",
    "DROP TABLE IF EXISTS papers_fts",
)


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    if sqlite:
        for statement in _FTS5_DROP:
            bind.exec_driver_sql(statement)
    else:
        bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "search_changes",
        sa.Column("paper_id", sa.Integer, autoincrement=False),
        sa.Column("changes", sa.Integer, nullable=False, server_default="1"),
        sa.PrimaryKeyConstraint("paper_id", name="pk_search_changes"),
    )
    op.create_table(
        "paper_embeddings",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("paper_id", sa.Integer, nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("vector", EmbeddingVector(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_paper_embeddings"),
        sa.UniqueConstraint("paper_id", "model", name="uq_paper_embeddings_paper_id_model"),
        sa.ForeignKeyConstraint(
            ["paper_id"],
            ["papers.id"],
            name="fk_paper_embeddings_paper_id_papers",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_paper_embeddings_model_id", "paper_embeddings", ["model", "id"])
    op.create_index("ix_papers_title_lower", "papers", [sa.text("lower(title)")])
    create_search_triggers(bind)


def downgrade() -> None:
    bind = op.get_bind()
    drop_search_triggers(bind)
    op.drop_index("ix_papers_title_lower", "papers")
    op.drop_table("paper_embeddings")
    op.drop_table("search_changes")
    if bind.dialect.name == "sqlite":
        # Revision 0001's FTS5 DDL, read from that revision's file (versions/ is no package).
        spec = importlib.util.spec_from_file_location(
            "papertide_revision_0001", Path(__file__).with_name("0001_catalog.py")
        )
        assert spec is not None and spec.loader is not None
        catalog = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(catalog)
        for statement in catalog.SQLITE_DDL:
            bind.exec_driver_sql(statement)
        bind.exec_driver_sql("INSERT INTO papers_fts(papers_fts) VALUES ('rebuild')")
