"""Database refusals that are the state of the database, not a bug: what they mean to a user.

A full disk, a read-only database (a read-only SQLite file or mount, PostgreSQL with
``default_transaction_read_only`` or a hot standby), writers that stayed locked out too long,
a pool with no connection free in time, a server that cannot be reached or is shutting down:
:func:`unavailable` turns the driver's error into :class:`papertide.errors.DatabaseUnavailable`
(HTTP 503 with ``Retry-After``; the CLI prints one line and exits 4) with a message that says
what happened and that the change was not saved. Any other error is left alone (a bug stays a
500 with its traceback in the log). The driver's own words ("database is locked") never reach a
user.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from papertide.errors import DatabaseUnavailable

# (code, message, Retry-After seconds)
READ_ONLY = (
    "read_only",
    "the site is read-only at the moment; this change was not saved, try again later",
    300,
)
DISK_FULL = (
    "disk_full",
    "the database's disk is full; this change was not saved (the operator must free space)",
    300,
)
BUSY = (
    "busy",
    "the site is too busy to save this right now; it was not saved, try again in a few seconds",
    5,
)
IO_ERROR = (
    "io_error",
    "the database could not read or write its files; this change was not saved",
    60,
)
UNREACHABLE = ("unreachable", "the database cannot be reached at the moment; try again later", 30)

# SQLite primary result codes (https://sqlite.org/rescode.html)
_SQLITE = {
    5: BUSY,  # SQLITE_BUSY: another connection holds the lock past the busy timeout
    6: BUSY,  # SQLITE_LOCKED
    8: READ_ONLY,  # SQLITE_READONLY (file, mount, ?mode=ro)
    10: IO_ERROR,  # SQLITE_IOERR
    13: DISK_FULL,  # SQLITE_FULL (ENOSPC, or PRAGMA max_page_count reached)
    14: UNREACHABLE,  # SQLITE_CANTOPEN
}
# PostgreSQL SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html)
_POSTGRES = {
    "25006": READ_ONLY,  # read_only_sql_transaction
    "53100": DISK_FULL,  # disk_full
    "53000": BUSY,  # insufficient_resources
    "53200": BUSY,  # out_of_memory
    "53300": BUSY,  # too_many_connections
    "40001": BUSY,  # serialization_failure
    "40P01": BUSY,  # deadlock_detected
    "55P03": BUSY,  # lock_not_available
    "57014": BUSY,  # query_canceled (statement_timeout)
    "57P01": UNREACHABLE,  # admin_shutdown
    "57P02": UNREACHABLE,  # crash_shutdown
    "57P03": UNREACHABLE,  # cannot_connect_now (starting up, in recovery)
    "58030": IO_ERROR,  # io_error
}


def _kind(exc: BaseException) -> tuple[str, str, int] | None:
    if isinstance(exc, PoolTimeout):
        return BUSY
    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        if isinstance(code, int):
            return _SQLITE.get(code & 0xFF)
        return None
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        if sqlstate.startswith("08"):  # connection_exception
            return UNREACHABLE
        return _POSTGRES.get(sqlstate)
    if exc.connection_invalidated or isinstance(exc, OperationalError):
        return UNREACHABLE  # no SQLSTATE: could not connect, or the server went away
    return None


def unavailable(exc: BaseException) -> DatabaseUnavailable | None:
    """What ``exc`` means to a user when it is the database refusing for now; else None."""
    if isinstance(exc, DatabaseUnavailable):
        return exc
    kind = _kind(exc)
    if kind is None:
        return None
    code, message, retry_after = kind
    return DatabaseUnavailable(message, code, retry_after)


def too_busy() -> DatabaseUnavailable:
    code, message, retry_after = BUSY
    return DatabaseUnavailable(message, code, retry_after)


def is_sqlite_busy(exc: BaseException) -> bool:
    """SQLite's "database is locked" (SQLITE_BUSY / SQLITE_LOCKED)."""
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    code = getattr(orig, "sqlite_errorcode", None) if isinstance(orig, sqlite3.Error) else None
    return isinstance(code, int) and code & 0xFF in (5, 6)


@contextmanager
def translated() -> Iterator[None]:
    """Raise :class:`DatabaseUnavailable` in place of a database refusal raised inside."""
    try:
        yield
    except (DBAPIError, PoolTimeout) as exc:
        found = unavailable(exc)
        if found is None:
            raise
        raise found from exc
