"""Migrations, schema parity with the Core tables, and the full-text index kept in step."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from factories import make_record, rows, write_records
from sqlalchemy import Engine, text

from papertide.db.engine import make_engine, write_transaction
from papertide.db.fulltext import match_paper_ids
from papertide.db.migrate import (
    downgrade,
    migrate,
    migration_status,
    require_current_schema,
)
from papertide.db.schema import metadata
from papertide.errors import NotReady


def test_fresh_database_has_every_migration_pending(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    status = migration_status(engine)
    assert status.current is None
    assert status.pending and status.pending[0].startswith("0001 ")
    with pytest.raises(NotReady, match="pending migration"):
        require_current_schema(engine)
    status = migrate(engine)
    assert status.up_to_date and status.current == status.head
    require_current_schema(engine)
    engine.dispose()


def test_migrated_schema_matches_core_tables(engine: Engine) -> None:
    with engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), metadata)
    # The full-text parts (FTS5 tables, the tsvector column and its index) are engine-specific
    # and deliberately not Core objects.
    diffs = [d for d in diffs if "papers_fts" not in repr(d) and "search_vector" not in repr(d)]
    assert diffs == []


def test_downgrade_then_upgrade_round_trips(engine: Engine) -> None:
    write_records(engine, make_record("2505.00001"))
    status = downgrade(engine, "base")
    assert status.current is None
    assert migrate(engine).up_to_date
    assert rows(engine, "SELECT count(*) FROM papers")[0][0] == 0


def test_fulltext_index_follows_insert_update_delete(engine: Engine) -> None:
    write_records(
        engine,
        make_record("2505.00001", title="Sparse attention for long context"),
        make_record("2505.00002", title="Diffusion language models", abstract="Denoising text."),
    )
    with engine.connect() as connection:
        ids = dict(connection.execute(text("SELECT arxiv_id, id FROM papers")).all())
        assert match_paper_ids(connection, "attention") == [ids["2505.00001"]]
        assert match_paper_ids(connection, "denoising") == [ids["2505.00002"]]
        assert sorted(match_paper_ids(connection, "Lovelace")) == sorted(ids.values())
    write_records(
        engine,
        make_record("2505.00001", version=2, title="Linear recurrences for long context"),
    )
    with engine.connect() as connection:
        assert match_paper_ids(connection, "attention") == []
        assert match_paper_ids(connection, "recurrences") == [ids["2505.00001"]]
    with write_transaction(engine) as connection:
        connection.execute(text("DELETE FROM papers WHERE arxiv_id = '2505.00002'"))
    with engine.connect() as connection:
        assert match_paper_ids(connection, "denoising") == []


def test_sqlite_pragmas(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
    engine.dispose()
