"""Ranking metrics shared by the benchmarks (``bench/relevance.py``, ``bench/personal.py``):
nDCG@k and recall@k of one ranking against graded judgments, and their means over a judged
collection's queries."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from judged import Collection


def ndcg_at(ranked: Sequence[str], grades: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k of one ranking: DCG = sum over the top k of grade / log2(rank + 1) (rank 1 =
    best; unjudged documents gain 0), divided by the DCG of the ideal ranking, which is all the
    query's judged grades sorted best first. 0 when nothing is relevant."""
    dcg = sum(grades.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranked: Sequence[str], grades: Mapping[str, int], k: int = 100) -> float:
    """Share of the relevant (grade > 0) documents found in the top k; 0 when none exist."""
    relevant = {d for d, g in grades.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def evaluate(
    rankings: Mapping[str, Sequence[str]], collection: Collection
) -> tuple[float, float, int]:
    """(mean nDCG@10, mean recall@100, queries) over the queries with a relevant judgment."""
    queries = collection.judged_queries()
    if not queries:
        return 0.0, 0.0, 0
    ndcg = sum(ndcg_at(rankings.get(q, []), collection.qrels[q]) for q in queries)
    recall = sum(recall_at(rankings.get(q, []), collection.qrels[q]) for q in queries)
    return ndcg / len(queries), recall / len(queries), len(queries)
