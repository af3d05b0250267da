"""Nearest-neighbour search over paper embeddings, on either engine.

The database (``paper_embeddings``) holds the truth. On PostgreSQL, pgvector searches it in
place: an HNSW index on ``vector::halfvec(dim)`` with cosine distance, filters in the same SQL.

On SQLite, a faiss index lives in memory in each process and catches up with the table by its
increasing ``id`` (:meth:`FaissVectors.sync`). Measured (``shared/reference/measurements.md``):
exact search costs 5 ms at 100k vectors but 59 ms at 1M, HNSW 0.5 ms at recall 0.98. So below
``vector_hnsw_threshold`` vectors the index is exact (inner product over normalised vectors =
cosine); above, HNSW (M=32) over 8-bit scalar-quantised vectors, ~0.7 KB a paper in memory
(1M papers: ~0.7 GB instead of 1.5 GB for float32 plus the graph), saved to disk beside the
database and loaded at start, so a restart does not rebuild it. HNSW cannot delete: a
re-embedded paper leaves its old vector behind until the next rebuild, results are deduplicated
by paper, and the index is rebuilt when such stale entries pass 10%.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Engine, Float, bindparam, cast, func, select

from papertide.db.schema import paper_embeddings, papers
from papertide.search import vector_files
from papertide.search.filters import SearchFilters

Vector = npt.NDArray[np.float32]

faiss.omp_set_num_threads(1)  # one query at a time: threads only cost hand-offs (rebuild: all)

HNSW_M = 32
HNSW_EF_SEARCH = 128
HNSW_EF_CONSTRUCTION = 80
_READ_CHUNK = 20_000
_STALE_REBUILD = 0.10


def slug(model: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in model).strip("-").lower()


class FaissVectors:
    """The in-process vector index of one SQLite database and model."""

    def __init__(
        self,
        engine: Engine,
        folder: Path | None,
        model: str,
        dim: int,
        *,
        kind: str = "auto",
        hnsw_threshold: int = 50_000,
    ) -> None:
        self.engine = engine
        self.model = model
        self.dim = dim
        self.kind_setting = kind
        self.hnsw_threshold = hnsw_threshold
        self.path = folder / f"vectors-{slug(model)}.faiss" if folder else None
        self._lock = threading.Lock()
        self.last_id = 0
        self.count = 0  # entries in the index, stale ones included
        self.papers: set[int] = set()
        self.stale = 0
        self.index: Any = None
        self.kind = "exact"
        self._load_saved()

    # --- building and catching up ----------------------------------------------------------

    def _want_hnsw(self, n: int) -> bool:
        if self.kind_setting == "hnsw":
            return True
        if self.kind_setting == "exact":
            return False
        return n >= self.hnsw_threshold

    def _empty(self, hnsw: bool, training: Vector | None) -> Any:
        if not hnsw:
            self.kind = "exact"
            return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        inner = faiss.IndexHNSWSQ(
            self.dim,
            faiss.ScalarQuantizer.QT_8bit,  # type: ignore[arg-type]  # the stubs want an object
            HNSW_M,
            faiss.METRIC_INNER_PRODUCT,
        )
        inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        inner.hnsw.efSearch = HNSW_EF_SEARCH
        if training is not None and len(training):
            inner.train(training)
        self.kind = "hnsw"
        return faiss.IndexIDMap(inner)

    def _load_saved(self) -> None:
        if self.path is None:
            return
        found = vector_files.load(self.path, self.model, self.dim)
        if found is None:
            return  # none, or unreadable: rebuilt from the database on the first sync
        self.index, self.papers, saved = found
        self.kind = saved.kind
        self.last_id = saved.last_id
        self.count = saved.count
        self.stale = saved.stale

    def save(self) -> bool:
        """Write the index beside the database (HNSW only: exact indexes rebuild in seconds),
        unless the saved one, maybe another worker's, holds as much; whether it was written."""
        if self.path is None or self.kind != "hnsw" or self.index is None:
            return False
        with self._lock:
            saved = vector_files.Saved(
                self.model, self.dim, self.kind, self.last_id, self.count, self.stale
            )
            return vector_files.save(self.path, self.index, self.papers, saved)  # locked

    def _rows(self, connection: Connection, after: int, limit: int) -> list[Any]:
        return list(
            connection.execute(
                select(
                    paper_embeddings.c.id, paper_embeddings.c.paper_id, paper_embeddings.c.vector
                )
                .where(paper_embeddings.c.model == self.model, paper_embeddings.c.id > after)
                .order_by(paper_embeddings.c.id)
                .limit(limit)
            )
        )

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Build the index afresh from every stored vector of the model.

        Vectors are read in chunks into one preallocated float32 matrix (1M x 384: 1.5 GB), the
        quantiser is trained on a sample, and the graph is built with every core."""
        with self.engine.connect() as connection:
            total = int(
                connection.execute(
                    select(func.count()).where(paper_embeddings.c.model == self.model)
                ).scalar_one()
            )
            matrix = np.empty((total, self.dim), dtype=np.float32)
            labels = np.empty(total, dtype=np.int64)
            filled, after = 0, 0
            while filled < total:
                rows = self._rows(connection, after, min(_READ_CHUNK, total - filled))
                if not rows:
                    break
                for row in rows:
                    matrix[filled] = row.vector
                    labels[filled] = row.paper_id
                    filled += 1
                after = rows[-1].id
                if progress:
                    progress(filled, total)
        matrix, labels = matrix[:filled], labels[:filled]
        hnsw = self._want_hnsw(filled)
        rng = np.random.default_rng(0)
        sample = matrix[rng.permutation(filled)[:50_000]] if hnsw else None
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        try:
            index = self._empty(hnsw, sample)
            for start in range(0, filled, 100_000):
                index.add_with_ids(matrix[start : start + 100_000], labels[start : start + 100_000])
        finally:
            faiss.omp_set_num_threads(1)  # searches: one query at a time, no thread hand-offs
        with self._lock:
            self.index = index
            self.last_id = after
            self.count = filled
            self.papers = set(labels.tolist())
            self.stale = 0
        self.save()
        return filled

    def sync(self, limit: int | None = None) -> int:
        """Add vectors stored since the last sync (at most ``limit``); how many were added."""
        if self.index is None:
            return self.rebuild()
        added = 0
        with self.engine.connect() as connection:
            while limit is None or added < limit:
                n = _READ_CHUNK if limit is None else min(_READ_CHUNK, limit - added)
                rows = self._rows(connection, self.last_id, n)
                if not rows:
                    break
                labels = np.asarray([r.paper_id for r in rows], dtype=np.int64)
                matrix = np.vstack([r.vector for r in rows]).astype(np.float32)
                with self._lock:
                    if self.kind == "exact":
                        self.index.remove_ids(labels)
                    else:
                        self.stale += sum(1 for p in labels.tolist() if p in self.papers)
                    self.index.add_with_ids(matrix, labels)
                    self.papers.update(labels.tolist())
                    self.count = int(self.index.ntotal)
                    self.last_id = rows[-1].id
                added += len(rows)
        grown_past = self.kind == "exact" and self._want_hnsw(self.count)
        too_stale = self.kind == "hnsw" and self.stale > _STALE_REBUILD * max(self.count, 1)
        if grown_past or too_stale:
            self.rebuild()
        elif added and self.kind == "hnsw":
            self.save()
        return added

    # --- searching -----------------------------------------------------------------------------

    def search(self, vector: Vector, k: int) -> list[tuple[int, float]]:
        """Up to ``k`` (paper id, cosine similarity), best first, one entry per paper."""
        if self.index is None or self.count == 0 or k <= 0:
            return []
        extra = k + min(self.stale, k)  # stale duplicates may take places
        with self._lock:
            scores, labels = self.index.search(vector.reshape(1, -1).astype(np.float32), extra)
        seen: dict[int, float] = {}
        for label, score in zip(labels[0].tolist(), scores[0].tolist(), strict=True):
            if label >= 0 and label not in seen:
                seen[label] = score
        return list(seen.items())[:k]


def paper_vector(connection: Connection, paper_id: int, model: str) -> Vector | None:
    vector: Vector | None = connection.execute(
        select(paper_embeddings.c.vector).where(
            paper_embeddings.c.paper_id == paper_id, paper_embeddings.c.model == model
        )
    ).scalar()
    return vector


def embedded_count(connection: Connection, model: str) -> int:
    return int(
        connection.execute(
            select(func.count()).where(paper_embeddings.c.model == model)
        ).scalar_one()
    )


def ensure_pg_index(connection: Connection, dim: int) -> None:
    """The HNSW index for vectors of ``dim`` dimensions (pgvector), made once."""
    connection.exec_driver_sql(
        f"CREATE INDEX IF NOT EXISTS ix_paper_embeddings_hnsw_{dim} ON paper_embeddings "
        f"USING hnsw ((vector::halfvec({dim})) halfvec_cosine_ops)"
    )


def search_postgres(
    connection: Connection,
    model: str,
    vector: Vector,
    k: int,
    filters: SearchFilters | None = None,
) -> list[tuple[int, float]]:
    """Up to ``k`` (paper id, cosine similarity) through the HNSW index, filters applied in
    the same query (pgvector's iterative scan keeps looking when filters drop candidates)."""
    from pgvector.sqlalchemy import HALFVEC

    dim = int(vector.shape[0])
    connection.exec_driver_sql("SET LOCAL hnsw.ef_search = 100")
    connection.exec_driver_sql("SET LOCAL hnsw.iterative_scan = relaxed_order")
    # The same expression as the index (ensure_pg_index), so the planner uses it.
    distance = cast(paper_embeddings.c.vector, HALFVEC(dim)).op("<=>", return_type=Float)(
        cast(bindparam("q", vector, type_=HALFVEC(dim)), HALFVEC(dim))
    )
    statement = (
        select(paper_embeddings.c.paper_id, distance.label("distance"))
        .select_from(paper_embeddings.join(papers, papers.c.id == paper_embeddings.c.paper_id))
        .where(paper_embeddings.c.model == model)
        .order_by(distance)
        .limit(k)
    )
    if filters is not None:
        statement = statement.where(filters.sql())
    rows = connection.execute(statement).all()
    return [(int(r.paper_id), 1.0 - float(r.distance)) for r in rows]
