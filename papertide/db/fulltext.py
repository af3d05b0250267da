"""The engine-specific full-text index over papers (title, abstract, authors).

SQLite: an FTS5 table with ``papers`` as its external content, kept in step by triggers, so every
writer (ingest, later edits, moderation) updates it without remembering to. Porter stemming and
diacritics folding; BM25 ranking with the title weighted above the abstract.

PostgreSQL: a stored generated ``tsvector`` column on ``papers`` (title weight A, abstract B,
authors C) with a GIN index; the database keeps it in step by itself.
"""

from __future__ import annotations

import re

from sqlalchemy import Connection, text

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

_WORD = re.compile(r"\w+", re.UNICODE)


def create_fulltext(connection: Connection) -> None:
    """Create the index for this connection's engine (called by the migrations)."""
    ddl = SQLITE_DDL if connection.dialect.name == "sqlite" else POSTGRES_DDL
    for statement in ddl:
        connection.exec_driver_sql(statement)


def drop_fulltext(connection: Connection) -> None:
    ddl = SQLITE_DROP if connection.dialect.name == "sqlite" else POSTGRES_DROP
    for statement in ddl:
        connection.exec_driver_sql(statement)


def rebuild_fulltext(connection: Connection) -> None:
    """Rebuild the SQLite index from the papers table (PostgreSQL needs nothing)."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("INSERT INTO papers_fts(papers_fts) VALUES ('rebuild')")


def match_paper_ids(connection: Connection, query: str, limit: int = 20) -> list[int]:
    """Ids of papers matching every word of ``query``, best first (BM25 / ts_rank)."""
    words = _WORD.findall(query)
    if not words:
        return []
    if connection.dialect.name == "sqlite":
        fts_query = " AND ".join('"' + word.replace('"', '""') + '"' for word in words)
        rows = connection.execute(
            text(
                "SELECT rowid FROM papers_fts WHERE papers_fts MATCH :q "
                "ORDER BY bm25(papers_fts, 10.0, 1.0, 3.0) LIMIT :limit"
            ),
            {"q": fts_query, "limit": limit},
        )
    else:
        rows = connection.execute(
            text(
                "SELECT id FROM papers, plainto_tsquery('english', :q) AS query "
                "WHERE search_vector @@ query "
                "ORDER BY ts_rank(search_vector, query) DESC, id LIMIT :limit"
            ),
            {"q": " ".join(words), "limit": limit},
        )
    return [row[0] for row in rows]
