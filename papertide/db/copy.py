"""Moving an installation to another database (``papertide db copy``), verified table by table.

The source is read in one :func:`~papertide.db.checksums.snapshot` (one read transaction on
SQLite in WAL mode, REPEATABLE READ READ ONLY on PostgreSQL), so the site may keep running: the
copy is the database as it was when the copy started; later writes are not in it. The empty
target is migrated to the head, then the data tables (not
:data:`~papertide.db.checksums.EXCLUDED_TABLES`, nor PostgreSQL's generated ``tsvector``) are
copied in foreign-key order, each in primary-key order and in batches, all in one transaction
(a failed copy leaves the target empty). Values go through the column types, so each engine gets
its own form; JSON columns travel as their stored text. On PostgreSQL the serial sequences are
then set past the largest ids, the tables analyzed and an HNSW index made per embedding size; a
SQLite target's search indexes are built by ``papertide index``. Last, every table's row count
and checksum are compared between the source snapshot and the target. docs/database.md has the
procedure.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import psycopg
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table as RichTable
from sqlalchemy import JSON, Connection, Engine, Table, func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from papertide.db.checksums import (
    BATCH_ROWS,
    TableChecksum,
    compare,
    data_tables,
    embedding_bytes,
    ordered_select,
    snapshot,
    table_checksums,
)
from papertide.db.column_types import EmbeddingVector
from papertide.db.engine import bulk_writer, make_engine, normalize_url
from papertide.db.migrate import MigrationStatus, migrate, migration_status
from papertide.errors import ConfigError, InvalidInput, NotReady, PapertideError


class CopyProgress(Protocol):
    """Told of every batch. ``stage`` "copy": rows of ``table`` copied out of its ``total``;
    "source checksums" and "target checksums": rows hashed in all tables out of all rows."""

    def __call__(self, stage: str, table: str, done: int, total: int) -> None: ...


@dataclass
class TableResult:
    name: str
    rows: int  # copied
    seconds: float
    source: TableChecksum | None = None
    target: TableChecksum | None = None

    @property
    def ok(self) -> bool:
        return self.source is not None and self.source == self.target


@dataclass
class CopyReport:
    source: str  # URLs with the password hidden
    target: str
    tables: list[TableResult]
    copy_seconds: float
    verify_seconds: float
    finish_seconds: float = 0.0
    mismatches: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    @property
    def rows(self) -> int:
        return sum(table.rows for table in self.tables)

    @property
    def papers(self) -> int:
        return sum(table.rows for table in self.tables if table.name == "papers")


def copy_database(
    source_url: str,
    target_url: str,
    *,
    batch_rows: int = BATCH_ROWS,
    progress: CopyProgress | None = None,
) -> CopyReport:
    """Copy every data table of ``source_url`` into the empty database ``target_url`` and
    verify the copy (see the module's docstring).

    InvalidInput when the target is the source, holds data or is at another revision;
    NotReady when the source has migrations pending or a database cannot be reached.
    """
    shown_source, shown_target = source_url, target_url
    source_url, target_url = normalize_url(source_url), normalize_url(target_url)
    if _same_database(source_url, target_url):
        raise InvalidInput("--to: the target is the source database; give another one")
    source = _engine("--from", source_url)
    target = _engine("--to", target_url)
    try:
        _check_source(source)
        _prepare_target(target)
        report = _copy_and_verify(source, target, batch_rows, progress or _silent)
        report.source, report.target = _shown(shown_source), _shown(shown_target)
        report.next_steps = _next_steps(shown_target, target)
        return report
    finally:
        source.dispose()
        target.dispose()


def _silent(stage: str, table: str, done: int, total: int) -> None:
    pass


def _shown(url: str) -> str:
    """The URL as given, its password (if any) hidden."""
    parsed = make_url(url)
    return parsed.render_as_string(hide_password=True) if parsed.password else url


def _same_database(a: str, b: str) -> bool:
    first, second = make_url(a), make_url(b)
    if first.get_backend_name() != second.get_backend_name():
        return False
    if first.get_backend_name() == "sqlite":
        return bool(first.database) and (
            Path(first.database or "").expanduser().resolve()
            == Path(second.database or "").expanduser().resolve()
        )
    keys = [(u.host, u.port, u.database, u.query.get("host")) for u in (first, second)]
    return keys[0] == keys[1]


def _engine(option: str, url: str) -> Engine:
    try:
        engine = make_engine(url)
    except ConfigError as exc:
        raise InvalidInput(
            f"{option}: {exc.message.removeprefix('setting database_url: ')}"
        ) from exc
    if engine.url.database in (None, "", ":memory:") and engine.dialect.name == "sqlite":
        raise InvalidInput(f"{option}: give a SQLite database file, not an in-memory database")
    return engine


def _status_of(option: str, engine: Engine) -> MigrationStatus:
    try:
        return migration_status(engine)
    except NotReady as exc:
        raise NotReady(f"{option}: {exc.message}") from exc


def _check_source(source: Engine) -> None:
    status = _status_of("--from", source)
    if status.current is None:
        raise InvalidInput("--from: the database has no Papertide schema (nothing to copy)")
    if not status.up_to_date:
        raise NotReady(
            f"--from: the database has {len(status.pending)} pending migration(s) "
            f"({', '.join(status.pending)}); run `papertide db migrate` on it first, "
            "then copy"
        )


def _prepare_target(target: Engine) -> None:
    """Migrate an empty target to the head; refuse one that holds data or another revision."""
    status = _status_of("--to", target)
    if status.current is None:
        existing = sorted(inspect(target).get_table_names())
        if existing:
            raise InvalidInput(
                f"--to: the database holds tables ({', '.join(existing[:5])}) but no Papertide "
                "schema; copy into an empty database"
            )
        migrate(target)
    elif status.current != status.head:
        raise InvalidInput(
            f"--to: the database is at revision {status.current}, the source at {status.head}; "
            "copy into an empty database (the copy migrates it)"
        )
    with target.connect() as connection:
        holding = [
            table.name
            for table in data_tables()
            if connection.execute(select(1).select_from(table).limit(1)).first() is not None
        ]
    if holding:
        raise InvalidInput(
            f"--to: the database already holds data (in {', '.join(holding[:6])}"
            f"{', ...' if len(holding) > 6 else ''}); copy into an empty database only"
        )


def _copy_and_verify(
    source: Engine, target: Engine, batch_rows: int, progress: CopyProgress
) -> CopyReport:
    tables = data_tables()
    with snapshot(source) as reading:
        totals = {
            table.name: int(reading.execute(select(func.count()).select_from(table)).scalar_one())
            for table in tables
        }
        started = time.perf_counter()
        results, dimensions = _copy_tables(reading, target, tables, totals, batch_rows, progress)
        if target.dialect.name == "postgresql":  # fresh statistics for the planner
            with target.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("ANALYZE")
        analyzed = time.perf_counter()
        source_sums = table_checksums(
            reading, progress=_counting("source checksums", totals, progress)
        )
    target_sums = table_checksums(target, progress=_counting("target checksums", totals, progress))
    verified = time.perf_counter()
    for result in results:
        result.source, result.target = source_sums.get(result.name), target_sums.get(result.name)
    report = CopyReport(
        source="",
        target="",
        tables=results,
        copy_seconds=analyzed - started,
        verify_seconds=verified - analyzed,
        mismatches=compare(source_sums, target_sums),
    )
    if report.ok and target.dialect.name == "postgresql" and dimensions:
        _vector_indexes(target, dimensions)
        report.finish_seconds = time.perf_counter() - verified
    return report


def _counting(
    stage: str, totals: dict[str, int], progress: CopyProgress
) -> Callable[[str, int], None]:
    whole = sum(totals.values())
    done_in: dict[str, int] = {}

    def advance(table: str, done: int) -> None:
        done_in[table] = done
        progress(stage, table, sum(done_in.values()), whole)

    return advance


def _copy_tables(
    reading: Connection,
    target: Engine,
    tables: list[Table],
    totals: dict[str, int],
    batch_rows: int,
    progress: CopyProgress,
) -> tuple[list[TableResult], set[int]]:
    """Every table, in one target transaction; the embedding sizes seen (for their indexes)."""
    results = []
    dimensions: set[int] = set()
    with bulk_writer(target) as writing, writing.begin():
        for table in tables:
            started = time.perf_counter()
            progress("copy", table.name, 0, totals[table.name])
            try:
                rows = _copy_table(
                    reading, writing, table, batch_rows, totals[table.name], progress, dimensions
                )
            except (DBAPIError, psycopg.Error, sqlite3.Error) as exc:
                cause = getattr(exc, "orig", None) or exc
                raise PapertideError(
                    f"copying table {table.name} failed: {cause}; the target was left empty "
                    "(migrated): fix the cause and run the copy again"
                ) from exc
            results.append(TableResult(table.name, rows, time.perf_counter() - started))
        if target.dialect.name == "postgresql":
            _reset_sequences(writing)
    return results, dimensions


def _copy_table(
    reading: Connection,
    writing: Connection,
    table: Table,
    batch_rows: int,
    total: int,
    progress: CopyProgress,
    dimensions: set[int],
) -> int:
    columns = list(table.columns)
    dialect = writing.dialect
    processors: list[tuple[int, Callable[[Any], Any]]] = []
    for n, column in enumerate(columns):
        if isinstance(column.type, EmbeddingVector):
            processors.append(
                (n, _embedding_writer(reading.dialect.name, dialect.name, dimensions))
            )
        elif not isinstance(column.type, JSON):  # JSON columns travel as their stored text
            bind = column.type.dialect_impl(dialect).bind_processor(dialect)
            if bind is not None:
                processors.append((n, bind))
    result = reading.execution_options(yield_per=batch_rows).execute(
        ordered_select(table, reading.dialect.name)
    )

    def batches() -> Iterator[list[list[Any]]]:
        done = 0
        for batch in result.partitions():
            values = []
            for row in batch:
                value = list(row)
                for n, convert in processors:
                    value[n] = convert(value[n])
                values.append(value)
            yield values  # written when this resumes
            done += len(values)
            progress("copy", table.name, done, total)

    return _write(writing, table, batches())


def _write(writing: Connection, table: Table, batches: Iterator[list[list[Any]]]) -> int:
    """Write the batches: COPY on PostgreSQL, executemany on SQLite; how many rows."""
    names = ", ".join(f'"{column.name}"' for column in table.columns)
    raw = writing.connection.driver_connection
    assert raw is not None
    done = 0
    if writing.dialect.name == "postgresql":
        with (
            raw.cursor() as cursor,
            cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy,
        ):
            for rows in batches:
                for row in rows:
                    copy.write_row(row)
                done += len(rows)
        return done
    marks = ", ".join("?" for _ in table.columns)
    cursor = raw.cursor()
    try:
        for rows in batches:
            cursor.executemany(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', rows)
            done += len(rows)
    finally:
        cursor.close()
    return done


def _embedding_writer(
    source: str, target: str, dimensions: set[int]
) -> Callable[[bytes | None], Any]:
    """Embeddings as read (see checksums.read_columns) to the target's form: float16 bytes on
    SQLite, ``halfvec`` text on PostgreSQL; notes each vector's size."""

    def convert(value: bytes | None) -> Any:
        if value is None:
            return None
        data = embedding_bytes(value, source)
        dimensions.add(len(data) // 2)
        if target == "sqlite":
            return data
        strings = _half_strings()
        return "[" + ",".join([strings[code] for code in np.frombuffer(data, "<u2").tolist()]) + "]"

    return convert


@cache
def _half_strings() -> list[str]:
    """The shortest text of each of the 65,536 float16 values (as float32, which is exact and
    which pgvector parses back to the same half): formatting a 384-vector is then 384 look-ups."""
    halves = np.arange(65_536, dtype=np.uint16).view(np.float16).astype(np.float32)
    return [str(value) for value in halves]


def _reset_sequences(writing: Connection) -> None:
    """Set every serial or identity sequence past its column's largest value."""
    found = writing.exec_driver_sql(
        "SELECT table_name, column_name, "
        "pg_get_serial_sequence(quote_ident(table_name), column_name) AS sequence "
        "FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND pg_get_serial_sequence(quote_ident(table_name), column_name) IS NOT NULL"
    ).all()
    for table_name, column_name, sequence in found:
        writing.exec_driver_sql(
            f'SELECT setval(%(sequence)s, coalesce(max("{column_name}"), 0) + 1, false) '
            f'FROM "{table_name}"',
            {"sequence": sequence},
        )


def _vector_indexes(target: Engine, dimensions: set[int]) -> None:
    from papertide.search.vectors import ensure_pg_index

    with target.begin() as connection:
        for dim in sorted(dimensions):
            ensure_pg_index(connection, dim)


def _next_steps(target_url: str, target: Engine) -> list[str]:
    shown = _shown(target_url)
    if target.dialect.name == "sqlite":
        return [
            f"build the search indexes beside it: PAPERTIDE_DATABASE_URL='{shown}' papertide index",
            f"then serve it: set PAPERTIDE_DATABASE_URL={shown} (and search_index_dir, if you "
            "set one, to a new folder) and start Papertide",
        ]
    return [
        f"serve it: set PAPERTIDE_DATABASE_URL to {shown} and start Papertide (PostgreSQL keeps "
        "its search indexes itself)"
    ]


# --- on the terminal --------------------------------------------------------------------------


class RichCopyProgress:
    """A bar per table while copying (rows, rows/s, ETA), one per side while verifying."""

    def __init__(self, console: Console) -> None:
        self._bar = Progress(
            TextColumn("{task.description:<20}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>10,.0f} rows/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self._tasks: dict[str, TaskID] = {}
        self._started: dict[str, float] = {}

    def __enter__(self) -> RichCopyProgress:
        self._bar.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._bar.stop()

    def __call__(self, stage: str, table: str, done: int, total: int) -> None:
        key = table if stage == "copy" else stage
        if key not in self._tasks:
            self._started[key] = time.perf_counter()
            self._tasks[key] = self._bar.add_task(key, total=None, rate=0.0)
        rate = done / max(time.perf_counter() - self._started[key], 1e-9)
        self._bar.update(self._tasks[key], completed=done, total=total, rate=rate)


def print_report(report: CopyReport, console: Console, err_console: Console, quiet: bool) -> None:
    """The table of rows and OK/MISMATCH per table, the figures, mismatches and next steps."""
    if not quiet:
        table = RichTable("table", "rows", "seconds", "check", box=None)
        for result in report.tables:
            check = "[green]OK[/green]" if result.ok else "[red]MISMATCH[/red]"
            table.add_row(result.name, f"{result.rows:,}", f"{result.seconds:.1f}", check)
        console.print(table)
    rate = report.rows / max(report.copy_seconds, 1e-9)
    papers_rate = report.papers / max(report.copy_seconds, 1e-9)
    console.print(
        f"copied {report.rows:,} rows ({report.papers:,} papers) from {report.source} to "
        f"{report.target} in {report.copy_seconds:.1f} s ({rate:,.0f} rows/s, "
        f"{papers_rate:,.0f} papers/s); verified in {report.verify_seconds:.1f} s"
        + (
            f"; vector index built in {report.finish_seconds:.1f} s"
            if report.finish_seconds
            else ""
        ),
        highlight=False,
        soft_wrap=True,
    )
    for line in report.mismatches:
        err_console.print(f"[red]mismatch:[/red] {line}", highlight=False, soft_wrap=True)
    if report.ok:
        for step in report.next_steps:
            console.print(f"next: {step}", highlight=False, soft_wrap=True)
