"""Scheduled jobs, and the lock that lets only one process run each.

Every job is a plain function that also runs from the CLI (``papertide rank``, ``papertide
digest send``). The built-in :class:`Scheduler` runs them inside ``papertide serve``:

* **trending**: recompute the trending table every ``trending_refresh_minutes``;
* **digest**: at ``digest_send_time`` (site time zone), plan and send the latest due daily
  (weekdays) and weekly (Mondays) digests, once per period: ``job_runs`` records each run, so a
  restart neither skips nor repeats one; a period more than :data:`STALE_AFTER` past its send
  moment is not started any more (stale news);
* **retries**: digests waiting for a retry after a temporary SMTP error are sent when due.

Only one process runs the scheduler at a time: every web worker starts one, and they elect a
leader through the database (:mod:`papertide.election`: a session advisory lock on PostgreSQL,
a lease row on SQLite); the others stand by and poll. After a kill another worker takes over
within a poll on PostgreSQL (10 s by default) and once the lease has expired on SQLite
(``scheduler_lease_seconds``, 30 by default, plus a poll). Each run is recorded in ``job_runs``,
so a new leader neither repeats nor skips one. :class:`JobLock` keeps each job itself exclusive
(``papertide digest send`` from cron and the scheduler cannot overlap).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from sqlalchemy import Connection, Engine, delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from papertide.config import Settings
from papertide.db.engine import is_sqlite, write_transaction
from papertide.db.schema import job_runs
from papertide.db.statistics import refresh_statistics
from papertide.election import Leadership
from papertide.errors import Conflict

log = logging.getLogger("papertide.jobs")

TICK_S = 30.0
STALE_AFTER = timedelta(hours=20)


class JobLock:
    """An exclusive, crash-safe lock named ``name``, shared by every process on the database."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        self._file: IO[bytes] | None = None
        self._connection: Connection | None = None
        self._local = threading.Lock()
        self._held_locally = False

    @property
    def held(self) -> bool:
        return self._file is not None or self._connection is not None or self._held_locally

    def acquire(self, wait: float = 0.0) -> bool:
        """Take the lock, trying for up to ``wait`` seconds; whether it was taken."""
        deadline = time.monotonic() + wait
        while True:
            if self._try():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def _try(self) -> bool:
        if self._connection is not None and not self._alive():
            self._connection = None  # the database restarted: the lock went with the session
        if self.held:
            return True
        if is_sqlite(self.engine):
            database = make_url(str(self.engine.url)).database
            if not database or database == ":memory:":
                self._held_locally = self._local.acquire(blocking=False)
                return self._held_locally
            path = Path(f"{Path(database).expanduser().resolve()}.{self.name}.lock")
            handle = path.open("ab")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            self._file = handle
            return True
        connection = self.engine.connect()
        taken = connection.execute(
            text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}
        ).scalar()
        connection.commit()
        if not taken:
            connection.close()
            return False
        self._connection = connection
        return True

    @property
    def _key(self) -> int:
        """The advisory lock's key: 64 bits of the name's hash, signed."""
        key = int.from_bytes(hashlib.blake2b(self.name.encode(), digest_size=8).digest(), "big")
        return key - (1 << 64) if key >= 1 << 63 else key

    def _alive(self) -> bool:
        assert self._connection is not None
        try:
            self._connection.execute(text("SELECT 1"))
            self._connection.commit()
        except Exception:
            self._connection.invalidate()
            return False
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._connection is not None:
            # Unlock explicitly: close() only returns the session to the pool, lock and all.
            # (A process that dies loses its sessions, and with them its locks.)
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
                self._connection.commit()
                self._connection.close()
            except Exception:
                self._connection.invalidate()
            self._connection = None
        if self._held_locally:
            self._held_locally = False
            self._local.release()

    def __enter__(self) -> JobLock:
        if not self.acquire():
            raise Conflict(f"another process is already running {self.name}; try again later")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


# --- the record of runs ----------------------------------------------------------------------


def _insert(connection: Connection) -> Any:
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert


def run_done(connection: Connection, job: str, key: str) -> bool:
    status = connection.execute(
        select(job_runs.c.status).where(job_runs.c.job == job, job_runs.c.key == key)
    ).scalar()
    return status == "done"


def record_run(engine: Engine, job: str, key: str, status: str, detail: str = "") -> None:
    now = datetime.now(UTC)
    with write_transaction(engine) as connection:
        statement = _insert(connection)(job_runs).values(
            job=job, key=key, started_at=now, status=status, detail=detail
        )
        connection.execute(statement.on_conflict_do_nothing())
        finished = now if status != "running" else None
        connection.execute(
            update(job_runs)
            .where(job_runs.c.job == job, job_runs.c.key == key)
            .values(status=status, detail=detail, finished_at=finished)
        )


# --- the scheduler ---------------------------------------------------------------------------


Job = Callable[[datetime], None]


class Scheduler:
    """Runs the site's jobs in a daemon thread while this process leads the ``scheduler`` role.

    Two threads: the **election** thread takes or renews leadership every third of
    ``scheduler_lease_seconds`` (see :mod:`papertide.election`), even while a long job runs; the
    **jobs** thread runs every job each ``tick`` seconds while this process leads, and at once
    when it has just become the leader.
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        jobs: dict[str, Job],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.jobs = jobs
        self.clock = clock  # the time the jobs are given (benchmarks replay a past moment)
        self.lock = Leadership(engine, "scheduler", settings.scheduler_lease_seconds)
        self._stop = threading.Event()
        self._elected = threading.Event()  # set when this process has just become the leader
        self._threads: list[threading.Thread] = []

    def start(self, tick: float = TICK_S) -> None:
        if not self._threads:
            self._threads = [
                threading.Thread(target=self._elect, daemon=True, name="scheduler-election"),
                threading.Thread(target=self._run, args=(tick,), daemon=True, name="scheduler"),
            ]
            for thread in self._threads:
                thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._elected.set()
        for thread in self._threads:
            thread.join(timeout=60)
        self._threads = []
        self.lock.release()

    def _elect(self) -> None:
        while not self._stop.is_set():
            was = self.lock.held
            try:
                leads = self.lock.acquire()
            except Exception:  # the database is away: keep trying; a lease may expire meanwhile
                log.warning("scheduler election failed; retrying", exc_info=True)
                leads = False
            if leads and not was:
                log.info("this process leads the scheduler", extra={"holder": self.lock.holder})
                self._elected.set()
            elif was and not leads:
                log.warning("this process no longer leads the scheduler")
            self._stop.wait(self.lock.poll)

    def _run(self, tick: float) -> None:
        while not self._stop.is_set():
            self._elected.clear()
            if self.lock.held:
                self._run_jobs(self.clock())
            self._elected.wait(tick)

    def tick(self, now: datetime | None = None) -> bool:
        """One round: run every job if this process is (or now becomes) the leader."""
        if not self.lock.acquire():
            return False
        self._run_jobs(now or self.clock())
        return True

    def _run_jobs(self, now: datetime) -> None:
        for name, job in self.jobs.items():
            if self._stop.is_set() or not self.lock.held:
                break
            started = time.perf_counter()
            try:
                job(now)
            except Exception:
                log.exception("job %s failed; it runs again next tick", name)
            else:
                elapsed = (time.perf_counter() - started) * 1000
                if elapsed > 1000:
                    log.info("job %s ran", name, extra={"job": name, "duration_ms": elapsed})


def every(engine: Engine, job_name: str, minutes: float, job: Job) -> Job:
    """``job``, run once per ``minutes``-long slot of the clock, whichever process leads.

    ``job_runs`` records each slot (``job_name``, slot start), so a new leader after a fail-over
    does not run a slot again; records older than a week are pruned as new ones are made.
    """
    length = timedelta(minutes=minutes)

    def run(now: datetime) -> None:
        epoch = datetime(2000, 1, 1, tzinfo=UTC)
        slot = epoch + (now - epoch) // length * length
        key = slot.isoformat(timespec="seconds")
        with engine.connect() as connection:
            if run_done(connection, job_name, key):
                return
        record_run(engine, job_name, key, "running")
        try:
            job(now)
        except Exception as error:
            record_run(engine, job_name, key, "failed", repr(error)[:500])
            raise
        record_run(engine, job_name, key, "done")
        with write_transaction(engine) as connection:
            connection.execute(
                delete(job_runs).where(
                    job_runs.c.job == job_name, job_runs.c.started_at < now - timedelta(days=7)
                )
            )

    return run


def trending_job(engine: Engine, settings: Settings) -> Job:
    """Recompute the trending table every ``trending_refresh_minutes``."""
    from papertide.daily import compute_trending

    return every(
        engine,
        "trending",
        settings.trending_refresh_minutes,
        lambda now: _count(compute_trending(engine, settings, now)),
    )


def statistics_job(engine: Engine) -> Job:
    """Refresh SQLite's planner statistics once a day (:mod:`papertide.db.statistics`)."""

    def run(_now: datetime) -> None:
        refresh_statistics(engine)

    return every(engine, "statistics", 24 * 60, run)


def _count(rows: int) -> None:
    log.debug("trending recomputed: %d papers", rows)
