"""The query planner's statistics, kept fresh on SQLite (PostgreSQL's autovacuum does it there).

SQLite plans without statistics until ``ANALYZE`` runs, and then guesses table sizes. At 1M
papers that made it read all 250,000 list entries for the trending page (203 ms) instead of
looking up the trending table's 50 (1.2 ms with statistics; bench/explain.py --sqlite-stats
showed no hot query slower with them). SQLite's own advice is to analyze periodically; with
``analysis_limit`` it samples about that many rows per index, so a run takes 60 to 90 ms at 1M
papers. It runs after an ingest that added papers or list entries and once a day in the
scheduler on SQLite (:func:`papertide.jobs.statistics_job`).
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import Engine

from papertide.db.engine import is_sqlite, write_transaction

log = logging.getLogger(__name__)

ANALYSIS_LIMIT = 1000  # rows sampled per index


def refresh_statistics(engine: Engine) -> bool:
    """Analyze every table of an SQLite database (sampled); False on PostgreSQL, where
    autovacuum keeps statistics."""
    if not is_sqlite(engine):
        return False
    started = time.perf_counter()
    with write_transaction(engine) as connection:
        connection.exec_driver_sql(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
        connection.exec_driver_sql("ANALYZE")
    elapsed = (time.perf_counter() - started) * 1000
    log.debug("planner statistics refreshed", extra={"duration_ms": elapsed})
    return True
