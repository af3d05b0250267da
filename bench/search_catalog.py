"""The search benchmark's catalog (see bench/search.py): N papers, built once and cached.

Input generation (bench/ingest.py's ``make_input``), ingest into SQLite (``IngestRun``), the
tantivy keyword index, real + SYNTHETIC vectors and the service's vector index, each step in a
subprocess of its own (``run_child``: bench/search.py ``--child``), its figures cached in
``{cache}/build.json``. Imported by bench/search.py, which puts this folder on ``sys.path``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "search.py"  # the benchmark's entry point; it runs a step with ``--child``

_spec = importlib.util.spec_from_file_location("bench_ingest", HERE / "ingest.py")
assert _spec is not None and _spec.loader is not None
bench_ingest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_ingest)
SAMPLE: Path = bench_ingest.SAMPLE
make_input: Callable[[Path, int], None] = bench_ingest.make_input
copy_id: Callable[[int], str] = bench_ingest.copy_id

COSINE_TO_BASE = 0.9
STEPS = ("ingest", "keyword", "vectors", "vindex")


# --- small helpers ------------------------------------------------------------------------------


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _disk_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def _paths(cache: Path) -> dict[str, Path]:
    db = cache / "papertide.db"
    return {
        "data": cache / "kaggle.jsonl",
        "db": db,
        "search": cache / "papertide.db.search",
        "keyword": cache / "papertide.db.search" / "keyword",
        "build": cache / "build.json",
    }


def _settings(db: Path) -> Any:
    from papertide.config import load_settings

    return load_settings(
        env={
            "PAPERTIDE_DATABASE_URL": f"sqlite:///{db}",
            "PAPERTIDE_EMBED_IN_BACKGROUND": "false",
        }
    )


def _engine(db: Path) -> Any:
    from papertide.db.engine import make_engine

    return make_engine(f"sqlite:///{db}")


def _base_records() -> list[dict[str, Any]]:
    return [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]


def _copy_number(arxiv_id: str) -> int:
    """n of the record make_input wrote as ``arxiv_id`` (its inverse)."""
    yymm, _, seq = arxiv_id.partition(".")
    month = (int(yymm[:2]) - 15) * 12 + int(yymm[2:]) - 1
    n = month * 99_999 + int(seq[:5]) - 1
    if copy_id(n) != arxiv_id:
        raise ValueError(f"{arxiv_id} is not an id bench/ingest.py's make_input writes")
    return n


# --- build steps (each in a subprocess) -----------------------------------------------------------


def _step_ingest(cache: Path, _options: dict[str, Any]) -> dict[str, Any]:
    from zoneinfo import ZoneInfo

    from papertide.db.migrate import migrate
    from papertide.ingest.runner import IngestRun

    paths = _paths(cache)
    engine = _engine(paths["db"])
    migrate(engine)
    started = time.perf_counter()
    report = IngestRun(engine=engine, tz=ZoneInfo("America/New_York")).run([paths["data"]])
    seconds = time.perf_counter() - started
    assert not report.errors, report.errors[:3]
    assert report.totals.new == report.records, report.totals
    return {"seconds": seconds, "papers": report.records, "peak_mb": _peak_mb()}


def _step_keyword(cache: Path, _options: dict[str, Any]) -> dict[str, Any]:
    from papertide.search.keyword_tantivy import TantivyIndex

    paths = _paths(cache)
    engine = _engine(paths["db"])
    started = time.perf_counter()
    index = TantivyIndex(engine, paths["search"])
    done = index.apply_changes(wait=True)
    seconds = time.perf_counter() - started
    docs = index.count()
    assert index.pending() == 0 and docs > 0, (index.pending(), docs)
    return {
        "seconds": seconds,
        "papers": done,
        "docs": docs,
        "disk_mb": _disk_mb(paths["keyword"]),
        "peak_mb": _peak_mb(),
    }


def _step_vectors(cache: Path, options: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    from papertide.db.engine import write_transaction
    from papertide.search.models import shared_embedder
    from papertide.search.pipeline import embed_missing

    paths = _paths(cache)
    engine = _engine(paths["db"])
    settings = _settings(paths["db"])
    nbase = len(_base_records())
    if options["real"] < nbase:
        sys.exit(f"--real must be at least {nbase} (one real vector per base record)")
    model = shared_embedder(
        settings.embedding_model, settings.embedding_precision, settings.embedding_threads
    )
    with write_transaction(engine) as connection:
        connection.exec_driver_sql("DELETE FROM paper_embeddings")
    # The real subset, through the real pipeline (newest papers first).
    started = time.perf_counter()
    report = embed_missing(engine, model, limit=options["real"])
    real_seconds = time.perf_counter() - started

    started = time.perf_counter()
    with engine.connect() as connection:
        papers = connection.exec_driver_sql("SELECT id, arxiv_id FROM papers ORDER BY id").all()
        real_rows = connection.exec_driver_sql(
            "SELECT paper_id, vector, created_at FROM paper_embeddings WHERE model = ?",
            (model.name,),
        ).all()
    paper_ids = np.fromiter((p for p, _a in papers), np.int64, len(papers))
    base_of = {paper_id: _copy_number(a) % nbase for paper_id, a in papers}
    base = np.zeros((nbase, model.dim), dtype=np.float32)
    have = np.zeros(nbase, dtype=bool)
    real_ids: set[int] = set()
    same_base_cos: list[float] = []
    for paper_id, blob, _created in real_rows:
        vector = np.frombuffer(blob, dtype=np.float16).astype(np.float32)
        b = base_of[paper_id]
        if have[b]:
            same_base_cos.append(float(vector @ base[b]))
        else:
            base[b], have[b] = vector, True
        real_ids.add(paper_id)
    assert have.all(), f"{int((~have).sum())} base records have no real vector"
    # |u + noise| for a unit u and noise N(0, s^2) in d dimensions: cos = 1 / sqrt(1 + d s^2).
    sigma = float(np.sqrt((1 / COSINE_TO_BASE**2 - 1) / model.dim))
    created = real_rows[0][2]  # the stored form of a timestamp, as the pipeline wrote it
    rng = np.random.default_rng(options["seed"])
    todo = np.asarray([p for p in paper_ids.tolist() if p not in real_ids], dtype=np.int64)
    check = _stored_bytes(engine)
    cosines: list[float] = []
    chunk = 50_000
    with write_transaction(engine) as connection:
        for start in range(0, len(todo), chunk):
            ids = todo[start : start + chunk]
            bases = np.fromiter((base_of[p] for p in ids.tolist()), np.int64, len(ids))
            matrix = base[bases] + rng.normal(0.0, sigma, (len(ids), model.dim)).astype(np.float32)
            matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
            cosines.extend((matrix[:200] * base[bases[:200]]).sum(axis=1).tolist())
            half = matrix.astype(np.float16)
            if start == 0:
                assert check(matrix[0]) == half[0].tobytes(), "not as EmbeddingVector stores it"
            connection.exec_driver_sql(
                "INSERT INTO paper_embeddings (paper_id, model, vector, created_at) "
                "VALUES (?, ?, ?, ?)",
                [
                    (paper_id, model.name, half[j].tobytes(), created)
                    for j, paper_id in enumerate(ids.tolist())
                ],
            )
    synthetic_seconds = time.perf_counter() - started
    return {
        "seconds": real_seconds + synthetic_seconds,
        "real": report.embedded,
        "real_seconds": real_seconds,
        "real_rate": report.rate,
        "synthetic": len(todo),
        "synthetic_seconds": synthetic_seconds,
        "sigma": sigma,
        "cos_to_base": float(np.mean(cosines)) if cosines else 1.0,
        "real_same_base_cos": float(np.mean(same_base_cos)) if same_base_cos else 1.0,
        "model": model.name,
        "precision": model.precision,
        "peak_mb": _peak_mb(),
    }


def _stored_bytes(engine: Any) -> Callable[[Any], bytes]:
    """What the ``EmbeddingVector`` column type stores on SQLite for a vector."""
    from papertide.db.schema import paper_embeddings

    processor = paper_embeddings.c.vector.type.bind_processor(engine.dialect)
    assert processor is not None
    return lambda vector: bytes(processor(vector))


def _step_vindex(cache: Path, _options: dict[str, Any]) -> dict[str, Any]:
    from papertide.search.service import SearchService

    paths = _paths(cache)
    for old in paths["search"].glob("vectors-*"):
        old.unlink()
    service = SearchService(_engine(paths["db"]), _settings(paths["db"]))
    model = service.embedder(wait=True)
    assert model is not None
    before = _peak_mb()
    started = time.perf_counter()
    service.catch_up(inline=False)  # no index yet: the service builds it (and saves HNSW)
    seconds = time.perf_counter() - started
    index = service.vector_index(model)
    files = list(paths["search"].glob("vectors-*"))
    return {
        "seconds": seconds,
        "kind": index.kind,
        "vectors": index.count,
        "disk_mb": sum(_disk_mb(f) for f in files),
        "peak_mb": _peak_mb(),
        "peak_before_mb": before,
    }


def run_child(
    step: str,
    cache: Path,
    options: dict[str, Any],
    env: dict[str, str] | None = None,
    script: Path = SCRIPT,
) -> dict[str, Any]:
    """``script --child step cache options`` in a fresh process; the JSON it prints last."""
    os.sync()
    out = subprocess.run(
        [sys.executable, str(script), "--child", step, str(cache), json.dumps(options)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    if out.returncode:
        sys.exit(f"step {step} for {cache} failed (exit {out.returncode}); see stderr above")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def build(
    size: int,
    cache: Path,
    options: dict[str, Any],
    rebuild: bool,
    steps: tuple[str, ...] = STEPS,
    script: Path = SCRIPT,
) -> dict[str, Any]:
    """Every build step's figures, running those not cached (and every one after them).

    ``steps`` run in order as ``script --child step`` (bench/scale.py adds its own)."""
    paths = _paths(cache)
    if rebuild and cache.exists():
        shutil.rmtree(cache)
    cache.mkdir(parents=True, exist_ok=True)
    done: dict[str, Any] = json.loads(paths["build"].read_text()) if paths["build"].exists() else {}
    if done.get("size") != size:
        done = {"size": size}
    if "generate" not in done or not paths["data"].exists():
        started = time.perf_counter()
        make_input(paths["data"], size)
        done = {"size": size, "generate": {"seconds": time.perf_counter() - started}}
        done["generate"]["disk_mb"] = _disk_mb(paths["data"])
    stale = False
    for step in steps:
        if step in done and not stale:
            done[step]["cached"] = True
            continue
        stale = True
        if step == "ingest":
            for old in cache.glob("papertide.db*"):
                shutil.rmtree(old) if old.is_dir() else old.unlink()
        print(f"  building {size:,}: {step} ...", file=sys.stderr, flush=True)
        done[step] = run_child(step, cache, options, script=script)
        done[step]["cached"] = False
        paths["build"].write_text(json.dumps(done, indent=1))
    done["db_mb"] = sum(_disk_mb(p) for p in cache.glob("papertide.db") if p.is_file())
    return done
