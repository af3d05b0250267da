"""`papertide db copy` and the table checksums it verifies with, on real SQLite files and a real
PostgreSQL server: both directions, refusals, and a copy taken while the source is written to."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from factories import listed, make_record, write_records
from people import add_user
from sqlalchemy import Engine, create_engine, insert, select, text, update
from sqlalchemy.engine import make_url

from papertide.db.checksums import compare, data_tables, table_checksums
from papertide.db.engine import make_engine, write_transaction
from papertide.db.migrate import migrate
from papertide.db.schema import audit_log, paper_embeddings, papers, users

OTHER = {"sqlite": "postgresql", "postgresql": "sqlite"}


@pytest.fixture
def new_url(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Makes the URL of a new, empty database on the engine named."""

    def make(kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / f'copy-{uuid.uuid4().hex[:8]}.db'}"
        admin_url = request.getfixturevalue("pg_admin_url")
        name = f"papertide_copy_{uuid.uuid4().hex[:10]}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return make_url(admin_url).set(database=name).render_as_string(hide_password=False)

    return make


def small_catalog(engine: Engine) -> None:
    """A few papers with lists, people, an embedding and JSON values."""
    write_records(
        engine,
        *[
            make_record(
                f"2505.{n:05d}",
                title=f"Paper {n}: Schrödinger ∂ö",
                listing=listed(date(2025, 5, 2), n),
            )
            for n in range(1, 8)
        ],
    )
    for name in ("Zoë", "alice", "Bob"):
        add_user(engine, name)
    with write_transaction(engine) as connection:
        connection.execute(
            insert(paper_embeddings).values(
                paper_id=1,
                model="test-model",
                vector=np.linspace(-1, 1, 16, dtype=np.float32),
                created_at=datetime(2025, 5, 3, 4, 5, 6, 789, tzinfo=UTC),
            )
        )
        connection.execute(
            insert(audit_log).values(
                at=datetime(2025, 5, 3, tzinfo=UTC),
                action="paper.hide",
                target="paper:2505.00001",
                details={"reason": "spam", "b": [1, 2.5, None]},
            )
        )


def test_checksums_agree_across_engines(engine_name: str, new_url: Callable[[str], str]) -> None:
    """The same rows give the same checksums on SQLite and PostgreSQL (written here through the
    typed Core layer on both, independently of the copy)."""
    source = make_engine(new_url(engine_name))
    target = make_engine(new_url(OTHER[engine_name]))
    try:
        migrate(source)
        migrate(target)
        small_catalog(source)
        with source.connect() as reading, write_transaction(target) as writing:
            for table in data_tables():
                found = [dict(row._mapping) for row in reading.execute(select(table))]
                if found:
                    writing.execute(insert(table), found)
        mine, theirs = table_checksums(source), table_checksums(target)
        assert compare(mine, theirs) == []
        assert mine == theirs
        assert mine["papers"].rows == 7 and mine["users"].rows == 3
        assert mine["paper_embeddings"].rows == 1 and mine["audit_log"].rows == 1
        assert "search_changes" not in mine and "leases" not in mine
    finally:
        source.dispose()
        target.dispose()


def test_checksum_changes_when_one_value_differs(engine: Engine, db_url: str) -> None:
    small_catalog(engine)
    before = table_checksums(engine)
    assert before == table_checksums(engine)  # stable
    with write_transaction(engine) as connection:  # one microsecond, one row, one column
        when = connection.execute(select(users.c.created_at).where(users.c.id == 2)).scalar_one()
        connection.execute(
            update(users).where(users.c.id == 2).values(created_at=when + timedelta(microseconds=1))
        )
    after = table_checksums(engine)
    assert [line.split(":")[0] for line in compare(before, after)] == ["users"]
    assert after["users"].rows == before["users"].rows
    assert "same 3 rows but different values" in compare(before, after)[0]
    with write_transaction(engine) as connection:  # an embedding's last component
        vector = connection.execute(select(paper_embeddings.c.vector)).scalar_one()
        vector[-1] = -vector[-1]
        connection.execute(update(paper_embeddings).values(vector=vector))
        connection.execute(update(papers).where(papers.c.id == 7).values(title="Paper 7"))
    changed = table_checksums(engine)
    assert {line.split(":")[0] for line in compare(after, changed)} == {
        "paper_embeddings",
        "papers",
    }
    only = table_checksums(engine, ["users", "papers"])
    assert list(only) == ["users", "papers"] and only["papers"] == changed["papers"]
