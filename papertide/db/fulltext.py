"""Database-side plumbing of the search indexes (created by migration 0004).

SQLite: the keyword index is tantivy, in a folder beside the database file
(:mod:`papertide.search.keyword_tantivy`), chosen by measurement over FTS5 (broad OR queries at
1M papers: FTS5 110 ms p50 / 590 ms p99, tantivy ~1 / 4 ms). What keeps it in step is here:
triggers mark every paper whose searchable fields change in ``search_changes`` (one cheap
upsert, far cheaper than FTS5's tokenizing inside the import's transaction), and the indexer
applies the marks. Every writer (ingest, votes, moderation, submissions) is covered without
remembering to.

PostgreSQL: a stored generated ``tsvector`` column on ``papers`` (title weight A, abstract B,
authors C) with a GIN index, made by migration 0001 and kept in step by the database; vectors
live in ``paper_embeddings.vector`` (pgvector ``halfvec``).

Both: when a paper's title or abstract changes, its embeddings are deleted by a trigger, so the
embedding job embeds it again and no vector describes text the paper no longer has.
"""

from __future__ import annotations

from sqlalchemy import Connection

_MARK = (
    "INSERT INTO search_changes(paper_id) VALUES ({id}) "
    "ON CONFLICT(paper_id) DO UPDATE SET changes = changes + 1"
)

# (trigger name, event, id expression): what makes a paper's index document change.
_SQLITE_MARKS = (
    ("search_mark_paper_insert", "AFTER INSERT ON papers", "new.id"),
    (
        "search_mark_paper_update",
        "AFTER UPDATE OF title, abstract, authors_text, published_at, code_url, "
        "organization_id, upvotes, hidden_at, withdrawn ON papers",
        "new.id",
    ),
    ("search_mark_paper_delete", "AFTER DELETE ON papers", "old.id"),
    ("search_mark_category_insert", "AFTER INSERT ON paper_categories", "new.paper_id"),
    ("search_mark_category_delete", "AFTER DELETE ON paper_categories", "old.paper_id"),
    ("search_mark_entry_insert", "AFTER INSERT ON daily_entries", "new.paper_id"),
    ("search_mark_entry_update", "AFTER UPDATE OF status ON daily_entries", "new.paper_id"),
    ("search_mark_entry_delete", "AFTER DELETE ON daily_entries", "old.paper_id"),
)

SQLITE_DDL = (
    *(
        f"CREATE TRIGGER {name} {event} BEGIN {_MARK.format(id=ident)}; END"
        for name, event, ident in _SQLITE_MARKS
    ),
    """
    CREATE TRIGGER paper_embeddings_stale AFTER UPDATE OF title, abstract ON papers
    WHEN old.title IS NOT new.title OR old.abstract IS NOT new.abstract
    BEGIN
        DELETE FROM paper_embeddings WHERE paper_id = new.id;
    END
    """,
    # Everything already in the catalog is new to the keyword index.
    "INSERT INTO search_changes(paper_id) SELECT id FROM papers",
)

SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS paper_embeddings_stale",
    *(f"DROP TRIGGER IF EXISTS {name}" for name, _event, _ident in _SQLITE_MARKS),
)

POSTGRES_DDL = (
    """
    CREATE FUNCTION papertide_drop_stale_embeddings() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM paper_embeddings WHERE paper_id = NEW.id;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER paper_embeddings_stale AFTER UPDATE OF title, abstract ON papers
    FOR EACH ROW
    WHEN (OLD.title IS DISTINCT FROM NEW.title OR OLD.abstract IS DISTINCT FROM NEW.abstract)
    EXECUTE FUNCTION papertide_drop_stale_embeddings()
    """,
)

POSTGRES_DROP = (
    "DROP TRIGGER IF EXISTS paper_embeddings_stale ON papers",
    "DROP FUNCTION IF EXISTS papertide_drop_stale_embeddings()",
)


def create_search_triggers(connection: Connection) -> None:
    """Create this engine's triggers (called by migration 0004, after its tables)."""
    ddl = SQLITE_DDL if connection.dialect.name == "sqlite" else POSTGRES_DDL
    for statement in ddl:
        connection.exec_driver_sql(statement)


def drop_search_triggers(connection: Connection) -> None:
    ddl = SQLITE_DROP if connection.dialect.name == "sqlite" else POSTGRES_DROP
    for statement in ddl:
        connection.exec_driver_sql(statement)
