"""Fusing rankings: reciprocal rank fusion, and the pins that come before it.

Reciprocal rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009): a paper's fused score is
``sum(weight / (K + rank))`` over the rankings it appears in (rank 1 = best), with K = 60. It
needs no score calibration between BM25 and cosine similarity, rewards papers that both
methods find, and lets a strong hit of either method through. The weights were set on the
*dev* splits of the judged collections (never their test splits) by ``bench/relevance.py``.

Pins come first, in this order: the paper whose arXiv id the query is; papers whose title is the
query (case- and space-insensitive); papers whose title contains the query as a fragment with at
most a typo or two (:func:`title_fragment_score` >= :data:`FRAGMENT_PIN`, every query word
present, for queries of 3+ words), best match first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rapidfuzz import fuzz

RRF_K = 60
KEYWORD_WEIGHT = 1.0
VECTOR_WEIGHT = 1.0
TITLE_WEIGHT = 1.0
FRAGMENT_PIN = 90.0
FRAGMENT_MIN_WORDS = 3
WORD_MATCH = 80.0  # rapidfuzz ratio for "the same word, but for a typo"


def rrf(rankings: Sequence[tuple[Sequence[int], float]], k: int = RRF_K) -> list[int]:
    """Ids by fused score, best first; ``rankings`` are (ids best first, weight)."""
    scores: dict[int, float] = {}
    for ids, weight in rankings:
        for rank, paper_id in enumerate(ids, start=1):
            scores[paper_id] = scores.get(paper_id, 0.0) + weight / (k + rank)
    return sorted(scores, key=lambda paper_id: -scores[paper_id])


def normalise_title(title: str) -> str:
    return " ".join(title.lower().split())


def title_fragment_score(query: str, title: str) -> float:
    """0-100: how well ``query`` matches a stretch of ``title`` (edits count against it)."""
    return float(fuzz.partial_ratio(normalise_title(query), normalise_title(title)))


def words_covered(query: str, title: str) -> float:
    """The share of the query's words (3+ letters) found in the title, a typo allowed each."""
    wanted = [w for w in normalise_title(query).split() if len(w) >= 3]
    have = normalise_title(title).split()
    if not wanted:
        return 0.0
    found = sum(1 for w in wanted if any(fuzz.ratio(w, h) >= WORD_MATCH for h in have))
    return found / len(wanted)


def fragment_pins(query: str, titles: Mapping[int, str], order: Sequence[int]) -> list[int]:
    """Ids among ``order`` whose title holds ``query`` as a fragment, best first: the query
    aligns with a stretch of the title (:func:`title_fragment_score` >= FRAGMENT_PIN) and every
    query word is in the title (so "meat and multiple myeloma" does not pin titles about
    multiple myeloma alone)."""
    if len(query.split()) < FRAGMENT_MIN_WORDS:
        return []
    scored = [
        (title_fragment_score(query, titles[i]), n, i)
        for n, i in enumerate(order)
        if words_covered(query, titles[i]) == 1.0
    ]
    return [
        i for score, _n, i in sorted(scored, key=lambda t: (-t[0], t[1])) if score >= FRAGMENT_PIN
    ]


def pin_first(pinned: Sequence[int], ranked: Sequence[int]) -> list[int]:
    """``pinned`` then the rest of ``ranked``, each id once."""
    return list(dict.fromkeys([*pinned, *ranked]))
