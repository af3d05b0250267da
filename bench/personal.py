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
import contextlib
import hashlib
import json
import math
import os
import sqlite3
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

HERE = Path(__file__).resolve().parent
# Measure the checkout this script is in, whatever an editable install elsewhere points to.
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import judged  # noqa: E402
from judged import Collection  # noqa: E402

from papertide.personal import feed  # noqa: E402
from papertide.personal.feed import CandidateCache, Candidates, Profile, for_you, rank  # noqa: E402
from papertide.personal.interests import Interests, PaperFacts, RuleSet  # noqa: E402
from papertide.search.embedder import Embedder, document_text  # noqa: E402

MODEL = "all-MiniLM-L6-v2"
SIGMA = 0.0247  # per-dimension noise: cosine ~0.9 to the original 384-d unit vector
TOPICS = (
    "large language models",
    "diffusion models",
    "reinforcement learning",
    "graph neural networks",
    "machine translation",
    "question answering",
    "speech recognition",
    "information retrieval",
    "knowledge graphs",
    "named entity recognition",
    "sentiment analysis",
    "text summarization",
    "dialogue systems",
    "object detection",
    "federated learning",
    "differential privacy",
    "adversarial robustness",
    "interpretability of neural networks",
    "causal inference",
    "bayesian optimization",
    "few-shot learning",
    "contrastive representation learning",
    "recommender systems",
    "program synthesis",
    "word embeddings",
    "semantic parsing",
    "topic models",
    "active learning",
    "image captioning",
    "time series forecasting",
)
CATEGORIES = ("cs.CL", "cs.LG", "cs.AI", "cs.CV", "cs.IR", "stat.ML", "cs.NE", "cs.RO")
EXCLUDE_WORDS = ("survey", "benchmark", "dataset", "medical", "speech")


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-9)).astype(np.float32)


def perturbed(base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return unit_rows(base + rng.normal(0.0, SIGMA, base.shape).astype(np.float32))


def blas_default() -> int:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return 0
    return max(
        (int(p["num_threads"]) for p in threadpool_info() if p["user_api"] == "blas"), default=0
    )


def blas_label(setting: int) -> str:
    return f"{blas_default()} (default)" if setting == 0 else str(setting)


@contextlib.contextmanager
def blas_threads(setting: int) -> Iterator[None]:
    """numpy's BLAS limited to ``setting`` threads (0: as numpy starts)."""
    if setting == 0:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=setting, user_api="blas"):
        yield


def percentile_ms(seconds: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(seconds) * 1000, q))


# --- quality ------------------------------------------------------------------------------------


def ndcg_at(ranked: Sequence[str], grades: Mapping[str, int], k: int = 10) -> float:
    """DCG of the top k (grade / log2(rank + 1), unjudged gain 0) over the ideal DCG of all the
    query's judged grades; 0 when nothing is relevant."""
    dcg = sum(grades.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:k]
    best = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / best if best else 0.0


def collection_vectors(coll: Collection, embedder: Embedder, cache: Path) -> np.ndarray:
    """Unit vectors of the collection's documents in ``coll.docs`` order (cached as .npy)."""
    texts = [document_text(d.title, d.abstract) for d in coll.docs]
    digest = hashlib.sha1(
        "\n".join(
            [embedder.name, embedder.precision, *(d.doc_id for d in coll.docs), *texts]
        ).encode()
    ).hexdigest()[:16]
    path = cache / f"csfcube-{digest}.npy"
    if path.exists():
        return np.load(path)
    started = time.perf_counter()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    matrix = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    for start in range(0, len(order), 256):
        chunk = order[start : start + 256]
        matrix[chunk] = embedder.encode_documents([texts[i] for i in chunk])
        done = start + len(chunk)
        rate = done / (time.perf_counter() - started)
        print(f"  embedded {done:,}/{len(texts):,} ({rate:.0f}/s)", end="\r", flush=True)
    print(
        f"  embedded {len(texts):,} documents in {time.perf_counter() - started:.0f} s "
        f"({embedder.precision})"
    )
    np.save(path, matrix)
    return matrix


class Bm25:
    """An in-memory tantivy index of the collection, searched as the site searches (any word)."""

    def __init__(self, coll: Collection) -> None:
        import tantivy

        from papertide.search.keyword_tantivy import TITLE_BOOST

        self._boost = TITLE_BOOST
        builder = tantivy.SchemaBuilder()
        builder.add_integer_field("id", indexed=True, fast=True)
        builder.add_text_field("title", tokenizer_name="en_stem")
        builder.add_text_field("abstract", tokenizer_name="en_stem")
        self.index = tantivy.Index(builder.build())
        writer = self.index.writer(heap_size=50_000_000, num_threads=1)
        for n, doc in enumerate(coll.docs):
            writer.add_document(tantivy.Document(id=n, title=doc.title, abstract=doc.abstract))
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()
        self.size = len(coll.docs)

    def scores(self, text: str) -> dict[int, float]:
        from papertide.search.query import plain_terms

        words = " ".join(f'"{t}"' for t in (w.replace('"', " ").strip() for w in plain_terms(text)))
        query = self.index.parse_query(
            words, ["title", "abstract"], field_boosts={"title": self._boost}
        )
        searcher = self.index.searcher()
        hits = searcher.search(query, self.size).hits
        ids = searcher.fast_field_values("id", [address for _score, address in hits])
        return {int(i): float(score) for i, (score, _a) in zip(ids, hits, strict=True)}


_FACTS = PaperFacts(text="", categories=frozenset(), authors="", organizations=frozenset())
_PLAIN = Interests(threshold=-1.0, trending_weight=0.0)


def ranker_order(
    positives: np.ndarray, negatives: np.ndarray, pool: np.ndarray, titles: list[str]
) -> list[int]:
    """Pool indices in the order ``rank()`` gives them (every candidate passes)."""
    n, dim = pool.shape
    candidates = Candidates(
        ids=np.arange(n, dtype=np.int64),
        matrix=pool,
        facts=[_FACTS] * n,
        upvotes=np.zeros(n, dtype=np.float32),
        titles=titles,
    )
    profile = Profile(
        positive_ids=[-1 - k for k in range(len(positives))],
        positive_titles=[f"saved {k}" for k in range(len(positives))],
        positives=positives,
        negatives=negatives,
        topics=(),
        topic_matrix=np.zeros((0, dim), dtype=np.float32),
    )
    order = rank(profile, candidates, _PLAIN, set()).paper_ids
    assert len(order) == n, "threshold -1 keeps every candidate"
    return order


def quality(embedder: Embedder, cache: Path) -> None:
    coll = judged.csfcube()
    vectors = collection_vectors(coll, embedder, cache)
    row = {d.doc_id: i for i, d in enumerate(coll.docs)}
    text = {d.doc_id: f"{d.title} {d.abstract}" for d in coll.docs}
    started = time.perf_counter()
    bm25 = Bm25(coll)
    print(f"  BM25 index of {bm25.size:,} papers in {time.perf_counter() - started:.1f} s")
    empty = np.zeros((0, embedder.dim), dtype=np.float32)
    variants = ("1 save (query paper)", "2 saves (+ best judged)", "1 save + 1 dismissal")
    results: dict[str, dict[str, list[float]]] = {v: {} for v in variants}
    differs = {v: 0 for v in variants}
    queries = coll.judged_queries()
    for qid in queries:
        pid, pool_all, grades_all = coll.queries[qid], coll.pools[qid], coll.qrels[qid]
        q = vectors[row[pid]]
        matrix_all = vectors[[row[d] for d in pool_all]]
        cosine_all = matrix_all @ q
        best = max(pool_all, key=lambda d: grades_all[d])  # first of the top grade
        zero = [i for i, d in enumerate(pool_all) if grades_all[d] == 0]
        dismissed = pool_all[max(zero, key=lambda i: cosine_all[i])] if zero else None
        setups = {
            variants[0]: ([pid], None, None),
            variants[1]: ([pid, best], best, None),
            variants[2]: ([pid], dismissed, dismissed),
        }
        for variant, (saved, removed, negative) in setups.items():
            pool = [d for d in pool_all if d != removed]
            grades = {d: g for d, g in grades_all.items() if d != removed}
            matrix = vectors[[row[d] for d in pool]]
            positives = vectors[[row[d] for d in saved]]
            negatives = vectors[[row[negative]]] if negative else empty
            ranked = ranker_order(positives, negatives, matrix, pool)
            cosine = np.argsort(-(matrix @ q), kind="stable").tolist()
            keyword = bm25.scores(" ".join(text[d] for d in saved))
            by_bm25 = sorted(range(len(pool)), key=lambda i: -keyword.get(row[pool[i]], -1.0))
            differs[variant] += ranked != cosine
            for method, order in (("ranker", ranked), ("BM25", by_bm25), ("cosine", cosine)):
                value = ndcg_at([pool[i] for i in order], grades)
                results[variant].setdefault(method, []).append(value)
    sizes = [len(coll.pools[q]) for q in queries]
    print(
        f"\nCSFCube: {len(queries)} facet queries over {len(set(coll.queries.values()))} query "
        f"papers; pools of {min(sizes)}-{max(sizes)} (mean {np.mean(sizes):.0f}); nDCG@10"
    )
    print(
        f"{'variant':<26} {'ranker':>7} {'BM25':>7} {'cosine':>7}   "
        f"{'ranker vs cosine: better/same/worse':<36} {'order differs':>13}"
    )
    for variant in variants:
        r = results[variant]
        pairs = list(zip(r["ranker"], r["cosine"], strict=True))
        better = sum(a > b + 1e-12 for a, b in pairs)
        worse = sum(a < b - 1e-12 for a, b in pairs)
        print(
            f"{variant:<26} {np.mean(r['ranker']):>7.4f} {np.mean(r['BM25']):>7.4f} "
            f"{np.mean(r['cosine']):>7.4f}   {better:>11}/{len(pairs) - better - worse}/{worse:<22}"
            f" {differs[variant]:>7}/{len(pairs)}"
        )


# --- batch speed --------------------------------------------------------------------------------


def topic_matrix(embedder: Embedder) -> np.ndarray:
    return np.vstack([embedder.encode_query(t) for t in TOPICS]).astype(np.float32)


def day_candidates(
    coll: Collection, vectors: np.ndarray, n: int, rng: np.random.Generator
) -> Candidates:
    picked = rng.choice(len(coll.docs), size=min(n, len(coll.docs)), replace=False)
    upvotes = np.floor(rng.lognormal(0.0, 1.5, len(picked))).astype(np.float32)
    facts = []
    for i in picked.tolist():
        doc = coll.docs[i]
        cats = rng.choice(CATEGORIES, size=int(rng.integers(1, 4)), replace=False)
        facts.append(
            PaperFacts(
                text=f"{doc.title}\n{doc.abstract}".lower(),
                categories=frozenset(str(c) for c in cats),
                authors="ada lovelace, grace hopper",
                organizations=frozenset(),
            )
        )
    return Candidates(
        ids=np.arange(1, len(picked) + 1, dtype=np.int64) + 10_000_000,
        matrix=vectors[picked].copy(),
        facts=facts,
        upvotes=upvotes,
        titles=[coll.docs[i].title for i in picked.tolist()],
    )


def synthetic_user(
    vectors: np.ndarray, topics: np.ndarray, candidates: Candidates, rng: np.random.Generator
) -> tuple[Profile, Interests, set[int]]:
    seed = int(rng.integers(len(vectors)))
    neighbourhood = np.argsort(-(vectors @ vectors[seed]))[:60]
    n_pos, n_neg = int(rng.integers(5, 51)), int(rng.integers(0, 11))
    positives = perturbed(vectors[rng.choice(neighbourhood, n_pos)], rng)
    near = rng.choice(neighbourhood, n_neg // 2)
    far = rng.integers(len(vectors), size=n_neg - n_neg // 2)
    negatives = perturbed(vectors[np.concatenate([near, far]).astype(np.int64)], rng)
    chosen = rng.choice(len(TOPICS), size=int(rng.integers(0, 4)), replace=False)
    draw = rng.random(4)
    interests = Interests(
        topics=tuple(TOPICS[i] for i in chosen),
        include=RuleSet(categories=(str(rng.choice(CATEGORIES)),)) if draw[0] < 0.05 else RuleSet(),
        exclude=RuleSet(keywords=(str(rng.choice(EXCLUDE_WORDS)),)) if draw[1] < 0.1 else RuleSet(),
        threshold=0.0 if draw[2] < 0.7 else (0.2 if draw[2] < 0.9 else 0.35),
        trending_weight=0.3 if draw[3] < 0.6 else float(rng.random()),
    )
    positive_ids = rng.integers(1, 1_000_000, size=n_pos).tolist()
    profile = Profile(
        positive_ids=positive_ids,
        positive_titles=[f"paper {p}" for p in positive_ids],
        positives=positives,
        negatives=negatives,
        topics=interests.topics,
        topic_matrix=topics[chosen],
    )
    seen = rng.choice(candidates.ids, size=int(rng.integers(0, 31)), replace=False).tolist()
    return profile, interests, set(positive_ids) | {int(s) for s in seen}


def batch(
    embedder: Embedder, cache: Path, users: int, papers: int, seed: int, threads: list[int]
) -> None:
    coll = judged.csfcube()
    vectors = collection_vectors(coll, embedder, cache)
    topics = topic_matrix(embedder)
    print(
        f"\nbatch: rank() for {users:,} users over {papers:,} new papers, one process "
        "(the same users for each BLAS setting)"
    )
    print(
        f"{'BLAS threads':<13} {'total s':>8} {'users/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'max ms':>7} {'feed length (mean)':>19}"
    )
    for setting in threads:
        rng = np.random.default_rng(seed)
        candidates = day_candidates(coll, vectors, papers, rng)
        times, lengths = [], []
        with blas_threads(setting):
            for _ in range(users):
                profile, interests, exclude = synthetic_user(vectors, topics, candidates, rng)
                started = time.perf_counter()
                ranking = rank(profile, candidates, interests, exclude)
                ranking.page(0, 20)  # what a page or a digest shows, reasons included
                times.append(time.perf_counter() - started)
                lengths.append(len(ranking))
        total = sum(times)
        print(
            f"{blas_label(setting):<13} {total:>8.2f} {users / total:>8,.0f} "
            f"{percentile_ms(times, 50):>7.2f} {percentile_ms(times, 99):>7.2f} "
            f"{max(times) * 1000:>7.2f} {np.mean(lengths):>19.0f}",
            flush=True,
        )


# --- request speed on a 1M-paper catalog --------------------------------------------------------

END = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
YEARS = 3
USER_ID = 1


def _stamp(moment: datetime) -> str:
    """A UTCDateTime as SQLAlchemy writes it on SQLite (naive UTC text)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def build_catalog(
    path: Path, coll: Collection, vectors: np.ndarray, size: int, model: str, seed: int
) -> None:
    from papertide.db.engine import make_engine
    from papertide.db.fulltext import drop_search_triggers
    from papertide.db.migrate import migrate

    for leftover in path.parent.glob(f"{path.name}*"):
        leftover.unlink()
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    with engine.begin() as connection:
        drop_search_triggers(connection)  # the keyword index is not part of the feed
    engine.dispose()
    rng = np.random.default_rng(seed)
    start = END - timedelta(days=365 * YEARS)
    span = (END - start).total_seconds()
    offsets = np.sort(rng.random(size)) * span
    now = _stamp(END)
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA synchronous=OFF")
    raw.execute("PRAGMA cache_size=-200000")
    raw.executemany(
        "INSERT INTO organizations (id, slug, name, created_at) VALUES (?, ?, ?, ?)",
        [(k, f"org-{k}", f"Organization {k}", now) for k in range(1, 21)],
    )
    started = time.perf_counter()
    per_month: dict[str, int] = {}
    chunk = 20_000
    for low in range(0, size, chunk):
        ids = range(low + 1, min(low + chunk, size) + 1)
        papers_rows, category_rows = [], []
        base = [(i - 1) % len(coll.docs) for i in ids]
        matrix = perturbed(vectors[base], rng).astype(np.float16)
        m = len(base)
        upvotes = np.floor(rng.lognormal(0.0, 1.5, m)).astype(int).tolist()
        first = rng.integers(0, len(CATEGORIES), m).tolist()
        n_cats = rng.integers(1, 4, m).tolist()
        org = np.where(rng.random(m) < 0.05, rng.integers(1, 21, m), 0).tolist()
        hidden = (rng.random(m) < 0.001).tolist()
        for n, paper_id in enumerate(ids):
            doc = coll.docs[base[n]]
            published = start + timedelta(seconds=float(offsets[paper_id - 1]))
            month = published.strftime("%y%m")
            per_month[month] = per_month.get(month, 0) + 1
            cats = [CATEGORIES[(first[n] + j) % len(CATEGORIES)] for j in range(n_cats[n])]
            stamp = _stamp(published)
            papers_rows.append(
                (
                    paper_id,
                    f"{month}.{per_month[month]:05d}",
                    f"{doc.title} ({paper_id})",
                    doc.abstract,
                    "Ada Lovelace, Grace Hopper, Alan Turing",
                    3,
                    cats[0],
                    stamp,
                    stamp,
                    1,
                    upvotes[n],
                    "{}",
                    hashlib.md5(str(paper_id).encode()).hexdigest(),
                    now,
                    now,
                    org[n] or None,
                    now if hidden[n] else None,
                )
            )
            category_rows.extend((paper_id, k, c) for k, c in enumerate(cats))
        with raw:
            raw.executemany(
                "INSERT INTO papers (id, arxiv_id, title, abstract, authors_text, author_count,"
                " primary_category, published_at, updated_at, latest_version, upvotes,"
                " field_sources, content_hash, created_at, modified_at, organization_id,"
                " hidden_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                papers_rows,
            )
            raw.executemany(
                "INSERT INTO paper_categories (paper_id, position, category) VALUES (?, ?, ?)",
                category_rows,
            )
            raw.executemany(
                "INSERT INTO paper_embeddings (paper_id, model, vector, created_at)"
                " VALUES (?, ?, ?, ?)",
                [(p, model, v.tobytes(), now) for p, v in zip(ids, matrix, strict=True)],
            )
        print(
            f"  catalog {ids[-1]:,}/{size:,} ({ids[-1] / (time.perf_counter() - started):,.0f}"
            " papers/s)",
            end="\r",
            flush=True,
        )
    # Daily lists: 40 entries a day for the last 90 days, papers of the 10 days before.
    published = start.timestamp() + offsets
    entries = []
    for back in range(90):
        day = (END - timedelta(days=back)).date()
        low = np.searchsorted(published, (END - timedelta(days=back + 10)).timestamp())
        high = np.searchsorted(published, (END - timedelta(days=back)).timestamp())
        for position, i in enumerate(rng.choice(np.arange(low, high), 40, replace=False)):
            entries.append((int(i) + 1, day.isoformat(), position, "hf_daily", now, "published"))
    with raw:
        raw.executemany(
            "INSERT INTO daily_entries (paper_id, day, position, source, created_at, status)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            entries,
        )
    add_user(raw, coll, vectors, published, start, rng)
    raw.execute("ANALYZE")
    raw.close()
    print(f"\n  built {size:,} papers in {time.perf_counter() - started:.0f} s")


def add_user(
    raw: sqlite3.Connection,
    coll: Collection,
    vectors: np.ndarray,
    published: np.ndarray,
    start: datetime,
    rng: np.random.Generator,
) -> None:
    """One user: 60 saves and 60 upvotes (30 shared) around one neighbourhood, 20 dismissals,
    300 seen papers of the window, 2 topics and an exclude rule."""
    now = _stamp(END)
    size = len(published)
    raw.execute(
        "INSERT INTO users (id, username, username_key, email, password_hash, created_at)"
        " VALUES (?, 'bench', 'bench', 'bench@example.org', 'x', ?)",
        (USER_ID, now),
    )
    raw.execute(
        "INSERT INTO folders (id, user_id, slug, name, created_at) VALUES (1, ?, 'saved', "
        "'Saved', ?)",
        (USER_ID, now),
    )
    seed = int(rng.integers(len(coll.docs)))
    near = np.argsort(-(vectors @ vectors[seed]))[:200]
    # Catalog papers whose text (and so vector, up to noise) is of a near document.
    catalog_near = [
        int(b) + 1 + k * len(coll.docs)
        for k in range(size // len(coll.docs))
        for b in near.tolist()
    ]
    liked = rng.choice(catalog_near, 90, replace=False).tolist()
    at = [_stamp(END - timedelta(days=float(rng.random() * 300))) for _ in range(90)]
    raw.executemany(
        "INSERT INTO saved_papers (folder_id, paper_id, user_id, saved_at) VALUES (1, ?, ?, ?)",
        [(p, USER_ID, a) for p, a in zip(liked[:60], at[:60], strict=True)],
    )
    raw.executemany(
        "INSERT INTO votes (user_id, paper_id, created_at) VALUES (?, ?, ?)",
        [(USER_ID, p, a) for p, a in zip(liked[30:], at[30:], strict=True)],
    )
    window = np.searchsorted(published, (END - timedelta(days=7)).timestamp())
    recent = np.arange(window, size) + 1
    dismissed = rng.choice(np.arange(1, size + 1), 20, replace=False).tolist()
    seen = rng.choice(recent, min(300, len(recent) // 2), replace=False).tolist()
    raw.executemany(
        "INSERT INTO paper_marks (user_id, paper_id, kind, via, at) VALUES (?, ?, ?, ?, ?)",
        [(USER_ID, int(p), "dismissed", "web", now) for p in dismissed]
        + [(USER_ID, int(p), "seen", "feed", now) for p in seen],
    )
    raw.execute(
        "INSERT INTO interests (user_id, topics, rules, threshold, trending_weight, window_days,"
        " onboarded_at, updated_at) VALUES (?, ?, ?, 0.0, 0.3, 7, ?, ?)",
        (
            USER_ID,
            json.dumps(["large language models", "information retrieval"]),
            json.dumps({"include": {}, "exclude": {"keywords": ["survey"]}}),
            now,
            now,
        ),
    )
    raw.commit()


def request(
    embedder: Embedder, cache: Path, size: int, requests: int, seed: int, threads: list[int]
) -> None:
    from papertide.db.engine import make_engine
    from papertide.personal.interests import load_interests

    coll = judged.csfcube()
    vectors = collection_vectors(coll, embedder, cache)
    path = cache / f"feed-{size}.db"
    marker = path.with_suffix(".json")
    wanted = {"size": size, "seed": seed, "model": embedder.name, "version": 1}
    if not (path.exists() and marker.exists() and json.loads(marker.read_text()) == wanted):
        build_catalog(path, coll, vectors, size, embedder.name, seed)
        marker.write_text(json.dumps(wanted))
    engine = make_engine(f"sqlite:///{path}")
    feed.CACHE_S = 3600.0  # this process only: every timed request hits the cache
    cache_ = CandidateCache()
    cold = []
    for _ in range(3):
        cache_.clear()
        with engine.connect() as connection:
            started = time.perf_counter()
            candidates = cache_.get(connection, embedder.name, 7, END)
            cold.append(time.perf_counter() - started)
    with engine.connect() as connection:
        page = for_you(connection, USER_ID, embedder, cache_, now=END)  # warm-up: topic vectors
        profile = feed.load_profile(
            connection, USER_ID, embedder, load_interests(connection, USER_ID)
        )
    size_mb = sum(p.stat().st_size for p in path.parent.glob(f"{path.name}*")) / 1e6
    print(
        f"\nrequest: for_you() on {size:,} papers ({size_mb:,.0f} MB SQLite); 7-day window "
        f"{len(candidates.ids):,} candidates; user with {len(profile.positive_ids)} positives, "
        f"{len(profile.negatives)} negatives, {len(profile.topics)} topics; feed {page.total:,}"
    )
    print(
        f"{'step':<30} {'BLAS threads':<13} {'runs':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    )

    def show(name: str, setting: str, values: list[float]) -> None:
        print(
            f"{name:<30} {setting:<13} {len(values):>5} {percentile_ms(values, 50):>8.1f} "
            f"{percentile_ms(values, 99):>8.1f} {max(values) * 1000:>8.1f}",
            flush=True,
        )

    for setting in threads:
        with blas_threads(setting):
            times = []
            for _ in range(requests):
                with engine.connect() as connection:
                    started = time.perf_counter()
                    for_you(connection, USER_ID, embedder, cache_, now=END)
                    times.append(time.perf_counter() - started)
            show("for_you (warm cache)", blas_label(setting), times)
            for name, values in request_steps(engine, embedder, cache_, requests).items():
                show(f"  {name}", blas_label(setting), values)
    show("CandidateCache.get (cold)", "-", cold)


def request_steps(
    engine: Engine, embedder: Embedder, cache: CandidateCache, requests: int
) -> dict[str, list[float]]:
    """for_you()'s steps timed one by one (the same calls, in its order)."""
    from papertide.personal.interests import load_interests
    from papertide.personal.marks import Mark, marked_ids

    parts: dict[str, list[float]] = {}
    for _ in range(requests):
        with engine.connect() as connection:
            clock = time.perf_counter()

            def lap(name: str) -> None:
                nonlocal clock
                now = time.perf_counter()
                parts.setdefault(name, []).append(now - clock)
                clock = now

            interests = load_interests(connection, USER_ID)
            lap("load_interests")
            profile = feed.load_profile(connection, USER_ID, embedder, interests)
            lap("load_profile")
            found = cache.get(connection, embedder.name, interests.window_days, END)
            lap("CandidateCache.get (hit)")
            exclude = (
                marked_ids(connection, USER_ID, Mark.DISMISSED)
                | marked_ids(connection, USER_ID, Mark.SEEN)
                | set(profile.positive_ids)
            )
            lap("marked_ids x2")
            more = []
            if hasattr(feed, "followed_papers"):  # followed folders, where the ranker has them
                more.append(feed.followed_papers(connection, USER_ID))
                lap("followed_papers")
            rank(profile, found, interests, exclude, *more)
            lap("rank")
    return parts


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
    from papertide.search.service import shared_embedder

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
