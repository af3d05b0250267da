"""PostgreSQL: a GIN index on the titles' own ``tsvector``, so keyword search finds every paper
with the query's words in its title however old it is.

Why: issue 8's benchmark at 1M papers. ``ts_rank_cd`` reads each candidate's ``tsvector``, so
ranking every paper that matches a broad query took seconds (p50 1.4 s, p99 15.5 s); relevance
now ranks a bounded set of candidates (see :mod:`papertide.search.keyword_postgres`). The newest
papers with every word are one part of that set; this index gives the other, the papers with
every word in the title, which the weighted ``search_vector`` and its index cannot select
without reading each match (the GIN index does not hold weights). An expression index: no
column is added, so no table rewrite; building it and ANALYZE read every title once (13 s at
1M papers). SQLite's keyword index (tantivy) has its own title field.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# The same expression keyword_postgres.TITLE_VECTOR searches with, character for character in
# meaning: the planner uses the index only for an equal expression.
TITLE_VECTOR = "to_tsvector('english'::regconfig, coalesce(title, ''::text))"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX ix_papers_title_search ON papers USING gin (({TITLE_VECTOR}))")
        # Statistics of the indexed expression, which keyword search's choice of plan reads;
        # without them the planner assumes a default share of matching titles.
        op.execute("ANALYZE papers")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_papers_title_search")
