"""The scale benchmark's in-process search measurement (see bench/scale.py), on one engine.

A fresh process plays the server: ``SearchService`` over the engine's database, the model
loaded and (SQLite) the saved faiss index read, then bench/search_queries.py's query set (the
same seed, read from the SQLite file, so both engines answer the very same queries) after
its warm-up: keyword, vector and hybrid mode, one request at a time, and ``similar()`` for
SIMILAR_PAPERS papers. Then recall@10 of the engine's vector index (faiss HNSW-SQ8 on SQLite,
pgvector HNSW with the product's ``hnsw.ef_search`` and iterative scan on PostgreSQL) against
exact search over the same vectors (numpy, float32), on RECALL_QUERIES topic queries.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scale_build import engine_of, settings_of
from search_catalog import _peak_mb
from search_queries import (
    RECALL_QUERIES,
    SIMILAR_PAPERS,
    WARMUP,
    _cpu_clock,
    _others,
    _rss,
    _stats,
    query_set,
    search_request,
)


def _exact_matrix(cache: Path, options: dict[str, Any], model: str) -> tuple[Any, Any]:
    """(paper ids, float32 matrix) of every stored vector, read from the SQLite file."""
    import numpy as np

    lite = engine_of(cache, options, "sqlite")
    with lite.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT paper_id, vector FROM paper_embeddings WHERE model = ? ORDER BY id", (model,)
        ).all()
    labels = np.fromiter((r[0] for r in rows), np.int64, len(rows))
    matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float16).reshape(len(rows), -1)
    return labels, matrix.astype(np.float32)


def _to_engine_ids(cache: Path, options: dict[str, Any], engine: Any, ids: list[int]) -> list[int]:
    """SQLite paper ids as ``engine``'s ids (by arXiv id; the same when ingested alike)."""
    lite = engine_of(cache, options, "sqlite")
    marks = ",".join(map(str, ids))
    with lite.connect() as connection:
        arxiv = dict(
            connection.exec_driver_sql(
                f"SELECT id, arxiv_id FROM papers WHERE id IN ({marks})"
            ).all()
        )
    with engine.connect() as connection:
        found = dict(
            connection.exec_driver_sql(
                "SELECT arxiv_id, id FROM papers WHERE arxiv_id = ANY(%(a)s)",
                {"a": list(arxiv.values())},
            ).all()
        )
    return [found[arxiv[i]] for i in ids]


def _step_search(cache: Path, options: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    from papertide.search import vectors
    from papertide.search.service import Mode, SearchService

    kind = options["engine"]
    out: dict[str, Any] = {"engine": kind, "memory": []}
    engine = engine_of(cache, options, kind)
    service = SearchService(engine, settings_of(cache, options, kind))
    model = service.embedder(wait=True)
    assert model is not None
    model.encode_query("warm up the model")
    started = time.perf_counter()
    service.catch_up(inline=False)  # SQLite: the saved faiss index; PostgreSQL: nothing
    out["index_load_s"] = time.perf_counter() - started
    out["memory"].append({"stage": "loaded", **_rss()})

    picks, queries = query_set(engine_of(cache, options, "sqlite"), options)
    similar = picks[-SIMILAR_PAPERS:]
    if kind == "postgresql":
        similar = _to_engine_ids(cache, options, engine, similar)
    warmup, timed = queries[:WARMUP], queries[WARMUP:]
    for query in warmup:
        for mode in Mode:
            service.search(search_request(query, mode))
    latency: dict[str, list[float]] = {}

    def call(name: str, fn: Callable[..., Any], *args: Any) -> Any:
        started = time.perf_counter()
        result = fn(*args)
        latency.setdefault(name, []).append((time.perf_counter() - started) * 1000)
        return result

    clock = _cpu_clock()
    out["load_before"] = os.getloadavg()[0]
    results = 0
    for mode in Mode:
        for query in timed:
            outcome = call(mode.value, service.search, search_request(query, mode))
            if mode is Mode.HYBRID:
                assert outcome.mode is Mode.HYBRID, (query, outcome.mode, outcome.notice)
                results += bool(outcome.ids)
    for paper_id in similar:
        found, mode_used = call("similar", service.similar, paper_id)
        assert mode_used is Mode.VECTOR and found, (paper_id, mode_used)
    out["others_cores"] = _others(clock)
    out["with_results"] = [results, len(timed)]
    out["latency"] = {name: _stats(ms) for name, ms in latency.items()}
    out["memory"].append({"stage": "after the queries", **_rss()})
    out["peak_mb"] = _peak_mb()

    # Recall@10 of the engine's vector index against exact search over the same vectors.
    labels, matrix = _exact_matrix(cache, options, model.name)
    topics = [q["text"] for q in timed if q["kind"] in ("topic", "typo", "cat filter")]
    topics = (topics * RECALL_QUERIES)[:RECALL_QUERIES]
    index = service.vector_index(model) if kind == "sqlite" else None
    to_sqlite: dict[int, int] | None = None
    if kind == "postgresql" and not options.get("same_ids", True):
        with engine.connect() as connection:
            pg = dict(connection.exec_driver_sql("SELECT id, arxiv_id FROM papers").all())
        with engine_of(cache, options, "sqlite").connect() as connection:
            lite = dict(connection.exec_driver_sql("SELECT arxiv_id, id FROM papers").all())
        to_sqlite = {i: lite[a] for i, a in pg.items()}
    recall, exact_ms, index_ms = [], [], []
    for text in topics:
        vector = model.encode_query(text)
        started = time.perf_counter()
        scores = matrix @ vector
        top = np.argpartition(-scores, 10)[:10]
        exact = set(labels[top].tolist())
        exact_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        if index is not None:
            found = index.search(vector, 10)
        else:
            with engine.begin() as connection:
                found = vectors.search_postgres(connection, model.name, vector, 10)
        index_ms.append((time.perf_counter() - started) * 1000)
        ids = [p for p, _s in found]
        if to_sqlite is not None:
            ids = [to_sqlite[p] for p in ids]
        recall.append(len(exact & set(ids)) / 10)
    out["recall10"] = float(np.mean(recall))
    out["exact"] = _stats(exact_ms)
    out["index"] = _stats(index_ms)
    out["index_kind"] = index.kind if index is not None else "pgvector hnsw"
    out["peak_after_recall_mb"] = _peak_mb()
    out["cpu_s"] = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    return out
