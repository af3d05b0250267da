"""Per-table checksums that are equal for the same data on SQLite and on PostgreSQL.

Each table's rows are read in primary-key order (text keys in code-point order on both engines:
``COLLATE "C"`` on PostgreSQL, SQLite's binary order) and every value is hashed in a normalized
form that does not depend on the engine:

- timestamps (:class:`~papertide.db.column_types.UTCDateTime`): UTC ISO 8601 with microseconds,
  ``2025-01-15T12:00:00.000000+00:00``; dates: ``2025-01-15``;
- booleans: ``true`` / ``false`` (SQLite stores 0 / 1); integers in decimal; floats by ``repr``;
- text as it is; bytes as hex;
- embeddings (:class:`~papertide.db.column_types.EmbeddingVector`: float16 bytes on SQLite,
  pgvector ``halfvec`` on PostgreSQL): the hex of their little-endian float16 bytes;
- JSON columns: read as stored text and canonicalized (keys sorted, no spaces), so two engines'
  serializers may differ in layout; a JSON ``null`` and an SQL NULL stay different.

Each value is written as ``<length>:<text>`` (SQL NULL as ``-``) and each row ends with a
newline, so no two different rows hash alike by shifting characters between columns. A table's
checksum is its row count and the SHA-256 of that stream. Rows are streamed in batches: a table
is never loaded whole.

Left out, as engine-specific derived data rather than the installation's data:

- ``search_changes``: SQLite's queue of papers the keyword index (tantivy, in a folder beside the
  database) has not seen yet, filled by triggers (empty and unused on PostgreSQL);
- ``leases``: who leads the running site's scheduler (:mod:`papertide.election`), state of live
  processes that a copy or a restore must not carry to another database;
- ``alembic_version``: the schema revision (compare it with
  :func:`papertide.db.migrate.migration_status`), not part of :data:`~papertide.db.schema.metadata`;
- PostgreSQL's generated ``papers.search_vector`` (``tsvector``) column, which is not in the
  Core schema and is computed by the database from the title, abstract and authors;
- what lives outside the database: the keyword and vector index files beside a SQLite database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Date,
    Engine,
    Float,
    Integer,
    LargeBinary,
    Select,
    String,
    Table,
    Text,
    cast,
    func,
    select,
    type_coerce,
)
from sqlalchemy.sql.elements import ColumnElement

from papertide.db.column_types import EmbeddingVector, UTCDateTime
from papertide.db.schema import metadata
from papertide.errors import InvalidInput

# Engine bookkeeping and live process state (see the module's docstring); alembic_version is not
# in the metadata.
EXCLUDED_TABLES = frozenset({"search_changes", "leases"})
BATCH_ROWS = 5_000
_SQLITE_READ = "SELECT count(*) FROM sqlite_master"  # reads the file: starts the snapshot

Progress = Callable[[str, int], None]  # (table, rows hashed so far in it)


@dataclass(frozen=True)
class TableChecksum:
    """A table's row count and the hex SHA-256 of its normalized rows in primary-key order."""

    rows: int
    digest: str


def data_tables(names: Iterable[str] | None = None) -> list[Table]:
    """The tables that hold an installation's data, parents before children (foreign-key
    order), without :data:`EXCLUDED_TABLES`; only ``names`` (any order) when given."""
    tables = [table for table in metadata.sorted_tables if table.name not in EXCLUDED_TABLES]
    if names is None:
        return tables
    wanted = set(names)
    unknown = sorted(wanted - {table.name for table in tables})
    if unknown:
        raise InvalidInput(f"no checksummed table named {', '.join(unknown)}")
    return [table for table in tables if table.name in wanted]


def read_columns(table: Table, dialect_name: str) -> list[ColumnElement[Any]]:
    """The table's columns as read for copying and hashing: JSON columns as their stored text
    (so a JSON ``null`` and an SQL NULL stay apart), embeddings as bytes (see
    :func:`embedding_bytes`), every other column through its type."""
    found: list[ColumnElement[Any]] = []
    for column in table.columns:
        if isinstance(column.type, JSON):
            found.append(cast(column, Text).label(column.name))
        elif isinstance(column.type, EmbeddingVector):
            # pgvector's binary form (halfvec_send): no text to format and parse.
            raw = func.halfvec_send(column) if dialect_name == "postgresql" else column
            found.append(type_coerce(raw, LargeBinary).label(column.name))
        else:
            found.append(column)
    return found


def embedding_bytes(value: bytes, dialect_name: str) -> bytes:
    """An embedding as :func:`read_columns` reads it, as little-endian float16 bytes: SQLite
    stores exactly that; PostgreSQL's ``halfvec_send`` gives a 4-byte header (dimensions,
    unused) and big-endian float16 values."""
    if dialect_name == "postgresql":
        return np.frombuffer(value, dtype=">f2", offset=4).astype("<f2").tobytes()
    return bytes(value)


def ordered_select(table: Table, dialect_name: str) -> Select[Any]:
    """All of ``table``'s rows in primary-key order, the same order on both engines."""
    order: list[ColumnElement[Any]] = []
    for column in table.primary_key.columns:
        if dialect_name == "postgresql" and isinstance(column.type, String):
            order.append(column.collate("C"))  # code-point order, like SQLite's BINARY
        else:
            order.append(column)
    return select(*read_columns(table, dialect_name)).order_by(*order)


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection that sees the database as it was at one moment, while others write.

    SQLite: one read transaction (in WAL mode writers carry on; the snapshot is fixed by the
    first read, made here). PostgreSQL: a REPEATABLE READ, READ ONLY transaction.
    """
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection = connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        with connection.begin():
            # The first read fixes the snapshot (on both engines), not BEGIN itself.
            first_read = "SELECT 1" if engine.dialect.name == "postgresql" else _SQLITE_READ
            connection.exec_driver_sql(first_read).scalar()
            yield connection


def table_checksums(
    connection_or_engine: Connection | Engine,
    tables: Iterable[str] | None = None,
    *,
    progress: Progress | None = None,
    batch_rows: int = BATCH_ROWS,
) -> dict[str, TableChecksum]:
    """The checksum of every data table (or of ``tables``), in foreign-key order.

    Given an Engine, reads in one :func:`snapshot`; given a Connection, reads in its current
    transaction (pass one from :func:`snapshot` to hash a live database consistently). The
    schema must be at the migrations' head.
    """
    if isinstance(connection_or_engine, Engine):
        with snapshot(connection_or_engine) as connection:
            return table_checksums(connection, tables, progress=progress, batch_rows=batch_rows)
    connection = connection_or_engine
    return {
        table.name: _table_checksum(connection, table, progress, batch_rows)
        for table in data_tables(tables)
    }


def compare(source: dict[str, TableChecksum], target: dict[str, TableChecksum]) -> list[str]:
    """One human-readable line per table that differs (empty when every table is identical)."""
    lines = []
    for name in [*source, *(name for name in target if name not in source)]:
        mine, theirs = source.get(name), target.get(name)
        if mine is None:
            assert theirs is not None
            lines.append(f"{name}: only in the target ({theirs.rows:,} rows)")
        elif theirs is None:
            lines.append(f"{name}: missing from the target ({mine.rows:,} rows in the source)")
        elif mine.rows != theirs.rows:
            lines.append(f"{name}: {mine.rows:,} rows in the source, {theirs.rows:,} in the target")
        elif mine.digest != theirs.digest:
            lines.append(
                f"{name}: same {mine.rows:,} rows but different values "
                f"(checksum {mine.digest[:12]} in the source, {theirs.digest[:12]} in the target)"
            )
    return lines


def _table_checksum(
    connection: Connection, table: Table, progress: Progress | None, batch_rows: int
) -> TableChecksum:
    dialect_name = connection.dialect.name
    normalizers = [_normalizer(table, column, dialect_name) for column in table.columns]
    hasher = hashlib.sha256()
    rows = 0
    statement = ordered_select(table, dialect_name)
    result = connection.execution_options(yield_per=batch_rows).execute(statement)
    for batch in result.partitions():
        # Column by column (list comprehensions), then row by row: "<len>:<text>" or "-".
        encoded: list[Sequence[str]] = [
            _encode(values, normalize)
            for values, normalize in zip(zip(*batch, strict=True), normalizers, strict=True)
        ]
        encoded.append(["\n"] * len(batch))
        stream = "".join(map("".join, zip(*encoded, strict=True)))
        hasher.update(stream.encode("utf-8", "surrogatepass"))
        rows += len(batch)
        if progress is not None:
            progress(table.name, rows)
    return TableChecksum(rows=rows, digest=hasher.hexdigest())


def _encode(values: Sequence[Any], normalize: Callable[[Any], str]) -> list[str]:
    if normalize is _text:
        return ["-" if value is None else f"{len(value)}:{value}" for value in values]
    return ["-" if value is None else f"{len(text := normalize(value))}:{text}" for value in values]


def _timestamp(value: datetime) -> str:
    if value.tzinfo is not UTC:  # UTCDateTime gives UTC already; anything else is converted
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")


def _date(value: date) -> str:
    return value.isoformat()


def _boolean(value: Any) -> str:
    return "true" if value else "false"


def _integer(value: Any) -> str:
    return str(value) if type(value) is int else str(int(value))


def _float(value: Any) -> str:
    return repr(float(value))


def _text(value: str) -> str:
    return value


def _binary(value: Any) -> str:
    return bytes(value).hex()


def _json(value: str) -> str:
    return json.dumps(json.loads(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _normalizer(table: Table, column: Column[Any], dialect_name: str) -> Callable[[Any], str]:
    kind = column.type

    def embedding(value: bytes) -> str:
        return embedding_bytes(value, dialect_name).hex()

    rules: tuple[tuple[type[Any], Callable[[Any], str]], ...] = (
        (EmbeddingVector, embedding),
        (UTCDateTime, _timestamp),
        (JSON, _json),
        (Boolean, _boolean),
        (Date, _date),
        (Float, _float),
        (Integer, _integer),
        (LargeBinary, _binary),
        (String, _text),
    )
    for type_, normalize in rules:
        if isinstance(kind, type_):
            return normalize
    raise TypeError(f"no checksum rule for {table.name}.{column.name} of type {kind!r}")
