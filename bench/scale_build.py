"""The scale benchmark's catalog on both engines (see bench/scale.py): build steps.

The SQLite side is bench/search_catalog.py's (the Kaggle input, ``IngestRun``, tantivy, real +
synthetic vectors, the faiss HNSW index); this module adds what both engines need beside it,
and the PostgreSQL side. Each step runs in a process of its own (``run_child``) and prints its
figures as JSON; bench/scale.py caches them in ``{cache}/build.json``.

- **Daily lists** (``listings.jsonl``): the newest quarter of the papers, on consecutive
  weekday lists of :data:`PER_DAY` papers ending on :data:`LAST_DAY`, written as Hugging Face
  daily-list entries (``hf-api`` JSON lines: arXiv id, list time, upvotes drawn from a
  Pareto law, an organization for one in ten, a submitter for one in five) and ingested by
  ``IngestRun`` after the Kaggle file, as a site that imports arXiv and follows HF lists does.
- **Extras**: the trending job (``compute_trending``) and a digest outbox: ``--subscribers``
  confirmed daily subscribers, the outbox planned by ``outbox.plan`` for :data:`PERIODS`
  weekdays (all sent but the last, which is pending), so the claim query has a real table.
- **PostgreSQL**: the same two input files through ``IngestRun`` into a fresh database (the
  generated ``tsvector`` column and its GIN index are maintained inside the inserts); the very
  same vectors, read from the SQLite file and written by ``COPY ... FORMAT BINARY`` into the
  ``halfvec`` column; the pgvector HNSW index as the product makes it
  (``vectors.ensure_pg_index``); the GIN index's and the tsvector's own costs measured apart
  (a ``REINDEX`` and the expression computed over every paper); ``VACUUM (ANALYZE)``, as
  autovacuum would do after a bulk load.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from search_catalog import _paths, _peak_mb, _settings, copy_id

LISTED_SHARE = 4  # one paper in LISTED_SHARE is on a list: the newest ones
PER_DAY = 200  # papers on each weekday's list (bench/api.py's busiest day had 264)
LAST_DAY = date(2026, 11, 27)  # a Friday
PERIODS = 10  # daily digest periods in the outbox
ORGANIZATIONS = 50
_COPY_CHUNK = 50_000


def listings_path(cache: Path) -> Path:
    return cache / "listings.jsonl"


def list_days(count: int) -> list[date]:
    """``count`` consecutive weekdays ending on LAST_DAY, oldest first."""
    days: list[date] = []
    day = LAST_DAY
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day -= timedelta(days=1)
    return days[::-1]


def make_listings(path: Path, size: int, seed: int) -> dict[str, Any]:
    """Write the daily-list entries of the newest ``size // LISTED_SHARE`` papers."""
    rng = random.Random(seed)
    listed = size // LISTED_SHARE
    days = list_days(-(-listed // PER_DAY))
    with path.open("w") as out:
        for k, n in enumerate(range(size - listed, size)):
            day = days[k // PER_DAY]
            entry: dict[str, Any] = {
                "paper": {"id": copy_id(n), "upvotes": min(int(rng.paretovariate(1.2)) - 1, 900)},
                "publishedAt": f"{day.isoformat()}T13:00:00.000Z",
            }
            if rng.random() < 0.2:
                entry["submittedBy"] = {"name": f"user{rng.randrange(5000)}"}
            if rng.random() < 0.1:
                org = rng.randrange(ORGANIZATIONS)
                entry["organization"] = {"name": f"org-{org}", "fullname": f"Organization {org}"}
            out.write(json.dumps(entry) + "\n")
    return {"entries": listed, "days": len(days), "first": days[0].isoformat()}


# --- engines -----------------------------------------------------------------------------------


def engine_of(cache: Path, options: dict[str, Any], engine: str) -> Any:
    from papertide.db.engine import make_engine

    if engine == "postgresql":
        return make_engine(options["pg_url"])
    return make_engine(f"sqlite:///{_paths(cache)['db']}")


def settings_of(cache: Path, options: dict[str, Any], engine: str) -> Any:
    from papertide.config import load_settings

    if engine == "postgresql":
        return load_settings(
            env={
                "PAPERTIDE_DATABASE_URL": options["pg_url"],
                "PAPERTIDE_EMBED_IN_BACKGROUND": "false",
            }
        )
    return _settings(_paths(cache)["db"])


def _ingest(engine: Any, path: Path) -> dict[str, Any]:
    from zoneinfo import ZoneInfo

    from papertide.ingest.runner import IngestRun

    started = time.perf_counter()
    report = IngestRun(engine=engine, tz=ZoneInfo("America/New_York")).run([path])
    seconds = time.perf_counter() - started
    assert not report.errors, report.errors[:3]
    t = report.totals
    return {
        "seconds": seconds,
        "papers": report.records,
        "new": t.new,
        "updated": t.updated,
        "listings": t.listings_added,
        "peak_mb": _peak_mb(),
    }


# --- steps on both engines ---------------------------------------------------------------------


def _listings(cache: Path, options: dict[str, Any], engine: str) -> dict[str, Any]:
    path = listings_path(cache)
    made = make_listings(path, options["size"], options["seed"])
    result = _ingest(engine_of(cache, options, engine), path)
    assert result["listings"] == made["entries"], (result, made)
    return {**result, **made}


def _extras(cache: Path, options: dict[str, Any], engine: str) -> dict[str, Any]:
    """The trending table, and the digest outbox of ``options["subscribers"]``."""
    from secrets import token_urlsafe

    from sqlalchemy import func, insert, select, update

    from papertide.daily import compute_trending
    from papertide.db.engine import write_transaction
    from papertide.db.schema import outbox, subscriptions
    from papertide.digest import outbox as outbox_rows
    from papertide.digest.periods import daily_period

    db = engine_of(cache, options, engine)
    settings = settings_of(cache, options, engine)
    started = time.perf_counter()
    trending_rows = compute_trending(db, settings)
    trending_s = time.perf_counter() - started
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    days = [d + timedelta(days=3 if d.weekday() == 4 else 1) for d in list_days(PERIODS)]
    started = time.perf_counter()
    with write_transaction(db) as connection:
        n = options["subscribers"]
        for start in range(0, n, 5000):
            connection.execute(
                insert(subscriptions),
                [
                    {
                        "email": f"reader{i}@example.org",
                        "token": token_urlsafe(24),
                        "frequency": "daily",
                        "rules": {},
                        "created_at": now - timedelta(days=90),
                        "confirmed_at": now - timedelta(days=90),
                    }
                    for i in range(start, min(n, start + 5000))
                ],
            )
        for day in days:
            period = daily_period(day)
            outbox_rows.plan(connection, settings, period, now=now)
            if day != days[-1]:
                connection.execute(
                    update(outbox)
                    .where(outbox.c.period == period.key)
                    .values(status=outbox_rows.Status.SENT.value, sent_at=now)
                )
        rows = connection.execute(select(func.count()).select_from(outbox)).scalar_one()
    return {
        "trending": trending_rows,
        "trending_s": trending_s,
        "outbox": rows,
        "outbox_s": time.perf_counter() - started,
        "peak_mb": _peak_mb(),
    }


def _step_listings(cache: Path, options: dict[str, Any]) -> dict[str, Any]:
    return _listings(cache, options, "sqlite")


def _step_extras(cache: Path, options: dict[str, Any]) -> dict[str, Any]:
    return _extras(cache, options, "sqlite")


# --- PostgreSQL steps --------------------------------------------------------------------------


def _step_pg_ingest(cache: Path, options: dict[str, Any]) -> dict[str, Any]:
    from scale_pg import recreate_database

    from papertide.db.migrate import migrate

    recreate_database(options["pg_admin"])
    engine = engine_of(cache, options, "postgresql")
    migrate(engine)
    return _ingest(engine, _paths(cache)["data"])


def _step_pg_listings(cache: Path, options: dict[str, Any]) -> dict[str, Any]:
    return _listings(cache, options, "postgresql")


def _step_pg_extras(cache: Path, options: dict[str, Any]) -> dict[str, Any]:
    return _extras(cache, options, "postgresql")


def _step_pg_vectors(cache: Path, options: dict[str, Any]) -> dict[str, Any]:
    """The SQLite file's vectors, as they are, into PostgreSQL's ``halfvec`` column."""
    import numpy as np
    from pgvector import HalfVector
    from pgvector.psycopg import register_vector

    lite = engine_of(cache, options, "sqlite")
    pg = engine_of(cache, options, "postgresql")
    started = time.perf_counter()
    with pg.connect() as connection:
        pg_ids = dict(connection.exec_driver_sql("SELECT arxiv_id, id FROM papers").all())
    created = datetime.now(UTC)
    copied, same_ids, after = 0, True, 0
    raw = pg.raw_connection()
    try:
        driver = raw.driver_connection
        register_vector(driver)
        with driver.cursor() as cursor:
            cursor.execute("DELETE FROM paper_embeddings")
            sql = (
                "COPY paper_embeddings (paper_id, model, vector, created_at) "
                "FROM STDIN WITH (FORMAT BINARY)"
            )
            with cursor.copy(sql) as copy, lite.connect() as source:
                copy.set_types(["int4", "varchar", "halfvec", "timestamptz"])
                while True:
                    rows = source.exec_driver_sql(
                        "SELECT e.id, e.paper_id, p.arxiv_id, e.model, e.vector "
                        "FROM paper_embeddings e JOIN papers p ON p.id = e.paper_id "
                        "WHERE e.id > ? ORDER BY e.id LIMIT ?",
                        (after, _COPY_CHUNK),
                    ).all()
                    if not rows:
                        break
                    for _id, paper_id, arxiv_id, model, blob in rows:
                        target = pg_ids[arxiv_id]
                        same_ids = same_ids and target == paper_id
                        vector = np.frombuffer(blob, dtype=np.float16)
                        copy.write_row((target, model, HalfVector(vector), created))
                    copied += len(rows)
                    after = rows[-1][0]
        driver.commit()
    finally:
        raw.close()
    return {
        "seconds": time.perf_counter() - started,
        "vectors": copied,
        "same_ids": same_ids,
        "peak_mb": _peak_mb(),
    }


def _pg_size_mb(connection: Any, relation: str) -> float:
    size = connection.exec_driver_sql(
        "SELECT pg_relation_size(%(r)s::regclass)", {"r": relation}
    ).scalar_one()
    return int(size) / 1e6


def _step_pg_hnsw(cache: Path, options: dict[str, Any]) -> dict[str, Any]:
    """The product's pgvector index (``ensure_pg_index``), built once over every vector."""
    from papertide.search import vectors

    engine = engine_of(cache, options, "postgresql")
    notices: list[str] = []
    with engine.connect() as connection:
        dim = connection.exec_driver_sql(
            "SELECT vector_dims(vector) FROM paper_embeddings LIMIT 1"
        ).scalar_one()
        name = f"ix_paper_embeddings_hnsw_{dim}"
        connection.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
        connection.commit()
        driver = connection.connection.driver_connection
        driver.add_notice_handler(lambda notice: notices.append(str(notice.message_primary)))
        started = time.perf_counter()
        with connection.begin():
            vectors.ensure_pg_index(connection, int(dim))
        seconds = time.perf_counter() - started
        settings = {
            name: connection.exec_driver_sql(f"SHOW {name}").scalar_one()
            for name in ("maintenance_work_mem", "max_parallel_maintenance_workers")
        }
        size = _pg_size_mb(connection, name)
        table = _pg_size_mb(connection, "paper_embeddings")
    return {
        "seconds": seconds,
        "index": name,
        "size_mb": size,
        "table_mb": table,
        "notices": notices,
        "settings": settings,
        "peak_mb": _peak_mb(),
    }


_TSVECTOR = (
    "setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(abstract, '')), 'B') || "
    "setweight(to_tsvector('english', coalesce(authors_text, '')), 'C')"
)


def _step_pg_fts(cache: Path, options: dict[str, Any]) -> dict[str, Any]:
    """What the full-text index costs on its own: the generated column's expression over
    every paper (the work the inserts did for it), and the GIN index built afresh."""
    engine = engine_of(cache, options, "postgresql")
    with engine.connect() as connection:
        started = time.perf_counter()
        lexemes = connection.exec_driver_sql(f"SELECT sum(length({_TSVECTOR})) FROM papers")
        total = int(lexemes.scalar_one())
        tsvector_s = time.perf_counter() - started
        connection.commit()
        started = time.perf_counter()
        connection.exec_driver_sql("REINDEX INDEX ix_papers_search_vector")
        connection.commit()
        gin_s = time.perf_counter() - started
        sizes = {
            "gin_mb": _pg_size_mb(connection, "ix_papers_search_vector"),
            "papers_mb": _pg_size_mb(connection, "papers"),
            "papers_total_mb": int(
                connection.exec_driver_sql(
                    "SELECT pg_total_relation_size('papers'::regclass)"
                ).scalar_one()
            )
            / 1e6,
        }
    return {
        "seconds": tsvector_s + gin_s,
        "tsvector_s": tsvector_s,
        "gin_s": gin_s,
        "lexemes": total,
        **sizes,
        "peak_mb": _peak_mb(),
    }


def _step_pg_analyze(cache: Path, options: dict[str, Any]) -> dict[str, Any]:
    engine = engine_of(cache, options, "postgresql").execution_options(isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        started = time.perf_counter()
        connection.exec_driver_sql("VACUUM (ANALYZE)")
        seconds = time.perf_counter() - started
        size = connection.exec_driver_sql(
            "SELECT pg_database_size(current_database())"
        ).scalar_one()
    return {"seconds": seconds, "database_mb": int(size) / 1e6, "peak_mb": _peak_mb()}


STEPS = {
    "listings": _step_listings,
    "extras": _step_extras,
    "pg_ingest": _step_pg_ingest,
    "pg_listings": _step_pg_listings,
    "pg_vectors": _step_pg_vectors,
    "pg_hnsw": _step_pg_hnsw,
    "pg_extras": _step_pg_extras,
    "pg_fts": _step_pg_fts,
    "pg_analyze": _step_pg_analyze,
}
# The order of the whole build: search_catalog's SQLite steps with the lists before the keyword
# index (list entries change what tantivy indexes), then PostgreSQL's.
ORDER = (
    "ingest",
    "listings",
    "keyword",
    "vectors",
    "vindex",
    "extras",
    "pg_ingest",
    "pg_listings",
    "pg_vectors",
    "pg_hnsw",
    "pg_extras",
    "pg_fts",
    "pg_analyze",
)
