"""SQLite's planner statistics (:mod:`papertide.db.statistics`): left by an import and by the
daily job, and what they are for: the trending page looks up the trending table's papers
instead of reading every list entry."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from factories import listed, make_record, write_records
from sqlalchemy import Connection, Engine, event

from papertide import daily
from papertide.config import Settings
from papertide.db.statistics import refresh_statistics
from papertide.ingest.runner import IngestRun
from papertide.jobs import statistics_job

KAGGLE = Path(__file__).parent / "fixtures" / "kaggle" / "arxiv-metadata-oai-snapshot.json"
LAST = date(2025, 6, 30)


def _stat_rows(engine: Engine) -> int:
    with engine.connect() as connection:
        found = connection.exec_driver_sql(
            "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
        ).scalar_one()
        if not found:
            return 0
        return int(connection.exec_driver_sql("SELECT count(*) FROM sqlite_stat1").scalar_one())


def test_an_import_leaves_statistics(engine: Engine, engine_name: str) -> None:
    run = IngestRun(engine, ZoneInfo("America/New_York"))
    report = run.run([KAGGLE])
    assert report.totals.new == 200
    if engine_name == "postgresql":
        assert refresh_statistics(engine) is False  # autovacuum's job there
        return
    assert _stat_rows(engine) > 0
    with engine.connect() as connection:
        papers_stat = connection.exec_driver_sql(
            "SELECT stat FROM sqlite_stat1 WHERE tbl = 'papers' AND idx = 'ix_papers_published_at'"
        ).scalar_one()
    assert papers_stat.split()[0] == "200"


def test_the_daily_job_refreshes_them(engine: Engine, engine_name: str) -> None:
    if engine_name == "postgresql":
        pytest.skip("PostgreSQL's autovacuum keeps statistics")
    write_records(engine, make_record("2505.00001"))
    assert _stat_rows(engine) == 0
    statistics_job(engine)(datetime(2026, 11, 29, 3, 0, tzinfo=UTC))
    assert _stat_rows(engine) > 0


@contextmanager
def _statements(engine: Engine) -> Iterator[list[tuple[str, object]]]:
    sent: list[tuple[str, object]] = []

    def record(_conn: object, _cursor: object, sql: str, params: object, *_: object) -> None:
        sent.append((sql, params))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _plans(engine: Engine, connection_work: object) -> list[str]:
    with _statements(engine) as sent, engine.connect() as connection:
        connection_work(connection)  # type: ignore[operator]
    lines = []
    with engine.connect() as connection:
        for sql, params in sent:
            rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params).all()  # type: ignore[arg-type]
            lines += [row[-1] for row in rows]
    return lines


def test_trending_page_reads_the_trending_table_not_every_entry(
    engine: Engine, engine_name: str, settings: Settings
) -> None:
    if engine_name == "postgresql":
        pytest.skip("SQLite's planner")
    records = [
        make_record(f"25{(n % 12) + 1:02d}.{n:05d}", listing=listed(LAST - timedelta(n // 40), n))
        for n in range(1, 4001)
    ]
    write_records(engine, *records)
    now = datetime.combine(LAST, datetime.min.time(), UTC) + timedelta(hours=20)
    assert 0 < daily.compute_trending(engine, settings, now) < 400

    def trending_page(connection: Connection) -> None:
        assert daily.trending_list(connection).cards

    refresh_statistics(engine)
    plans = _plans(engine, trending_page)
    assert plans and not [p for p in plans if p.startswith("SCAN daily_entries")], plans
