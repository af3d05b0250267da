"""The personal feed's speed, for ``bench/personal.py``: ``rank()`` for a batch of synthetic
users over one day's papers, and ``for_you()`` requests (whole and step by step) on the 1M-paper
catalog, each under the BLAS thread settings asked for."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import judged
import numpy as np
from judged import Collection
from personal_catalog import CATEGORIES, END, USER_ID, build_catalog
from personal_vectors import collection_vectors, perturbed
from sqlalchemy import Engine

from papertide.personal import feed
from papertide.personal.feed import CandidateCache, Candidates, Profile, for_you, rank
from papertide.personal.interests import Interests, PaperFacts, RuleSet
from papertide.search.embedder import Embedder

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
EXCLUDE_WORDS = ("survey", "benchmark", "dataset", "medical", "speech")


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
