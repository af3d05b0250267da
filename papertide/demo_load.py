"""Loading the bundled demo data set (once) so a fresh install has something to browse."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
from rich.console import Console
from sqlalchemy import Engine, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from papertide.config import Settings
from papertide.daily import compute_trending
from papertide.db.engine import is_sqlite, make_engine, write_transaction
from papertide.db.migrate import migrate
from papertide.db.schema import daily_entries, paper_embeddings, papers
from papertide.demo import DEMO_PATH, VECTORS_PATH
from papertide.ingest.runner import IngestRun
from papertide.search.embedder import BUNDLED_NAME, DEFAULT_MODEL


def load_demo(
    settings: Settings,
    *,
    progress: bool = True,
    console: Console | None = None,
    vectors: bool = True,
) -> str:
    """Migrate, ingest the demo lists unless the database already has some, rank trending,
    and store the shipped embeddings when the configured model is the one that made them."""
    engine = make_engine(settings.database_url)
    try:
        migrate(engine)
        with engine.connect() as connection:
            listed = connection.execute(select(func.count()).select_from(daily_entries)).scalar()
        if listed:
            return f"database already has {listed} daily-list entries; demo data not loaded again"
        run = IngestRun(engine=engine, tz=ZoneInfo(settings.timezone))
        if progress:
            from papertide.ingest.progress import RichProgress

            run.progress = RichProgress(console)
        report = run.run([DEMO_PATH])
        ranked = compute_trending(engine, settings)
        stored = load_demo_vectors(engine, settings.embedding_model) if vectors else 0
        return (
            f"demo data loaded: {report.totals.new} papers, "
            f"{report.totals.listings_added} daily-list entries in {report.seconds:.1f} s; "
            f"{ranked} trending; {stored} embeddings"
        )
    finally:
        engine.dispose()


def load_demo_vectors(engine: Engine, model: str) -> int:
    """Store the shipped demo embeddings when ``model`` is the bundled default that made them;
    how many were stored (papers already embedded keep their vectors)."""
    if not VECTORS_PATH.exists() or model.lower() not in {
        DEFAULT_MODEL.lower(),
        BUNDLED_NAME.lower(),
    }:
        return 0
    with np.load(VECTORS_PATH) as shipped:
        if str(shipped["model"]) != BUNDLED_NAME:
            return 0
        ids = shipped["ids"].tolist()
        matrix = shipped["codes"].astype(np.float32) * shipped["scales"][:, None]
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    row_of = {arxiv_id: n for n, arxiv_id in enumerate(ids)}
    now = datetime.now(UTC)
    insert = sqlite_insert if is_sqlite(engine) else pg_insert
    with write_transaction(engine) as connection:
        found = connection.execute(
            select(papers.c.arxiv_id, papers.c.id).where(papers.c.arxiv_id.in_(ids))
        ).all()
        values = [
            {
                "paper_id": paper_id,
                "model": BUNDLED_NAME,
                "vector": matrix[row_of[arxiv_id]],
                "created_at": now,
            }
            for arxiv_id, paper_id in found
        ]
        if values:
            connection.execute(insert(paper_embeddings).on_conflict_do_nothing(), values)
    return len(values)
