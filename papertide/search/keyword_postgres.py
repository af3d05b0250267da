"""The PostgreSQL engine's keyword search: the generated ``tsvector`` column and its GIN index.

The query's words become ``plainto_tsquery`` parts joined by OR (ranked by ``ts_rank_cd``, so
papers with more of the words come first) for relevance, or by AND for the date and upvote
sorts; phrases become ``phraseto_tsquery`` (required), exclusions ``!!``. Filters are SQL
conditions (:meth:`SearchFilters.sql`). Totals are counted up to :data:`COUNT_CAP`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, literal_column, select
from sqlalchemy.sql.elements import ColumnElement

from papertide.db.schema import papers
from papertide.search.filters import SearchFilters, Sort
from papertide.search.keyword_tantivy import KeywordHits
from papertide.search.query import SearchQuery

COUNT_CAP = 10_000
_VECTOR: ColumnElement[Any] = literal_column("papers.search_vector")


def _tsquery(query: SearchQuery, conjunctive: bool) -> ColumnElement[Any] | None:
    # tsquery_and / tsquery_or / tsquery_not are the functions behind && || !!.
    result: ColumnElement[Any] | None = None
    for term in query.terms:
        part = func.plainto_tsquery("english", term)
        if result is None:
            result = part
        else:
            result = (func.tsquery_and if conjunctive else func.tsquery_or)(result, part)
    for phrase in query.phrases:
        part = func.phraseto_tsquery("english", phrase)
        result = part if result is None else func.tsquery_and(result, part)
    if result is None:
        return None
    for word in query.excluded:
        result = func.tsquery_and(result, func.tsquery_not(func.plainto_tsquery("english", word)))
    return result


def search_postgres(
    connection: Connection,
    query: SearchQuery,
    filters: SearchFilters,
    *,
    sort: Sort = Sort.RELEVANCE,
    limit: int = 100,
    offset: int = 0,
) -> KeywordHits:
    conjunctive = sort is not Sort.RELEVANCE
    tsquery = _tsquery(query, conjunctive)
    condition = filters.sql()
    score: ColumnElement[Any]
    if tsquery is not None:
        condition = condition & _VECTOR.op("@@")(tsquery)
        score = func.ts_rank_cd(_VECTOR, tsquery)
    else:
        score = literal_column("0.0")
    order: list[Any]
    if sort is Sort.DATE or tsquery is None:
        order = [papers.c.published_at.desc().nulls_last(), papers.c.id.desc()]
    elif sort is Sort.UPVOTES:
        order = [papers.c.upvotes.desc(), papers.c.id.desc()]
    else:
        order = [score.desc(), papers.c.id.desc()]
    rows = connection.execute(
        select(papers.c.id, score.label("score"))
        .where(condition)
        .order_by(*order)
        .limit(limit)
        .offset(offset)
    ).all()
    total = connection.execute(
        select(func.count()).select_from(
            select(papers.c.id).where(condition).limit(COUNT_CAP).subquery()
        )
    ).scalar_one()
    return KeywordHits([r.id for r in rows], [float(r.score) for r in rows], int(total))
