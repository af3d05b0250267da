"""The scheduler's tables: what it ran (``job_runs``) and who leads it (``leases``)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, PrimaryKeyConstraint, String, Table, Text

from papertide.db.column_types import UTCDateTime
from papertide.db.metadata import metadata

job_runs = Table(
    "job_runs",
    metadata,
    # One row per job and occurrence ("digest", "daily:2026-11-30"): the scheduler's memory of
    # what it already did, so a restart neither skips nor repeats a run.
    Column("job", String(40), nullable=False),
    Column("key", String(64), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("status", String(8), nullable=False),  # running | done | failed
    Column("detail", Text),
    PrimaryKeyConstraint("job", "key"),
)

leases = Table(
    "leases",
    metadata,
    # One row per elected role ("scheduler"). On SQLite the row IS the election: a process leads
    # while its lease is unexpired and renews it every third of its length; another takes it once
    # it expires, adding 1 to ``token`` (a fencing token). On PostgreSQL the election is a
    # session advisory lock and the row only records who holds it (for status and metrics).
    Column("name", String(40), primary_key=True),
    Column("holder", String(200), nullable=False),  # host:pid:random of the leading process
    Column("token", BigInteger, nullable=False),
    Column("acquired_at", UTCDateTime(), nullable=False),
    Column("renewed_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
)
