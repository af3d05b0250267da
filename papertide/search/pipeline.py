"""The embedding pipeline: embed every paper that lacks a vector, in batches, resumably.

Used by ``papertide embed`` and by the server's background job. Papers are read newest first
(highest id) in chunks of :data:`CHUNK`, encoded (the Embedder sorts a chunk by length, so
batches pad little), and each chunk's vectors are committed in one transaction: a kill loses at
most the chunk in flight, and the next run starts where this one stopped, since it only asks for
papers without a vector. Two runners at once do no harm: a vector stored meanwhile by the other
is kept (``ON CONFLICT DO NOTHING``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Engine, and_, exists, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from papertide.db.engine import is_sqlite, write_transaction
from papertide.db.schema import paper_embeddings, papers
from papertide.search.embedder import Embedder, document_text

CHUNK = 256


@dataclass
class EmbedReport:
    """What a run did."""

    embedded: int = 0
    seconds: float = 0.0
    remaining: int = 0

    @property
    def rate(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0


def _missing(model: str) -> ColumnElement[bool]:
    """Papers without a vector of ``model``."""
    return ~exists(
        select(1).where(
            and_(paper_embeddings.c.paper_id == papers.c.id, paper_embeddings.c.model == model)
        )
    )


def missing_count(engine: Engine, model: str) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).select_from(papers).where(_missing(model))
            ).scalar_one()
        )


def embed_missing(
    engine: Engine,
    embedder: Embedder,
    *,
    batch_size: int = 32,
    limit: int | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EmbedReport:
    """Embed papers without a vector of ``embedder``'s model (at most ``limit``)."""
    started = time.perf_counter()
    report = EmbedReport()
    total = missing_count(engine, embedder.name)
    if limit is not None:
        total = min(total, limit)
    insert = sqlite_insert if is_sqlite(engine) else pg_insert
    before: int | None = None  # keyset cursor: ids below it are still to look at
    while (limit is None or report.embedded < limit) and not (stop and stop.is_set()):
        n = CHUNK if limit is None else min(CHUNK, limit - report.embedded)
        statement = (
            select(papers.c.id, papers.c.title, papers.c.abstract)
            .where(_missing(embedder.name))
            .order_by(papers.c.id.desc())
            .limit(n)
        )
        if before is not None:
            statement = statement.where(papers.c.id < before)
        with engine.connect() as connection:
            rows = connection.execute(statement).all()
        if not rows:
            break
        vectors = embedder.encode_documents(
            [document_text(r.title, r.abstract) for r in rows], batch_size=batch_size
        )
        now = datetime.now(UTC)
        with write_transaction(engine) as connection:
            connection.execute(
                insert(paper_embeddings).on_conflict_do_nothing(),
                [
                    {"paper_id": r.id, "model": embedder.name, "vector": v, "created_at": now}
                    for r, v in zip(rows, vectors, strict=True)
                ],
            )
        before = rows[-1].id
        report.embedded += len(rows)
        if progress:
            progress(report.embedded, total)
    report.seconds = time.perf_counter() - started
    report.remaining = max(0, missing_count(engine, embedder.name))
    return report
