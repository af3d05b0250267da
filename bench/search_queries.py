"""The search benchmark's measurement (see bench/search.py): the "server" process.

The query set (topics, titles, arXiv ids, phrases, typos, filters), the timed searches, where a
hybrid query's time goes, and the comparisons: exact numpy search vs the service's HNSW index,
and the peer's Python loop (arxiv-sanity-lite's ``search_rank``). Imported by bench/search.py,
which puts this folder on ``sys.path``.
"""

from __future__ import annotations

import os
import random
import re
import resource
import time
from collections.abc import Callable
from datetime import UTC, date, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from search_catalog import _base_records, _engine, _paths, _peak_mb, _settings

WARMUP = 20
SIMILAR_PAPERS = 100
RECALL_QUERIES = 100
_STOP_WORDS = (
    "a an and are as at by for from in into is its of on or the to with via using under over "
    "between new two three one non after before their this that we our"
)
STOP = frozenset(_STOP_WORDS.split())
WORD = re.compile(r"[A-Za-z][A-Za-z-]*[A-Za-z]")
LATEX = re.compile(r"\$[^$]*\$")


# --- small helpers ------------------------------------------------------------------------------


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


def query_set(engine: Any, options: dict[str, Any]) -> tuple[list[int], list[dict[str, Any]]]:
    """(paper ids picked at random, WARMUP + ``options["queries"]`` queries) from the
    database, the same for the same seed: ``2 * queries`` picked papers give the title and
    arXiv-id queries, the last SIMILAR_PAPERS of them are for ``similar()``."""
    rng = random.Random(options["seed"])
    records = _base_records()
    with engine.connect() as connection:
        total = connection.exec_driver_sql("SELECT max(id) FROM papers").scalar_one()
        picks = rng.sample(range(1, total + 1), 2 * options["queries"] + SIMILAR_PAPERS)
        papers = connection.exec_driver_sql(
            f"SELECT arxiv_id, title FROM papers WHERE id IN ({','.join(map(str, picks))})"
        ).all()
    rng.shuffle(papers)
    return picks, make_queries(rng, WARMUP + options["queries"], records, papers)


def search_request(query: dict[str, Any], mode: Any) -> Any:
    """The ``SearchRequest`` of a query made by :func:`make_queries`, in ``mode``."""
    from papertide.search.filters import SearchFilters
    from papertide.search.service import SearchRequest

    filters = SearchFilters(
        date_from=date.fromisoformat(query["date_from"]) if "date_from" in query else None,
        date_to=date.fromisoformat(query["date_to"]) if "date_to" in query else None,
    )
    return SearchRequest(query["text"], filters=filters, mode=mode)


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

    from papertide.search.service import Mode, SearchService

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

    picks, queries = query_set(engine, options)
    warmup, timed = queries[:WARMUP], queries[WARMUP:]
    request = search_request

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
    with engine.connect() as connection:
        corpus = [
            (int(i), t, a or "", b or "")
            for i, t, a, b in connection.exec_driver_sql(
                "SELECT id, title, authors_text, abstract FROM papers"
            )
        ]
    n_peer = options["baseline_queries"]
    if len(corpus) > 200_000:
        n_peer = min(3, n_peer)
    peer: list[float] = []
    for query in [q for q in timed if q["kind"] == "topic"][:n_peer]:
        started = time.perf_counter()
        _peer_search(corpus, query["text"])
        peer.append((time.perf_counter() - started) * 1000)
    out["peer"] = _stats(peer)
    out["papers"] = len(corpus)
    return out
