"""Search benchmark: latency of SearchService.search over 100k and 1M papers, and memory.

The corpus is bench/ingest.py's (its ``make_input``): the 200 real Kaggle snapshot records in
../shared/data, varied into N distinct papers (new ids; titles and abstracts suffixed with the
copy's number), written as one Kaggle-format file and ingested by the real ingest runner
(``IngestRun``) into SQLite; then the tantivy keyword index (``TantivyIndex.apply_changes``).

Vectors are partly SYNTHETIC: embedding N papers on 2 cores would take hours (25-50 papers/s
at best: 1M papers in 6-11 hours), so only ``--real`` papers (the newest, which cover every
base record) are embedded, by the real pipeline (``embed_missing``, the configured model).
Every other paper gets normalise(real vector of a paper varied from the same base record +
gaussian noise), sigma set so that its cosine to that vector is ~0.9, inserted into
``paper_embeddings`` as the ``EmbeddingVector`` type stores it (float16 bytes). Such data is
200 tight clusters of isotropic noise, a hard case for HNSW (see the recall line). The vector
index is built by the service itself (``vector_index = auto``: HNSW-SQ8 from 50k vectors) and
saved beside the database, as ``papertide embed`` leaves it for a server.

Measured in a fresh process that plays the server (it loads the service, the model and the
saved indexes, as ``papertide serve`` does), after 20 warm-up queries, one request at a time,
with the page cache as the build left it:

- latency (wall clock, perf_counter; also the process's CPU time, all threads) of
  ``SearchService.search(SearchRequest(q))`` for ``--queries`` queries: 2-4 word topics (title
  n-grams of the real records), exact titles, arXiv ids, "phrase" queries, queries with a
  typo, ``cat:`` filters and date ranges; in hybrid, keyword-only and vector-only mode; the
  query embedding alone (``Embedder.encode_query``); ``SearchService.similar`` for 100 papers;
  where a hybrid query's time goes (the service's own methods, wrapped with timers; a second
  pass over the same queries); hybrid again with one torch thread (as ``embedding_threads =
  1`` would have it). Other processes' CPU use meanwhile is printed: on a shared machine the
  figures mean little when it is high;
- memory: resident set (VmRSS, anonymous + file-backed) after each load, and the peak
  (``ru_maxrss``) after the queries, before any comparison below;
- comparisons, afterwards in the same process: the peer's search (arxiv-sanity-lite's
  ``search_rank``: a Python loop scoring every paper by query-word matches in title, authors
  and abstract) over ``--baseline-queries`` topic queries (3 above 200k papers: seconds each);
  exact search (numpy, float32 matrix times query) over every vector, and the recall@10 of
  the service's HNSW index against it, on 100 query vectors;
- a variant (unless ``--no-variant``): hybrid search in a second fresh server process with
  ``OMP_WAIT_POLICY=PASSIVE``, so that idle OpenMP threads (torch's and faiss's pools) sleep
  instead of spinning on the 2 cores the main thread needs.

Build steps run in subprocesses of their own (so peak RSS is each one's) and are cached in
``--cache``/{size}: a later run reuses the database and indexes and reprints the build figures
(``--rebuild`` starts afresh). The benchmark measures the checkout it lives in. Targets at 1M
papers on 2 cores: p50 <= 20 ms, p99 <= 60 ms, server memory <= 2 GB.

Usage: python bench/search.py [--sizes 100000,1000000] [--queries 200] [--cache DIR]
       [--real 1000] [--baseline-queries 20] [--no-variant] [--rebuild]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# Measure the checkout this script is in, whatever an editable install elsewhere points to.
sys.path.insert(0, str(HERE.parent))

_spec = importlib.util.spec_from_file_location("bench_ingest", HERE / "ingest.py")
assert _spec is not None and _spec.loader is not None
bench_ingest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_ingest)
SAMPLE: Path = bench_ingest.SAMPLE
make_input: Callable[[Path, int], None] = bench_ingest.make_input

WARMUP = 20
COSINE_TO_BASE = 0.9
SIMILAR_PAPERS = 100
RECALL_QUERIES = 100
TARGETS = {"p50": 20.0, "p99": 60.0, "memory_mb": 2048.0}
VARIANT_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}
VARIANT = "OMP_WAIT_POLICY=PASSIVE"
STEPS = ("ingest", "keyword", "vectors", "vindex")
_STOP_WORDS = (
    "a an and are as at by for from in into is its of on or the to with via using under over "
    "between new two three one non after before their this that we our"
)
STOP = frozenset(_STOP_WORDS.split())
WORD = re.compile(r"[A-Za-z][A-Za-z-]*[A-Za-z]")
LATEX = re.compile(r"\$[^$]*\$")


# --- small helpers ------------------------------------------------------------------------------


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss() -> dict[str, float]:
    """VmRSS, RssAnon and RssFile of this process, MB."""
    found: dict[str, float] = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                found[key] = int(value.split()[0]) / 1024
    return found


def _cpu_clock() -> tuple[float, float, float]:
    """(wall seconds, CPU seconds of the whole machine, CPU seconds of this process)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    busy = (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    own = resource.getrusage(resource.RUSAGE_SELF)
    return time.monotonic(), busy, own.ru_utime + own.ru_stime


def _others(since: tuple[float, float, float]) -> float:
    """Cores that other processes kept busy on average since ``since`` (a _cpu_clock())."""
    now = _cpu_clock()
    wall = now[0] - since[0]
    return max(0.0, ((now[1] - since[1]) - (now[2] - since[2])) / wall) if wall > 0 else 0.0


def _disk_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def _stats(ms: list[float]) -> dict[str, float]:
    import numpy as np

    values = np.asarray(ms, dtype=np.float64)
    return {
        "n": len(ms),
        "p50": float(np.percentile(values, 50)),
        "p95": float(np.percentile(values, 95)),
        "p99": float(np.percentile(values, 99)),
        "mean": float(values.mean()),
        "max": float(values.max()),
    }


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
    if f"{(15 + month // 12) * 100 + month % 12 + 1:04d}.{n % 99_999 + 1:05d}" != arxiv_id:
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
    from papertide.search.pipeline import embed_missing
    from papertide.search.service import shared_embedder

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


# --- queries --------------------------------------------------------------------------------------


def _ngram(rng: random.Random, text: str, low: int, high: int) -> str:
    words = WORD.findall(LATEX.sub(" ", text))
    for _ in range(50):
        n = rng.randint(low, min(high, max(low, len(words))))
        if len(words) < n:
            break
        start = rng.randint(0, len(words) - n)
        gram = words[start : start + n]
        if gram[0].lower() not in STOP and gram[-1].lower() not in STOP:
            return " ".join(gram).lower()
    return " ".join(words[:2]).lower() or "quantum field"


def _typo(rng: random.Random, query: str) -> str:
    words = query.split()
    long = [i for i, w in enumerate(words) if len(w) >= 5]
    if not long:
        return query + "s"
    i = rng.choice(long)
    w = words[i]
    k = rng.randint(1, len(w) - 2)
    edit = rng.choice(("swap", "drop", "change"))
    if edit == "swap":
        w = w[:k] + w[k + 1] + w[k] + w[k + 2 :]
    elif edit == "drop":
        w = w[:k] + w[k + 1 :]
    else:
        w = w[:k] + rng.choice("aeiourstn".replace(w[k], "")) + w[k + 1 :]
    words[i] = w
    return " ".join(words)


def _first_version_day(record: dict[str, Any]) -> date:
    return parsedate_to_datetime(record["versions"][0]["created"]).astimezone(UTC).date()


def make_queries(
    rng: random.Random, count: int, records: list[dict[str, Any]], papers: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    """``count`` queries: {"kind", "text", optional "date_from"/"date_to"}.

    ``papers`` are (arXiv id, title) of random papers of the database."""
    mix = [
        ("topic", 0.45),
        ("title", 0.075),
        ("arxiv id", 0.075),
        ("phrase", 0.10),
        ("typo", 0.10),
        ("cat filter", 0.10),
        ("date filter", 0.10),
    ]
    kinds = [kind for kind, share in mix for _ in range(round(share * count))]
    kinds = (kinds + ["topic"] * count)[:count]
    rng.shuffle(kinds)
    paper_iter = iter(papers)
    queries = []
    for kind in kinds:
        record = rng.choice(records)
        topic = _ngram(rng, record["title"], 2, 4)
        query: dict[str, Any] = {"kind": kind, "text": topic}
        if kind == "title":
            query["text"] = " ".join(next(paper_iter)[1].split())
        elif kind == "arxiv id":
            arxiv_id = next(paper_iter)[0]
            query["text"] = rng.choice((arxiv_id, f"arXiv:{arxiv_id}"))
        elif kind == "phrase":
            phrase = _ngram(rng, record["abstract"], 2, 2)
            query["text"] = rng.choice((f'"{phrase}"', f'"{phrase}" {topic.split()[-1]}'))
        elif kind == "typo":
            query["text"] = _typo(rng, topic)
        elif kind == "cat filter":
            query["text"] = f"{topic} cat:{rng.choice(record['categories'].split())}"
        elif kind == "date filter":
            day = _first_version_day(record) + timedelta(days=rng.randint(0, 3))
            query["date_from"] = (day - timedelta(days=rng.choice((1, 7, 30, 365)))).isoformat()
            query["date_to"] = day.isoformat()
        queries.append(query)
    return queries


# --- the measurement (the "server" process) -----------------------------------------------------


def _timed(fn: Callable[..., Any], sink: dict[str, list[float]], name: str) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            sink.setdefault(name, []).append((time.perf_counter() - started) * 1000)

    return wrapper


def _peer_search(papers: list[tuple[int, str, str, str]], q: str) -> list[int]:
    """arxiv-sanity-lite's search: every paper scored in Python by its matches of each word."""
    words = q.lower().strip().split()
    scored = []
    for paper_id, title, authors, abstract in papers:
        title_l, authors_l, abstract_l = title.lower(), authors.lower(), abstract.lower()
        score = 10.0 * sum(1 for w in words if w in authors_l)
        score += 20.0 * sum(1 for w in words if w in title_l)
        score += sum(min(3, abstract_l.count(w)) for w in words)
        if score > 0:
            scored.append((score, paper_id))
    scored.sort(reverse=True)
    return [paper_id for _s, paper_id in scored]


def _step_measure(cache: Path, options: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"memory": []}

    def note(stage: str) -> None:
        out["memory"].append({"stage": stage, **_rss()})

    note("python started")
    import numpy as np

    from papertide.search.filters import SearchFilters
    from papertide.search.service import Mode, SearchRequest, SearchService

    paths = _paths(cache)
    engine = _engine(paths["db"])
    settings = _settings(paths["db"])
    note("papertide imported")
    service = SearchService(engine, settings)  # opens the tantivy index
    assert service.keyword is not None
    service.keyword.count()
    note("keyword index opened")
    model = service.embedder(wait=True)
    assert model is not None
    model.encode_query("warm up the model")
    note("model loaded")
    started = time.perf_counter()
    index = service.vector_index(model)  # HNSW: the saved index, loaded from disk
    out["vindex_saved"] = index.index is not None
    service.catch_up(inline=False)  # HNSW: nothing to do; exact: built from the database
    out["vindex_load_s"] = time.perf_counter() - started
    out["vindex"] = {"kind": index.kind, "count": index.count}
    out["model"] = {"name": model.name, "precision": model.precision}
    note("vector index loaded")

    rng = random.Random(options["seed"])
    records = _base_records()
    with engine.connect() as connection:
        total = connection.exec_driver_sql("SELECT max(id) FROM papers").scalar_one()
        picks = rng.sample(range(1, total + 1), 2 * options["queries"] + SIMILAR_PAPERS)
        papers = connection.exec_driver_sql(
            f"SELECT arxiv_id, title FROM papers WHERE id IN ({','.join(map(str, picks))})"
        ).all()
    rng.shuffle(papers)
    queries = make_queries(rng, WARMUP + options["queries"], records, papers)
    warmup, timed = queries[:WARMUP], queries[WARMUP:]

    def request(query: dict[str, Any], mode: Mode) -> Any:
        filters = SearchFilters(
            date_from=date.fromisoformat(query["date_from"]) if "date_from" in query else None,
            date_to=date.fromisoformat(query["date_to"]) if "date_to" in query else None,
        )
        return SearchRequest(query["text"], filters=filters, mode=mode)

    for query in warmup:
        for mode in Mode:
            service.search(request(query, mode))
    latency: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}

    def call(name: str, fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
        """fn(*args), its wall-clock ms recorded under ``name`` (and this process's CPU ms)."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        result = fn(*args)
        ms = (time.perf_counter() - started) * 1000
        after = resource.getrusage(resource.RUSAGE_SELF)
        latency.setdefault(name, []).append(ms)
        cpu_ms = (after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime) * 1000
        cpu.setdefault(name, []).append(cpu_ms)
        return result, ms

    by_kind: dict[str, list[float]] = {}
    clock = _cpu_clock()
    out["load_before"] = os.getloadavg()[0]
    checks = {"title pinned": [0, 0], "arxiv id pinned": [0, 0], "with results": [0, 0]}
    light = bool(options.get("light"))  # a variant: hybrid and encode_query only
    for mode in [Mode.HYBRID] if light else list(Mode):
        for query in timed:
            outcome, ms = call(mode.value, service.search, request(query, mode))
            if mode is not Mode.HYBRID:
                continue
            assert outcome.mode is Mode.HYBRID, (query, outcome.mode, outcome.notice)
            by_kind.setdefault(query["kind"], []).append(ms)
            checks["with results"][0] += bool(outcome.ids)
            checks["with results"][1] += 1
            if query["kind"] in ("title", "arxiv id"):
                check = checks["title pinned" if query["kind"] == "title" else "arxiv id pinned"]
                check[0] += bool(outcome.pins) and outcome.ids[:1] == list(outcome.pins)[:1]
                check[1] += 1
    for query in timed:
        call("encode_query", model.encode_query, query["text"])
    for paper_id in [] if light else picks[-SIMILAR_PAPERS:]:
        (found, mode_used), _ms = call("similar", service.similar, paper_id)
        assert mode_used is Mode.VECTOR and found, (paper_id, mode_used)
    out["others_cores"] = _others(clock)
    note("after the queries")
    out["peak_mb"] = _peak_mb()
    import torch

    out["torch_threads"] = torch.get_num_threads()
    if light:
        out["latency"] = {name: _stats(ms) for name, ms in latency.items()}
        return out

    # Where a hybrid query's time goes: the service's own methods, timed by wrapping them.
    parts: dict[str, list[float]] = {}
    keyword = service.keyword
    wrapped: list[tuple[Any, str]] = [
        (service, "catch_up"),
        (service, "coverage"),
        (keyword, "search"),
        (keyword, "fuzzy_title"),
        (model, "encode_query"),
        (index, "search"),
        (service, "_passing"),
        (service, "_pins"),
    ]
    labels = {
        "catch_up": "catch_up (pending changes?)",
        "coverage": "coverage (counts)",
        "search": "",
        "fuzzy_title": "tantivy fuzzy title",
        "encode_query": "encode_query (model)",
        "_passing": "vector filter SQL (_passing)",
        "_pins": "pins SQL + fuzz (_pins)",
    }
    for owner, name in wrapped:
        label = labels[name] or ("tantivy BM25 search" if owner is keyword else "faiss search")
        setattr(owner, name, _timed(getattr(owner, name), parts, label))
    totals: list[float] = []
    for query in timed:
        req = request(query, Mode.HYBRID)
        started = time.perf_counter()
        service.search(req)
        totals.append((time.perf_counter() - started) * 1000)
    for owner, name in wrapped:
        delattr(owner, name)
    out["parts"] = {
        label: {
            "p50": float(np.median(ms)),
            "mean": float(np.sum(ms)) / len(timed),
            "max": float(np.max(ms)),
        }
        for label, ms in parts.items()
    }
    out["parts_total"] = {
        "p50": float(np.median(totals)),
        "mean": float(np.mean(totals)),
        "max": float(np.max(totals)),
    }

    # The same with one torch thread (setting embedding_threads = 1), for comparison.
    if out["torch_threads"] > 1:
        clock = _cpu_clock()
        torch.set_num_threads(1)
        for query in timed:
            call("hybrid_1thread", service.search, request(query, Mode.HYBRID))
            call("encode_query_1thread", model.encode_query, query["text"])
        out["others_cores_1thread"] = _others(clock)
        torch.set_num_threads(out["torch_threads"])
    out["latency"] = {name: _stats(ms) for name, ms in latency.items()}
    for name, ms in cpu.items():
        out["latency"][name]["cpu_p50"] = _stats(ms)["p50"]
        out["latency"][name]["cpu_mean"] = _stats(ms)["mean"]
    out["by_kind"] = {kind: _stats(ms) for kind, ms in by_kind.items()}
    out["checks"] = checks
    out["queries_example"] = [q["text"] for q in timed[:8]]

    # Exact search over every vector (numpy) and the HNSW index's recall@10 against it.
    started = time.perf_counter()
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT paper_id, vector FROM paper_embeddings WHERE model = ? ORDER BY id",
            (model.name,),
        ).all()
    labels_all = np.fromiter((r[0] for r in rows), np.int64, len(rows))
    matrix = (
        np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float16)
        .reshape(len(rows), model.dim)
        .astype(np.float32)
    )
    del rows
    out["exact_load_s"] = time.perf_counter() - started
    topics = [q["text"] for q in timed if q["kind"] in ("topic", "typo", "cat filter")]
    topics = (topics * RECALL_QUERIES)[:RECALL_QUERIES]
    exact_ms, hnsw_ms, recall, exact_cos, hnsw_cos = [], [], [], [], []
    for text in topics:
        vector = model.encode_query(text)
        started = time.perf_counter()
        scores = matrix @ vector
        top = np.argpartition(-scores, 10)[:10]
        exact = labels_all[top[np.argsort(-scores[top])]]
        exact_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        found = index.search(vector, 10)
        hnsw_ms.append((time.perf_counter() - started) * 1000)
        recall.append(len({p for p, _s in found} & set(exact.tolist())) / 10)
        exact_cos.append(float(scores[top].mean()))
        got = np.isin(labels_all, [p for p, _s in found])
        hnsw_cos.append(float(scores[got].mean()) if got.any() else 0.0)
    out["exact"] = _stats(exact_ms)
    out["hnsw"] = _stats(hnsw_ms)
    out["recall10"] = float(np.mean(recall))
    out["exact_cos10"] = float(np.mean(exact_cos))
    out["hnsw_cos10"] = float(np.mean(hnsw_cos))
    del matrix

    # The peer's search: a Python loop over every paper.
    n_peer = options["baseline_queries"]
    if total > 200_000:
        n_peer = min(3, n_peer)
    with engine.connect() as connection:
        corpus = [
            (int(i), t, a or "", b or "")
            for i, t, a, b in connection.exec_driver_sql(
                "SELECT id, title, authors_text, abstract FROM papers"
            )
        ]
    peer: list[float] = []
    for query in [q for q in timed if q["kind"] == "topic"][:n_peer]:
        started = time.perf_counter()
        _peer_search(corpus, query["text"])
        peer.append((time.perf_counter() - started) * 1000)
    out["peer"] = _stats(peer)
    out["papers"] = len(corpus)
    return out


CHILD_STEPS: dict[str, Callable[[Path, dict[str, Any]], dict[str, Any]]] = {
    "ingest": _step_ingest,
    "keyword": _step_keyword,
    "vectors": _step_vectors,
    "vindex": _step_vindex,
    "measure": _step_measure,
}


def run_child(
    step: str, cache: Path, options: dict[str, Any], env: dict[str, str] | None = None
) -> dict[str, Any]:
    os.sync()
    out = subprocess.run(
        [sys.executable, __file__, "--child", step, str(cache), json.dumps(options)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    if out.returncode:
        sys.exit(f"step {step} for {cache} failed (exit {out.returncode}); see stderr above")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# --- the parent: build, measure, print ------------------------------------------------------------


def build(size: int, cache: Path, options: dict[str, Any], rebuild: bool) -> dict[str, Any]:
    """Every build step's figures, running those not cached (and every one after them)."""
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
    for step in STEPS:
        if step in done and not stale:
            done[step]["cached"] = True
            continue
        stale = True
        if step == "ingest":
            for old in cache.glob("papertide.db*"):
                shutil.rmtree(old) if old.is_dir() else old.unlink()
        print(f"  building {size:,}: {step} ...", file=sys.stderr, flush=True)
        done[step] = run_child(step, cache, options)
        done[step]["cached"] = False
        paths["build"].write_text(json.dumps(done, indent=1))
    done["db_mb"] = sum(_disk_mb(p) for p in cache.glob("papertide.db") if p.is_file())
    return done


def report(size: int, cache: Path, built: dict[str, Any], m: dict[str, Any]) -> None:
    def flag(value: float, target: float) -> str:
        return "ok" if value <= target else "OVER"

    print(f"\n=== {size:,} papers (cache {cache}) ===")
    print("build (seconds, peak RSS of the step's own process; 'cached' = from an earlier run)")
    print(f"  {'step':<28} {'seconds':>8} {'peak MB':>8}  notes")
    g = built["generate"]
    print(
        f"  {'generate Kaggle input':<28} {g['seconds']:>8.1f} {'':>8}  "
        f"{g['disk_mb']:,.0f} MB (bench/ingest.py make_input)"
    )
    i, k, v, x = built["ingest"], built["keyword"], built["vectors"], built["vindex"]

    def line(label: str, step: dict[str, Any], seconds: float, notes: str) -> None:
        cached = " (cached)" if step.get("cached") else ""
        print(f"  {label:<28} {seconds:>8.1f} {step['peak_mb']:>8,.0f}  {notes}{cached}")

    line(
        "ingest (IngestRun)",
        i,
        i["seconds"],
        f"{i['papers']:,} papers, {i['papers'] / i['seconds']:,.0f}/s; "
        f"database {built['db_mb']:,.0f} MB",
    )
    line(
        "keyword index (tantivy)",
        k,
        k["seconds"],
        f"{k['docs']:,} documents, {k['disk_mb']:,.0f} MB on disk",
    )
    line(
        "real embeddings",
        v,
        v["real_seconds"],
        f"{v['real']:,} papers by embed_missing, {v['real_rate']:.1f}/s "
        f"({v['model']}, {v['precision']})",
    )
    line(
        "synthetic vectors",
        v,
        v["synthetic_seconds"],
        f"{v['synthetic']:,} papers, sigma {v['sigma']:.4f}, cosine to base {v['cos_to_base']:.3f}",
    )
    line(
        "vector index (the service)",
        x,
        x["seconds"],
        f"{x['kind']}, {x['vectors']:,} vectors, {x['disk_mb']:,.0f} MB saved on disk",
    )
    print(
        f"  vectors: {v['real']:,} real ({v['model']}), {v['synthetic']:,} SYNTHETIC = "
        f"normalise(real vector of the same base record + N(0, {v['sigma']:.4f}^2)); "
        f"real variants of one base record agree at cosine {v['real_same_base_cos']:.3f}"
    )
    how = "saved index loaded" if m["vindex_saved"] else "exact index built from the database"
    print(f"  vector index at server start: {how} in {m['vindex_load_s']:.1f} s")

    print(
        f"\nlatency, ms ({m['latency']['hybrid']['n']} queries after {WARMUP} warm-up; "
        f"wall clock around each call, one request at a time; cpu: this process's CPU "
        f"time, all threads; torch {m['torch_threads']} "
        f"threads; load average {m['load_before']:.2f} before, other processes kept "
        f"{m['others_cores']:.2f} of {os.cpu_count()} cores busy meanwhile)"
    )
    print(
        f"  {'what':<34} {'n':>4} {'p50':>7} {'p95':>7} {'p99':>7} {'mean':>7} {'max':>7} "
        f"{'cpu p50':>8} {'cpu mean':>8}"
    )
    names = {
        "hybrid": "search, hybrid",
        "keyword": "search, keyword only",
        "vector": "search, vector only",
        "encode_query": "Embedder.encode_query alone",
        "similar": "similar() (100 papers)",
        "hybrid_1thread": "search, hybrid, torch 1 thread",
        "encode_query_1thread": "encode_query alone, 1 thread",
    }
    for key, label in names.items():
        if key not in m["latency"]:
            continue
        s = m["latency"][key]
        print(
            f"  {label:<34} {s['n']:>4} {s['p50']:>7.2f} {s['p95']:>7.2f} {s['p99']:>7.2f} "
            f"{s['mean']:>7.2f} {s['max']:>7.2f} {s['cpu_p50']:>8.2f} {s['cpu_mean']:>8.2f}"
        )
    if "others_cores_1thread" in m:
        print(
            f"  (1-thread rows: torch.set_num_threads(1) afterwards, as embedding_threads = 1 "
            f"would; other processes kept {m['others_cores_1thread']:.2f} cores busy)"
        )
    print("  hybrid by query kind:")
    for kind, s in sorted(m["by_kind"].items()):
        print(
            f"    {kind:<32} {s['n']:>4} {s['p50']:>7.2f} {s['p95']:>7.2f} {s['p99']:>7.2f} "
            f"{s['mean']:>7.2f} {s['max']:>7.2f}"
        )
    checks = ", ".join(f"{name} {a}/{b}" for name, (a, b) in m["checks"].items())
    print(f"  checks (hybrid): {checks}")
    print(f"  e.g. {'; '.join(m['queries_example'])}")

    print("\nwhere a hybrid query's time goes (ms per query; the service's methods, wrapped)")
    print(f"  {'part':<34} {'p50':>7} {'mean':>7} {'max':>7}")
    for label, s in sorted(m["parts"].items(), key=lambda kv: -kv[1]["mean"]):
        print(f"  {label:<34} {s['p50']:>7.2f} {s['mean']:>7.2f} {s['max']:>7.2f}")
    # The wrapped parts do not call one another: the rest is the search's own Python.
    rest = m["parts_total"]["mean"] - sum(s["mean"] for s in m["parts"].values())
    print(f"  {'everything else (parse, fusion, ...)':<34} {'':>7} {rest:>7.2f}")
    t = m["parts_total"]
    print(f"  {'total':<34} {t['p50']:>7.2f} {t['mean']:>7.2f} {t['max']:>7.2f}")

    print("\nmemory of the server process, MB (VmRSS = anonymous + file-backed pages)")
    print(f"  {'after':<24} {'VmRSS':>7} {'anon':>7} {'file':>7} {'+VmRSS':>7}")
    previous = 0.0
    for row in m["memory"]:
        print(
            f"  {row['stage']:<24} {row['VmRSS']:>7,.0f} {row['RssAnon']:>7,.0f} "
            f"{row['RssFile']:>7,.0f} {row['VmRSS'] - previous:>+7,.0f}"
        )
        previous = row["VmRSS"]
    print(
        f"  peak RSS (ru_maxrss) after loading and the queries: {m['peak_mb']:,.0f} MB "
        f"[{flag(m['peak_mb'], TARGETS['memory_mb'])}: target <= {TARGETS['memory_mb']:,.0f}]"
    )
    print(
        f"  the build steps peaked at: vector index {x['peak_mb']:,.0f} MB (model loaded: "
        f"{x['peak_before_mb']:,.0f}), keyword index {k['peak_mb']:,.0f} MB"
    )

    print("\ncomparison, same process, after the measurements above")
    p = m["peer"]
    hybrid = m["latency"]["hybrid"]
    print(
        f"  peer (arxiv-sanity-lite search_rank, Python loop over {m['papers']:,} papers): "
        f"{p['n']} topic queries, p50 {p['p50']:,.0f} ms, mean {p['mean']:,.0f} ms = "
        f"{p['p50'] / hybrid['p50']:,.1f}x hybrid p50"
    )
    e, h = m["exact"], m["hnsw"]
    print(
        f"  vectors: exact numpy (float32 matrix @ q, top 10) p50 {e['p50']:.2f} ms / p99 "
        f"{e['p99']:.2f}; the service's {m['vindex']['kind']} index p50 {h['p50']:.2f} ms / p99 "
        f"{h['p99']:.2f}; recall@10 vs exact {m['recall10']:.3f} ({e['n']} query vectors)"
    )
    print(
        f"  mean cosine of the 10 found: exact {m['exact_cos10']:.4f}, {m['vindex']['kind']} "
        f"{m['hnsw_cos10']:.4f} (synthetic vectors are tight clusters of isotropic noise, "
        "where neighbours within a cluster differ by noise only)"
    )
    print(
        f"targets (set for 1M): p50 {hybrid['p50']:.1f} ms [{flag(hybrid['p50'], TARGETS['p50'])}]"
        f", p99 {hybrid['p99']:.1f} ms [{flag(hybrid['p99'], TARGETS['p99'])}], memory "
        f"{m['peak_mb']:,.0f} MB [{flag(m['peak_mb'], TARGETS['memory_mb'])}]",
        flush=True,
    )


def report_variant(m: dict[str, Any], v: dict[str, Any]) -> None:
    print(
        f"\nvariant: the same queries in a fresh server process with {VARIANT} (OpenMP threads "
        "of torch and faiss sleep when idle instead of spinning); other processes kept "
        f"{v['others_cores']:.2f} cores busy"
    )
    print(f"  {'what':<34} {'p50':>7} {'p95':>7} {'p99':>7} {'mean':>7}   default p50 / p99")
    for key, label in (("hybrid", "search, hybrid"), ("encode_query", "encode_query alone")):
        s, d = v["latency"][key], m["latency"][key]
        print(
            f"  {label:<34} {s['p50']:>7.2f} {s['p95']:>7.2f} {s['p99']:>7.2f} {s['mean']:>7.2f}"
            f"   {d['p50']:.2f} / {d['p99']:.2f}"
        )
    print(f"  peak RSS {v['peak_mb']:,.0f} MB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=200, help="timed queries per mode")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/papertide-searchbench"))
    parser.add_argument("--real", type=int, default=1000, help="papers embedded for real")
    parser.add_argument("--baseline-queries", type=int, default=20, help="peer loop queries")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rebuild", action="store_true", help="ignore the cache")
    parser.add_argument(
        "--no-variant",
        dest="variant",
        action="store_false",
        help=f"skip the second measurement, with {VARIANT}",
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step, cache, options = args.child
        print(json.dumps(CHILD_STEPS[step](Path(cache), json.loads(options))))
        return
    import sqlite3

    import papertide

    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; python "
        f"{sys.version.split()[0]}; sqlite {sqlite3.sqlite_version}; papertide from "
        f"{Path(papertide.__file__).parent}"
    )
    print(f"sample: {SAMPLE}")
    options = {
        "real": args.real,
        "seed": args.seed,
        "queries": args.queries,
        "baseline_queries": args.baseline_queries,
    }
    for size in (int(s) for s in args.sizes.split(",")):
        cache = args.cache / str(size)
        built = build(size, cache, options, args.rebuild)
        print(f"  measuring {size:,} ...", file=sys.stderr, flush=True)
        measured = run_child("measure", cache, options)
        report(size, cache, built, measured)
        if args.variant:
            print(f"  measuring {size:,} with {VARIANT} ...", file=sys.stderr, flush=True)
            variant = run_child("measure", cache, {**options, "light": True}, VARIANT_ENV)
            report_variant(measured, variant)


if __name__ == "__main__":
    main()
