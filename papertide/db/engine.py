"""Engine set-up for both engines: SQLite pragmas on every connection, psycopg for PostgreSQL."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from papertide.db.failures import is_sqlite_busy, too_busy, translated
from papertide.errors import ConfigError

log = logging.getLogger(__name__)
SQLITE_BUSY_TIMEOUT_MS = 10_000
# How long a SQLite writer waits for the write lock in all: BEGIN IMMEDIATE is retried (each
# try waits up to the busy timeout) until then, and only then does the writer give up with a
# 503 "too busy" (papertide.db.failures), never "database is locked".
SQLITE_WRITE_WAIT_S = 60.0
# What a bulk writer (an ingest run, see bulk_writer) changes on its SQLite connection for the
# run: a 256 MiB page cache instead of 2 MiB, temporary files (statement journals) in memory,
# and a WAL checkpoint every ~40 MB of log instead of every ~4 MB. Durability stays what every
# writer has: WAL with synchronous=NORMAL.
SQLITE_BULK_PRAGMAS = {"cache_size": -262_144, "temp_store": 2, "wal_autocheckpoint": 10_000}


def normalize_url(url: str) -> str:
    """Pick our drivers: ``postgresql://`` and ``postgres://`` mean psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create the engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database.startswith("file:") and parsed.query.get("uri") == "true":
            database = database[len("file:") :]  # a URI filename, e.g. ?mode=ro&uri=true
        if database and database != ":memory:":
            parent = Path(database).expanduser().resolve().parent
            if not parent.is_dir():
                raise ConfigError(
                    f"setting database_url: directory {parent} for the SQLite file does not exist"
                )
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            **kwargs,
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    if parsed.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, **kwargs)
    raise ConfigError(f"setting database_url: unsupported database {parsed.get_backend_name()!r}")


def pool_options(settings: Any) -> dict[str, Any]:
    """A web worker's connection pool on PostgreSQL, from the ``database_pool_*`` settings.

    Each worker keeps up to ``database_pool_size`` connections open and opens up to
    ``database_max_overflow`` more under load; a request waits ``database_pool_timeout`` seconds
    for one before failing. Size PostgreSQL's ``max_connections`` for workers x (size +
    overflow) + a few (the scheduler's lock, the CLI): see docs/operations.md. SQLite needs no
    tuning (its connections are cheap and its writers queue on the file lock).
    """
    if not str(settings.database_url).startswith(("postgresql", "postgres")):
        return {}
    return {
        "pool_size": settings.database_pool_size,
        "max_overflow": settings.database_max_overflow,
        "pool_timeout": settings.database_pool_timeout,
        "pool_recycle": 3600,  # connections older than an hour are replaced (server timeouts)
    }


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy control transactions (pysqlite's own BEGIN handling is off), see
    # https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#serializable-isolation-savepoints-transactional-ddl
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_on_begin(connection: Any) -> None:
    # Writers (see write_transaction) take the write lock up front with BEGIN IMMEDIATE, so two
    # writers queue on busy_timeout instead of failing with "database is locked" when a read
    # transaction tries to upgrade. Readers use a deferred BEGIN and never block in WAL mode.
    # A BEGIN IMMEDIATE that still finds the lock taken after the busy timeout is tried again
    # (nothing has run in the transaction yet) until SQLITE_WRITE_WAIT_S has passed.
    mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
    if mode != "IMMEDIATE":
        connection.exec_driver_sql(f"BEGIN {mode}")
        return
    started = time.monotonic()
    while True:
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except OperationalError as exc:
            waited = time.monotonic() - started
            if not is_sqlite_busy(exc) or waited >= SQLITE_WRITE_WAIT_S:
                raise
            log.warning("waited %.0f s for the SQLite write lock; still waiting", waited)


# One SQLite writer per process at a time (see write_transaction); weakly keyed by engine.
_writer_locks: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_writer_locks_lock = threading.Lock()


@contextmanager
def _turn(engine: Engine) -> Iterator[None]:
    """This thread's turn to write on ``engine`` (SQLite), waited for SQLITE_WRITE_WAIT_S at
    most: longer means a writer is stuck (or nested inside another), and waiting on would hang."""
    with _writer_locks_lock:
        lock = _writer_locks.get(engine)
        if lock is None:
            lock = _writer_locks[engine] = threading.Lock()
    if not lock.acquire(timeout=SQLITE_WRITE_WAIT_S):
        raise too_busy()
    try:
        yield
    finally:
        lock.release()


@contextmanager
def bulk_writer(engine: Engine) -> Iterator[Connection]:
    """One connection for a long series of write transactions (``with connection.begin()``).

    Each transaction takes the write lock up front like :func:`write_transaction`; between them
    the connection holds no lock. On SQLite the connection gets SQLITE_BULK_PRAGMAS for the
    run; they are restored and the WAL checkpointed (passively, never waiting on readers) at
    the end, so the next writer does not pay for the run's log.
    """
    with translated(), engine.connect() as connection:
        connection = connection.execution_options(sqlite_begin="IMMEDIATE")
        if not is_sqlite(engine):
            yield connection
            return
        raw = connection.connection.driver_connection
        assert raw is not None
        saved = {name: raw.execute(f"PRAGMA {name}").fetchone()[0] for name in SQLITE_BULK_PRAGMAS}
        for name, value in SQLITE_BULK_PRAGMAS.items():
            raw.execute(f"PRAGMA {name}={int(value)}")
        try:
            yield connection
        finally:
            if not connection.invalidated:
                if connection.in_transaction():
                    connection.rollback()
                for name, value in saved.items():
                    raw.execute(f"PRAGMA {name}={int(value)}")
                with suppress(sqlite3.Error):  # best effort: the disk may be full
                    raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: committed on success, rolled back on any error.

    On SQLite the threads of a process take turns (a lock, taken once the connection is in
    hand), so at most one per process waits on the file's write lock: the busy handler's
    polling then contends only with other processes, and a writer is not starved by its own
    siblings. A full disk, a read-only database, a lock not had in SQLITE_WRITE_WAIT_S and the
    like raise :class:`papertide.errors.DatabaseUnavailable` (papertide/db/failures.py).
    """
    with translated(), engine.connect() as connection:
        connection = connection.execution_options(sqlite_begin="IMMEDIATE")
        if not is_sqlite(engine):
            with connection.begin():
                yield connection
            return
        with _turn(engine), connection.begin():
            yield connection
