"""The PostgreSQL engine's keyword search: the generated ``tsvector`` column and its GIN index.

The query's words become ``plainto_tsquery`` parts; phrases become ``phraseto_tsquery``
(required), exclusions ``!!``. Filters are SQL conditions (:meth:`SearchFilters.sql`).

The date and upvote sorts take the papers with every word, in that order, and count them up to
:data:`COUNT_CAP`. Relevance ranks in two tiers: the papers with every word, then, when those do
not fill the page, the papers with any of them. Within a tier the score is BM25's
(:func:`_score`): over the query's words and phrases, idf times a saturated term frequency,
normalised by the paper's length. The term frequency is ``ts_rank_cd`` of the word alone, which
sums its occurrences by weight (title 1, abstract 0.4, authors 0.2); the document frequencies
come from the planner's statistics of the column (``pg_stats.most_common_elems``: a word not
listed is rarer than any listed one and counts as half the least frequent), read once per
:data:`STATS_SECONDS`. On the judged collections of ``bench/relevance.py`` this more than
doubled nDCG@10 of ``ts_rank_cd`` of the whole query on long queries, which rewards no word for
being rare.

Relevance is bounded by the page, not by the catalog. The score reads each candidate's
``tsvector``, and a broad query matches most of a million papers: ranking every match took
seconds there (p50 1.4 s, p99 15.5 s). So each tier ranks a candidate set of at most
``2 * CANDIDATES`` papers: the most recently added papers with the words in the title (the
title index of migration 0010; titles with every word are few, so this reaches back years),
and the most recently added with the words anywhere, up to :data:`CANDIDATES` each. The
newest matches are found quickly by reading the primary key backwards when matches are dense,
by the GIN index when they are few; PostgreSQL's planner underrates what testing a row's
``tsvector`` costs, so :func:`_newest` chooses from the planner's row estimate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, func, literal, literal_column, select, text, union
from sqlalchemy.sql.elements import ColumnElement

from papertide.db.schema import papers
from papertide.search.filters import SearchFilters, Sort
from papertide.search.keyword_tantivy import KeywordHits
from papertide.search.query import SearchQuery

COUNT_CAP = 10_000
CANDIDATES = 2_000  # the newest matches one relevance tier ranks (and as many title matches)
# What each match costs, measured at 1M papers: reading the primary key backwards tests the
# tsvector of every row it passes (~3.3 us each; at match density d it passes n / d rows to find
# n), the GIN bitmap fetches every matching row from the heap (1.8 to 3.2 us each). So the
# bitmap is the cheaper while matches**2 < SCAN_COST_RATIO * CANDIDATES * papers.
SCAN_COST_RATIO = 1.0
# BM25's term-frequency saturation and length normalisation, tuned on the judged collections
# (k1 0.9 to 1.2 and b 0.3 to 0.75 were within 0.01 nDCG@10 of each other; these were best).
K1 = 0.9
B = 0.4
# The words (and phrases) a score reads, the rarest first: each costs a ts_rank_cd per
# candidate, and a pasted abstract has 100+. On the judged collections, 32 against all: nDCG@10
# CACM 0.474 / 0.462, NFCorpus 0.366 / 0.365, CSFCube (whole abstracts as queries) 0.411 /
# 0.447, at 555 against 945 ms a CSFCube query; 24 lost 0.02 to 0.04 more.
MAX_SCORED = 32
STATS_SECONDS = 600.0  # how long the document frequencies and mean length read are reused
_VECTOR: ColumnElement[Any] = literal_column("papers.search_vector")
EMPTY_VECTOR: ColumnElement[Any] = literal_column("''::tsvector")
# The expression of migration 0010's index, which the planner matches only when equal.
TITLE_VECTOR: ColumnElement[Any] = literal_column(
    "to_tsvector('english'::regconfig, coalesce(papers.title, ''::text))"
)


def _tsquery(query: SearchQuery, conjunctive: bool) -> ColumnElement[Any] | None:
    # tsquery_and / tsquery_or / tsquery_not are the functions behind && || !!.
    terms: list[ColumnElement[Any]] = [func.plainto_tsquery("english", t) for t in query.terms]
    words = _balanced(func.tsquery_and if conjunctive else func.tsquery_or, terms)
    phrases = [func.phraseto_tsquery("english", phrase) for phrase in query.phrases]
    excluded = [func.tsquery_not(func.plainto_tsquery("english", word)) for word in query.excluded]
    required = [part for part in (words, *phrases) if part is not None]
    if not required:
        return None
    return _balanced(func.tsquery_and, [*required, *excluded])


def _balanced(
    combine: Callable[[ColumnElement[Any], ColumnElement[Any]], ColumnElement[Any]],
    parts: list[ColumnElement[Any]],
) -> ColumnElement[Any] | None:
    """``parts`` combined pairwise into a tree of depth log2(n): a chain as deep as a long
    query's words overflows Python's recursion limit when SQLAlchemy compiles it (~90 words)."""
    if not parts:
        return None
    while len(parts) > 1:
        pairs = [combine(a, b) for a, b in zip(parts[::2], parts[1::2], strict=False)]
        parts = pairs + ([parts[-1]] if len(parts) % 2 else [])
    return parts[0]


def search_postgres(
    connection: Connection,
    query: SearchQuery,
    filters: SearchFilters,
    *,
    sort: Sort = Sort.RELEVANCE,
    limit: int = 100,
    offset: int = 0,
) -> KeywordHits:
    """One page of results. ``total`` counts (up to :data:`COUNT_CAP`) for the date and upvote
    sorts; relevance, like tantivy's, does not count: there it is ``offset`` + the page."""
    condition = filters.sql()
    every_word = _tsquery(query, conjunctive=True)
    if every_word is None:
        order = [papers.c.published_at.desc().nulls_last(), papers.c.id.desc()]
        return _sorted(connection, condition, order, limit, offset)
    if sort is not Sort.RELEVANCE:
        order = [papers.c.published_at.desc().nulls_last(), papers.c.id.desc()]
        if sort is Sort.UPVOTES:
            order = [papers.c.upvotes.desc(), papers.c.id.desc()]
        return _sorted(connection, condition & _VECTOR.op("@@")(every_word), order, limit, offset)
    wanted = offset + limit
    score = _score(connection, query)
    ranked = _ranked(connection, every_word, score, condition, wanted)
    any_word = _tsquery(query, conjunctive=False)
    if len(ranked) < wanted and len(query.terms) > 1 and any_word is not None:
        seen = {paper_id for paper_id, _ in ranked}
        more = _ranked(connection, any_word, score, condition, wanted + len(ranked))
        ranked += [hit for hit in more if hit[0] not in seen][: wanted - len(ranked)]
    page = ranked[offset:wanted]
    return KeywordHits([i for i, _ in page], [s for _, s in page], offset + len(page))


@dataclass(frozen=True)
class _Corpus:
    """What BM25 needs of the whole catalog, from the planner's statistics."""

    read_at: float
    frequency: dict[str, float]  # a lexeme's share of the papers, for the most common ones
    unlisted: float  # the share assumed for a lexeme not listed
    papers: float
    mean_length: float  # lexemes per paper


_corpora: dict[str, _Corpus] = {}


def _corpus(connection: Connection) -> _Corpus:
    key = str(connection.engine.url)
    known = _corpora.get(key)
    if known is not None and time.monotonic() - known.read_at < STATS_SECONDS:
        return known
    row = connection.exec_driver_sql(
        "SELECT most_common_elems::text::text[], most_common_elem_freqs FROM pg_stats"
        " WHERE tablename = 'papers' AND attname = 'search_vector'"
        " AND schemaname = current_schema()"
    ).first()
    papers_read = _papers_estimate(connection)
    # The newest thousand papers by the primary key: a sample that costs the same at any size.
    mean_length = connection.exec_driver_sql(
        "SELECT avg(length(search_vector)) FROM"
        " (SELECT search_vector FROM papers ORDER BY id DESC LIMIT 1000) AS newest"
    ).scalar_one()
    lexemes, shares = (row[0] or [], row[1] or []) if row is not None else ([], [])
    # most_common_elem_freqs lists each lexeme's share, then the least and greatest of them.
    least = shares[len(lexemes)] if len(shares) > len(lexemes) else 0.01
    corpus = _Corpus(
        time.monotonic(),
        dict(zip(lexemes, shares, strict=False)),
        least / 2,
        float(papers_read),
        max(float(mean_length or 1.0), 1.0),
    )
    if row is not None:  # not analyzed yet: read again next time
        _corpora[key] = corpus
    return corpus


def _score(connection: Connection, query: SearchQuery) -> ColumnElement[Any]:
    """BM25 of the query's words and phrases as an expression of the paper's ``tsvector``."""
    corpus = _corpus(connection)
    units = {t: func.plainto_tsquery("english", t) for t in query.terms}
    units.update({p: func.phraseto_tsquery("english", p) for p in query.phrases})
    lexemes: dict[str, list[str]] = dict(
        connection.execute(
            text(
                "SELECT t, tsvector_to_array(to_tsvector('english', t))"
                " FROM unnest(CAST(:texts AS text[])) AS t"
            ),
            {"texts": list(units)},
        ).all()
    )
    length = func.length(_VECTOR) * (K1 * B / corpus.mean_length) + K1 * (1 - B)
    weighted: list[tuple[float, ColumnElement[Any]]] = []
    for unit, tsquery in units.items():
        if not lexemes.get(unit):  # stop words only
            continue
        share = min(corpus.frequency.get(lexeme, corpus.unlisted) for lexeme in lexemes[unit])
        having = share * corpus.papers
        weighted.append((math.log(1 + (corpus.papers - having + 0.5) / (having + 0.5)), tsquery))
    weighted.sort(key=lambda pair: -pair[0])
    parts: list[ColumnElement[Any]] = []
    for idf, unit_query in weighted[:MAX_SCORED]:  # a long query: its rarest words
        frequency = func.ts_rank_cd(_VECTOR, unit_query)
        parts.append(literal(idf * (K1 + 1)) * frequency / (frequency + length))
    total = _balanced(lambda a, b: a + b, parts)
    return total if total is not None else literal(0.0)


def _ranked(
    connection: Connection,
    tsquery: ColumnElement[Any],
    score: ColumnElement[Any],
    condition: Any,
    limit: int,
) -> list[tuple[int, float]]:
    """(id, ``score``) of the best ``limit`` candidates matching ``tsquery``: the newest
    :data:`CANDIDATES` papers with it in the title, and as many with it anywhere."""
    in_title = _newest(connection, condition & TITLE_VECTOR.op("@@")(tsquery))
    anywhere = _newest(connection, condition & _VECTOR.op("@@")(tsquery))
    candidates = union(in_title, anywhere).subquery("candidates")
    stored = papers.alias("stored")
    # Each candidate's tsvector is read once. The score reads it once per word, and most are
    # kept out of line in TOAST (62% of the newest at 1M papers), which PostgreSQL fetches
    # again for each read: ``|| ''`` makes one plain copy, and OFFSET 0 keeps the planner
    # from merging the subquery back. Warm, 100 queries at 1M: p50 74 -> 53 ms, p90 138 -> 103.
    detoasted = (
        select(
            stored.c.id,
            literal_column(f"{stored.name}.search_vector")
            .op("||")(EMPTY_VECTOR)
            .label("search_vector"),
        )
        .select_from(candidates.join(stored, stored.c.id == candidates.c.id))
        .offset(0)
        .subquery("papers")  # the name the score's expressions read
    )
    rows = connection.execute(
        select(detoasted.c.id, score.label("score"))
        .where(_VECTOR.op("@@")(tsquery))
        .order_by(score.desc(), detoasted.c.id.desc())
        .limit(limit)
    ).all()
    return [(r.id, float(r.score)) for r in rows]


def _newest(connection: Connection, condition: Any) -> Select[tuple[int]]:
    """The ids of the :data:`CANDIDATES` newest papers meeting ``condition``, in the order
    whose plan is cheaper for the number of matches the planner expects."""
    statement = select(papers.c.id).where(condition)
    matches = _estimated_rows(connection, statement)
    size = _corpus(connection).papers  # read with the statistics, not once per tier and plan
    by_bitmap = matches * matches < SCAN_COST_RATIO * CANDIDATES * size
    newest = (papers.c.id + 0).desc() if by_bitmap else papers.c.id.desc()
    return statement.order_by(newest).limit(CANDIDATES)


def _papers_estimate(connection: Connection) -> float:
    """The planner's count of papers (``reltuples``, at least 1): no scan."""
    return float(
        connection.exec_driver_sql(
            "SELECT greatest(reltuples, 1) FROM pg_class WHERE oid = 'papers'::regclass"
        ).scalar_one()
    )


def _estimated_rows(connection: Connection, statement: Select[Any]) -> float:
    compiled = statement.compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )
    plan = connection.exec_driver_sql(
        f"EXPLAIN (FORMAT JSON) {compiled}", compiled.params
    ).scalar_one()
    return float(plan[0]["Plan"]["Plan Rows"])


def _sorted(
    connection: Connection, condition: Any, order: list[Any], limit: int, offset: int
) -> KeywordHits:
    rows = connection.execute(
        select(papers.c.id).where(condition).order_by(*order).limit(limit).offset(offset)
    ).all()
    return KeywordHits([r.id for r in rows], [0.0] * len(rows), _count(connection, condition))


def _count(connection: Connection, condition: Any) -> int:
    capped = select(papers.c.id).where(condition).limit(COUNT_CAP).subquery()
    return int(connection.execute(select(func.count()).select_from(capped)).scalar_one())
