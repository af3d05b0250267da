"""Ranking quality of the personal feed on CSFCube, for ``bench/personal.py``: ``rank()``
against BM25 and plain cosine on each facet query's judged pool (see that module's docstring)."""

from __future__ import annotations

import time
from pathlib import Path

import judged
import numpy as np
from judged import Collection
from metrics import ndcg_at
from personal_vectors import collection_vectors

from papertide.personal.feed import Candidates, Profile, rank
from papertide.personal.interests import Interests, PaperFacts
from papertide.search.embedder import Embedder


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
