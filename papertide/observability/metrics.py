"""Prometheus metrics: what each request did, and what the database says at scrape time.

Request metrics live in prometheus_client's process-wide registry. Under ``papertide serve
--workers N`` they are kept in prometheus_client's multiprocess mode: ``serve`` gives the workers
an empty ``PROMETHEUS_MULTIPROC_DIR`` (:func:`prepare_multiprocess_dir`), each worker writes its
values to files there, and a scrape on any worker adds up every worker's files.

Database-derived values (job runs, outbox depth, papers, ingest state, the scheduler's lease) are
read when scraped by :class:`DatabaseCollector`, at most once per :data:`DB_CACHE_S` per process,
with queries that read indexes or small tables only (see docs/observability.md).
"""

from __future__ import annotations

import glob
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, func, select

from papertide.db.schema import ingest_state, job_runs, leases, outbox, papers

log = logging.getLogger("papertide.metrics")
Reader = Callable[[Connection, datetime], list[GaugeMetricFamily]]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# prometheus_client picks its value store when first imported: files when the variable is set.
MULTIPROCESS = bool(os.environ.get(MULTIPROC_ENV))
DB_CACHE_S = 10.0
PAPERS_CACHE_S = 60.0
LEADER_PUBLISH_S = 5.0
# Outbox statuses that make its depth: waiting, composed, handed to SMTP, and given up on.
# "sent" and "skipped" rows are final and grow with every period: counting them would scan.
OUTBOX_DEPTH = ("pending", "ready", "sending", "failed")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "papertide_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ("method", "route", "status"),
)
DURATION = Histogram(
    "papertide_http_request_duration_seconds",
    "Time from a request's arrival to the last byte of its response, by route template.",
    ("method", "route"),
    buckets=BUCKETS,
)
LEADER = Gauge(
    "papertide_scheduler_leader",
    "1 while this process leads the scheduler (one series per live worker, label pid, under "
    "--workers N).",
    multiprocess_mode="liveall",
)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    method = method if method in METHODS else "OTHER"
    REQUESTS.labels(method, route, str(status)).inc()
    DURATION.labels(method, route).observe(seconds)


# --- serve: the workers' shared folder ---------------------------------------------------------


def prepare_multiprocess_dir() -> tuple[Path, bool]:
    """Before workers start: an empty folder for their metric files, named in the environment.

    Uses ``$PROMETHEUS_MULTIPROC_DIR`` when set (emptied of old ``*.db`` files, which would
    otherwise add a previous run's counts), else a new private temporary folder. Returns the
    folder and whether it was made here (then :func:`remove_multiprocess_dir` removes it).
    """
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.db"):
            old.unlink()
        return folder, False
    folder = Path(tempfile.mkdtemp(prefix="papertide-metrics-"))
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder, True


def remove_multiprocess_dir(folder: Path, made: bool) -> None:
    if made:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(MULTIPROC_ENV, None)


def _forget_dead_workers(folder: str) -> None:
    """Drop the leader gauge files of workers that are gone (killed, or replaced)."""
    for path in glob.glob(os.path.join(folder, "gauge_live*_*.db")):
        match = re.search(r"_(\d+)\.db$", path)
        if match is None:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, folder)  # type: ignore[no-untyped-call]
        except PermissionError:
            pass  # alive, under another user


class LeaderPublisher:
    """Each worker's thread that writes whether it leads the scheduler to its gauge file, so a
    scrape on any worker sees every worker (multiprocess mode only)."""

    def __init__(self, leads: Callable[[], bool]) -> None:
        self.leads = leads
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if MULTIPROCESS and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="metrics-leader", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            LEADER.set(1 if self.leads() else 0)
            self._stop.wait(LEADER_PUBLISH_S)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
            folder = os.environ.get(MULTIPROC_ENV)
            if folder:
                multiprocess.mark_process_dead(os.getpid(), folder)  # type: ignore[no-untyped-call]


# --- scrape time ---------------------------------------------------------------------------------


def _timestamp(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def read_database(connection: Connection, now: datetime) -> list[GaugeMetricFamily]:
    """The database-derived metrics but the paper counts: every query reads an index range or a
    table of a few hundred rows at most."""
    runs = GaugeMetricFamily(
        "papertide_job_runs",
        "Runs recorded in job_runs, by job and status (running, done, failed); periodic jobs' "
        "records are kept for a week.",
        labels=("job", "status"),
    )
    # job_runs: one row per digest period, one per trending slot for a week (hundreds of rows).
    rows = select(job_runs.c.job, job_runs.c.status, func.count()).group_by(
        job_runs.c.job, job_runs.c.status
    )
    for job, status, count in connection.execute(rows):
        runs.add_metric((job, status), count)
    success = GaugeMetricFamily(
        "papertide_job_last_success_timestamp_seconds",
        "When each job last finished successfully (Unix time).",
        labels=("job",),
    )
    last = (
        select(job_runs.c.job, func.max(job_runs.c.finished_at))
        .where(job_runs.c.status == "done")
        .group_by(job_runs.c.job)
    )
    for job, finished in connection.execute(last):
        if finished is not None:
            success.add_metric((job,), finished.timestamp())
    depth = GaugeMetricFamily(
        "papertide_outbox_messages",
        "Digest messages in the outbox by status: pending, ready, sending (in flight) and "
        "failed (given up).",
        labels=("status",),
    )
    counts = dict.fromkeys(OUTBOX_DEPTH, 0)
    # A range of the (status, id) index per status.
    by_status = (
        select(outbox.c.status, func.count())
        .where(outbox.c.status.in_(OUTBOX_DEPTH))
        .group_by(outbox.c.status)
    )
    counts.update({status: count for status, count in connection.execute(by_status)})
    for status, count in counts.items():
        depth.add_metric((status,), count)
    return [runs, success, depth, *_ingest(connection, now)]


def read_papers(connection: Connection, now: datetime) -> list[GaugeMetricFamily]:
    """The catalog's size: a count of the smallest index (the costliest query here, hence
    its longer cache), and the papers added in the last day."""
    total = GaugeMetricFamily("papertide_papers", "Papers in the catalog.")
    total.add_metric((), connection.execute(select(func.count()).select_from(papers)).scalar_one())
    # Papers added in the last day, by insertion order: ids grow with created_at, so walk the
    # primary key back from the newest paper to the first one older than a day (cost: the
    # day's papers), then count the ids above it. No index on created_at is needed.
    older = (
        select(papers.c.id)
        .where(papers.c.created_at < now - timedelta(days=1))
        .order_by(papers.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    recent = select(func.count()).select_from(papers).where(papers.c.id > func.coalesce(older, 0))
    added = GaugeMetricFamily(
        "papertide_papers_added_last_day", "Papers added to the catalog in the last 24 hours."
    )
    added.add_metric((), connection.execute(recent).scalar_one())
    return [total, added]


def _ingest(connection: Connection, now: datetime) -> list[GaugeMetricFamily]:
    last_run = GaugeMetricFamily(
        "papertide_ingest_last_run_timestamp_seconds",
        "When each live ingest source (an OAI-PMH harvest per set) last committed a page.",
        labels=("source",),
    )
    resuming = GaugeMetricFamily(
        "papertide_ingest_resumption_pending",
        "1 while a source holds a resumption token: its harvest stopped part-way and resumes "
        "at the next run.",
        labels=("source",),
    )
    rows = select(ingest_state.c.source, ingest_state.c.cursor, ingest_state.c.last_run_at)
    for source, cursor, last_run_at in connection.execute(rows):
        if last_run_at is None:
            continue  # not an ingest source (the keyword index keeps its id here)
        last_run.add_metric((source,), last_run_at.timestamp())
        resuming.add_metric((source,), 1 if cursor else 0)
    lease = GaugeMetricFamily(
        "papertide_scheduler_lease_expiry_timestamp_seconds",
        "When the current leader's lease on each role ends unless renewed (Unix time): past "
        "means no process leads.",
        labels=("role",),
    )
    for name, expires_at in connection.execute(select(leases.c.name, leases.c.expires_at)):
        lease.add_metric((name,), expires_at.timestamp())
    return [last_run, resuming, lease]


class DatabaseCollector(Collector):
    """Reads the database-derived metrics at scrape time: :func:`read_database` at most every
    ``ttl`` seconds, the paper counts (:func:`read_papers`, which count index entries) at most
    every ``papers_ttl`` seconds."""

    def __init__(
        self,
        engine_of: Callable[[], Engine],
        ttl: float = DB_CACHE_S,
        papers_ttl: float = PAPERS_CACHE_S,
    ) -> None:
        self.engine_of = engine_of
        self._lock = threading.Lock()
        self._readers: list[tuple[Reader, float]] = [
            (read_database, ttl),
            (read_papers, papers_ttl),
        ]
        self._cached: list[list[GaugeMetricFamily]] = [[], []]
        self._read_at = [-float("inf"), -float("inf")]
        self._status: list[GaugeMetricFamily] = []

    def collect(self) -> Iterable[GaugeMetricFamily]:
        with self._lock:
            due = [
                i
                for i, (_, ttl) in enumerate(self._readers)
                if time.monotonic() - self._read_at[i] >= ttl
            ]
            if due:
                self._read(due)
            return [family for families in self._cached for family in families] + self._status

    def _read(self, due: list[int]) -> None:
        started = time.perf_counter()
        ok = True
        try:
            with self.engine_of().connect() as connection:
                for i in due:
                    reader = self._readers[i][0]
                    self._cached[i] = reader(connection, datetime.now(UTC))
                    self._read_at[i] = time.monotonic()
        except Exception as exc:
            log.warning("metrics: reading the database failed: %s", exc)
            ok = False
            for i in due:
                self._cached[i] = []
        up = GaugeMetricFamily(
            "papertide_database_metrics_up",
            "1 when the last read of the database-derived metrics succeeded.",
        )
        up.add_metric((), 1 if ok else 0)
        took = GaugeMetricFamily(
            "papertide_database_metrics_seconds",
            "How long the last read of the database-derived metrics took.",
        )
        took.add_metric((), time.perf_counter() - started)
        self._status = [up, took]


class Exposition:
    """What ``/metrics`` answers for one app: this process's (or every worker's) request
    metrics, and the app's database-derived ones."""

    def __init__(self, engine_of: Callable[[], Engine], leads: Callable[[], bool]) -> None:
        self.leads = leads
        self.database = CollectorRegistry()
        self.database.register(DatabaseCollector(engine_of))

    def render(self) -> bytes:
        LEADER.set(1 if self.leads() else 0)
        folder = os.environ.get(MULTIPROC_ENV) if MULTIPROCESS else None
        if folder:
            _forget_dead_workers(folder)
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, folder)  # type: ignore[no-untyped-call]
            process = generate_latest(registry)
        else:
            process = generate_latest(REGISTRY)
        return process + generate_latest(self.database)
