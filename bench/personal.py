"""Personal feed benchmark: ranking quality on CSFCube, and the "for you" ranker's speed.

Quality (``quality``). CSFCube (``shared/data/SOURCES.md`` 3a, read by ``bench/judged.py``):
50 facet queries, each a query paper with a pool of candidates (88-253) judged 0-3. The query
paper is taken as a user's one saved paper and its pool as the day's new papers; the pool is
ranked by

- **ranker**: ``papertide.personal.feed.rank`` itself, with a Profile whose positives are the
  query paper's vector (no topics, no negatives, trending weight 0, threshold -1) and
  Candidates built from the pool's vectors;
- **BM25**: tantivy (``en_stem`` title and abstract, title boost as the site's) over an
  in-memory index of the whole collection (4,205 papers, so IDF is the collection's), searched
  with every term of the query paper's title + abstract (any word); pool papers matching no
  word come last;
- **cosine**: the pool by cosine to the query paper's vector.

Vectors are the real model's (all-MiniLM-L6-v2, precision auto) on ``document_text(title,
abstract)``, cached in ``--cache``. The metric is nDCG@10 (gain = grade, log2 discount, ideal
from all the pool's judgments), mean over the 50 queries. With one positive the ranker's
``0.7 * max cos + 0.3 * cos(centroid)`` is the cosine itself, so ranker == cosine is expected
(the table counts the queries whose order differs at all). Two variants exercise what the
ranker adds, each on a pool with one paper taken out for every method alike:

- **2 saves**: the user also saved the query's best-judged candidate (highest grade, first in
  pool order), which leaves the pool. Positives = [query paper, that paper]; BM25 searches the
  two papers' text together; cosine stays with the query paper (what one save gives).
- **1 dismissal**: the user dismissed the candidate they would see first that is judged 0 (the
  highest-cosine grade-0 paper: the first irrelevant item of the one-save feed), which leaves
  the pool. Negatives = [that paper]; BM25 and cosine cannot use it.

Batch speed (``batch``). 10,000 synthetic users over one day's 1,000 new papers (1,000 real
CSFCube vectors and texts, random categories, log-normal upvotes). A user has 5-50 positives
and 0-10 negatives, real vectors from one neighbourhood of the collection (a seed paper's 60
nearest) perturbed as ``normalise(v + N(0, 0.0247))`` (cosine ~0.9 to the original), 0-3
topics (real query vectors of CS phrases), a threshold (0 for 70%, 0.2, 0.35), a trending
weight (0.3 for 60%, else uniform), an exclude keyword rule for 10% and an include category
rule for 5%, and 0-30 of the day's papers already seen. Only ``rank()`` is timed, one process.

Request speed (``request``). A SQLite catalog of 1,000,000 papers (built once into ``--cache``
by direct inserts: CSFCube texts and perturbed vectors, published evenly over 3 years, so a
7-day window holds ~6,400; 1-3 categories each; 40 daily-list entries a day for 90 days; the
search triggers are dropped, the keyword index is not part of the feed) and one user with 60
saves and 60 upvotes (~90 positives), 20 dismissals, 300 seen papers, 2 topics and one exclude
rule. ``for_you()`` (interests, profile, candidates from a warm CandidateCache, marks, followed
folders where the ranker has them, rank) is timed 200 times, each on a connection from the
engine's pool, after one warm-up, then its steps one by one (200 times more);
``feed.CACHE_S`` is raised in this process so every request hits the cache. The cold
``CandidateCache.get`` (the window's query and arrays) is timed 3 times (OS page cache warm).

Both speed parts run once per ``--blas-threads`` setting (default ``0,1``: numpy's own BLAS
thread count, then 1 thread via threadpoolctl): on a loaded machine BLAS threads that spin for
cores can make the small matrix products of ``rank()`` several times slower.

Usage: python bench/personal.py [--cache DIR] [--parts quality,batch,request] [--users N]
       [--blas-threads 0,1]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# Measure the checkout this script is in, whatever an editable install elsewhere points to.
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from personal_quality import quality  # noqa: E402
from personal_speed import batch, blas_default, request  # noqa: E402

MODEL = "all-MiniLM-L6-v2"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/papertide-personal"))
    parser.add_argument("--parts", default="quality,batch,request")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--papers", type=int, default=1_000, help="new papers for the batch")
    parser.add_argument("--catalog", type=int, default=1_000_000, help="papers for the request")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--blas-threads",
        default="0,1",
        help="numpy BLAS thread counts to time the speed parts under (0: numpy's default)",
    )
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = parts - {"quality", "batch", "request"}
    if unknown:
        parser.error(f"unknown part {sorted(unknown)[0]!r}")

    threads = [int(t) for t in args.blas_threads.split(",") if t.strip()]
    if any(t < 0 for t in threads) or (any(threads) and blas_default() == 0):
        parser.error("--blas-threads: counts of 0 or more (above 0 needs threadpoolctl)")

    import papertide
    from papertide.search.models import shared_embedder

    started = time.perf_counter()
    embedder = shared_embedder(MODEL, "auto", 0)
    print(
        f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; sqlite "
        f"{sqlite3.sqlite_version}; numpy {np.__version__}; papertide from "
        f"{Path(papertide.__file__).parent}"
    )
    print(f"model: {embedder!r}, loaded in {time.perf_counter() - started:.1f} s")
    if "quality" in parts:
        quality(embedder, args.cache)
    if "batch" in parts:
        batch(embedder, args.cache, args.users, args.papers, args.seed, threads)
    if "request" in parts:
        request(embedder, args.cache, args.catalog, args.requests, args.seed, threads)


if __name__ == "__main__":
    main()
