"""Migrations, schema parity with the Core tables, and the full-text index kept in step."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from factories import make_record, rows, write_records
from sqlalchemy import Engine

from papertide.config import Settings
from papertide.db.engine import make_engine, pool_options
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
    # The full-text parts (FTS5 tables, the tsvector column, the GIN indexes) are engine-specific
    # and deliberately not Core objects.
    engine_specific = ("papers_fts", "search_vector", "ix_papers_title_search")
    diffs = [d for d in diffs if not any(name in repr(d) for name in engine_specific)]
    assert diffs == []


def test_downgrade_then_upgrade_round_trips(engine: Engine) -> None:
    write_records(engine, make_record("2505.00001"))
    status = downgrade(engine, "base")
    assert status.current is None
    assert migrate(engine).up_to_date
    assert rows(engine, "SELECT count(*) FROM papers")[0][0] == 0


def test_sqlite_pragmas(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
    engine.dispose()


def test_web_workers_pool_postgresql_connections_as_configured(
    engine_name: str, settings: Settings
) -> None:
    from papertide.web.app import create_app

    app = create_app(settings.replace(database_pool_size=3, database_max_overflow=2))
    try:
        pool = app.state.engine.pool
        if engine_name == "postgresql":
            assert (pool.size(), pool._max_overflow) == (3, 2)
            held = [app.state.engine.connect() for _ in range(5)]  # size + overflow
            assert pool.checkedout() == 5
            for connection in held:
                connection.close()
            assert pool.checkedin() == 3  # the overflow is closed again
        else:
            assert pool_options(settings) == {}  # SQLite keeps SQLAlchemy's defaults
    finally:
        app.state.engine.dispose()
