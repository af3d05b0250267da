"""The catalog writer's big inserts and its loads on SQLite, through the DB-API cursor.

SQLAlchemy Core spends more time per row on parameter processing than SQLite spends storing it,
so on SQLite the writer builds rows as tuples already in stored form and inserts them with
multi-row ``INSERT .. VALUES (..), (..)`` statements. The values are exactly what SQLAlchemy's
SQLite types store (:class:`papertide.catalog.rows.SqliteValues`), so rows read back identically
whichever path wrote them; errors come out as the same SQLAlchemy exceptions.

Multi-row statements also keep the search triggers cheap (migration 0004: each marks the paper
in ``search_changes``). Under FTS5 (revisions 0001-0003) they mattered more: FTS5 flushed its
pending terms at every statement boundary, so one statement per paper cost 10.4 s per 100k papers
against 4.3 to 4.7 s in statements of ~1,000 rows.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

from papertide.catalog.merge import SCALAR_FIELDS, PaperState, empty_state
from papertide.db.schema import paper_versions, papers

# SQLite's default limit on bound parameters per statement (SQLITE_MAX_VARIABLE_NUMBER).
_DEFAULT_MAX_VARIABLES = 32766


def dbapi_connection(connection: Connection) -> sqlite3.Connection:
    raw = connection.connection.driver_connection
    assert isinstance(raw, sqlite3.Connection)
    return raw


@contextmanager
def core_errors(connection: Connection, statement: str) -> Iterator[None]:
    """Raise DB-API errors as the SQLAlchemy exceptions Core would raise (IntegrityError...)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise DBAPIError.instance(
            statement, None, exc, sqlite3.Error, dialect=connection.dialect
        ) from exc


def next_paper_id(connection: Connection) -> int:
    """The id SQLite would give the next paper: max(id) + 1 (no AUTOINCREMENT on papers).

    Valid for the rest of a write transaction, which holds the database's only write lock.
    """
    cursor = dbapi_connection(connection).cursor()
    try:
        with core_errors(connection, "SELECT max(id) FROM papers"):
            (largest,) = cursor.execute("SELECT max(id) FROM papers").fetchone()
    finally:
        cursor.close()
    return int(largest or 0) + 1


def insert_rows(
    connection: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order, stored form) with multi-row statements."""
    if not rows:
        return
    raw = dbapi_connection(connection)
    limit = _max_variables(raw)
    per_statement = max(1, limit // len(columns))
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    placeholder = "(" + ", ".join("?" * len(columns)) + ")"
    cursor = raw.cursor()
    try:
        for start in range(0, len(rows), per_statement):
            part = rows[start : start + per_statement]
            statement = head + ", ".join([placeholder] * len(part))
            with core_errors(connection, statement):
                cursor.execute(statement, list(chain.from_iterable(part)))
    finally:
        cursor.close()


def _max_variables(raw: sqlite3.Connection) -> int:
    getlimit = getattr(raw, "getlimit", None)
    if getlimit is None:  # pragma: no cover - Python < 3.11
        return 999
    return int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) or _DEFAULT_MAX_VARIABLES)


def load_states(
    connection: Connection, arxiv_ids: Sequence[str], chunk: int
) -> dict[str, PaperState]:
    """The catalog writer's state loading (see store._load_states) through the DB-API cursor.

    Same statements, same row order, and values converted by the very result processors
    SQLAlchemy would apply, so the states are identical; without Core's per-row machinery.
    """
    raw = dbapi_connection(connection)
    convert = _converters(connection.dialect)
    names = [name for name in SCALAR_FIELDS if name != "organization_slug"]
    converters = [(i, name, convert.get(name)) for i, name in enumerate(names, 4)]
    head = (
        "SELECT papers.id, papers.arxiv_id, papers.field_sources, organizations.slug, "
        + ", ".join(f"papers.{name}" for name in names)
        + " FROM papers LEFT OUTER JOIN organizations"
        " ON papers.organization_id = organizations.id WHERE papers.arxiv_id IN "
    )
    sources = convert["field_sources"]
    states: dict[str, PaperState] = {}
    by_pk: dict[int, PaperState] = {}
    cursor = raw.cursor()
    try:
        for part in _parts(arxiv_ids, chunk):
            for row in _select(connection, cursor, head, part):
                state = empty_state(row[1])
                fields = state.fields
                fields["organization_slug"] = row[3]
                for i, name, processor in converters:
                    fields[name] = row[i] if processor is None else processor(row[i])
                state.sources = dict(sources(row[2]) or {})
                fields["_id"] = row[0]
                states[row[1]] = state
                by_pk[row[0]] = state
        at = convert["submitted_at"]
        for part in _parts(list(by_pk), chunk):
            for pid, name, affiliation in _select(
                connection,
                cursor,
                "SELECT paper_id, name, affiliation FROM paper_authors WHERE paper_id IN ",
                part,
                " ORDER BY paper_id, position",
            ):
                by_pk[pid].authors.append((name, affiliation))
            for pid, category in _select(
                connection,
                cursor,
                "SELECT paper_id, category FROM paper_categories WHERE paper_id IN ",
                part,
                " ORDER BY paper_id, position",
            ):
                by_pk[pid].categories.append(category)
            for pid, number, submitted, size in _select(
                connection,
                cursor,
                "SELECT paper_id, version, submitted_at, size FROM paper_versions"
                " WHERE paper_id IN ",
                part,
            ):
                by_pk[pid].versions[number] = (at(submitted), size)
    finally:
        cursor.close()
    return states


def _parts(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _select(
    connection: Connection,
    cursor: sqlite3.Cursor,
    head: str,
    values: Sequence[Any],
    tail: str = "",
) -> list[Any]:
    statement = head + "(" + ", ".join("?" * len(values)) + ")" + tail
    with core_errors(connection, statement):
        return cursor.execute(statement, tuple(values)).fetchall()


_Processor = Callable[[Any], Any]


def _converters(dialect: Dialect) -> dict[str, _Processor]:
    """SQLAlchemy's result processors for the typed columns the writer loads, by column name."""
    found = _CONVERTERS.get(dialect)
    if found is None:
        found = {}
        for column in (*papers.columns, paper_versions.c.submitted_at):
            processor = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if processor is not None:
                found[column.name] = processor
        found.setdefault("field_sources", _identity)
        found.setdefault("submitted_at", _identity)
        _CONVERTERS[dialect] = found
    return found


def _identity(value: Any) -> Any:
    return value


_CONVERTERS: weakref.WeakKeyDictionary[Dialect, dict[str, _Processor]] = weakref.WeakKeyDictionary()
