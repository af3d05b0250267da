"""Keyword relevance bounded by the page (:mod:`papertide.search.keyword_postgres`): papers
with every word first, then papers with some; each tier ranking the newest candidates and the
title matches, by either plan; and queries as long as the parser allows, on both engines."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from factories import make_record, write_records
from sqlalchemy import Engine

from papertide.catalog.records import Version
from papertide.config import Settings
from papertide.search import keyword_postgres
from papertide.search.query import MAX_QUERY_LENGTH
from papertide.search.service import Mode, SearchRequest, SearchService

START = datetime(2024, 1, 1, tzinfo=UTC)
OLD_TITLE = "2401.00001"  # both words in the title, the oldest paper
BOTH = [f"2402.{n:05d}" for n in range(1, 13)]  # both words in the abstract, newer
ONE = [f"2403.{n:05d}" for n in range(1, 7)]  # "sparse" only, many times, newest


def _paper(arxiv_id: str, n: int, title: str, abstract: str) -> object:
    return make_record(
        arxiv_id, title=title, abstract=abstract, versions=[Version(1, START + timedelta(n))]
    )


@pytest.fixture
def service(engine: Engine, settings: Settings) -> Iterator[SearchService]:
    records = [_paper(OLD_TITLE, 0, "Sparse retrieval for tables", "We index cells.")]
    records += [
        _paper(a, n, f"Study {n}", f"A study of sparse data and of retrieval, part {n}.")
        for n, a in enumerate(BOTH, start=1)
    ]
    records += [
        _paper(a, 20 + n, f"Sparse sparse {n}", "Sparse sparse sparse matrices, sparse again.")
        for n, a in enumerate(ONE, start=1)
    ]
    write_records(engine, *records)  # type: ignore[arg-type]
    service = SearchService(engine, settings.replace(embed_in_background=False))
    yield service
    service.stop()


def _found(service: SearchService, engine: Engine, text: str) -> list[str]:
    ids = service.search(SearchRequest(text, mode=Mode.KEYWORD, page_size=100)).ids
    with engine.connect() as connection:
        names = dict(connection.exec_driver_sql("SELECT id, arxiv_id FROM papers").all())
    return [names[i] for i in ids]


def test_every_word_first_then_some(
    service: SearchService, engine: Engine, engine_name: str
) -> None:
    if engine_name != "postgresql":
        pytest.skip("the tiers are PostgreSQL's; tantivy ranks by BM25 alone")
    found = _found(service, engine, "sparse retrieval")
    assert set(found[:13]) == {OLD_TITLE, *BOTH}
    assert set(found[13:]) == set(ONE)
    assert found[0] == OLD_TITLE  # title words weigh most


@pytest.mark.parametrize("ratio", [0.0, 1e12], ids=["backward", "bitmap"])
def test_bounded_candidates_keep_the_title_match_and_the_newest(
    service: SearchService,
    engine: Engine,
    engine_name: str,
    monkeypatch: pytest.MonkeyPatch,
    ratio: float,
) -> None:
    if engine_name != "postgresql":
        pytest.skip("the candidate bound is PostgreSQL's")
    monkeypatch.setattr(keyword_postgres, "CANDIDATES", 4)
    monkeypatch.setattr(keyword_postgres, "SCAN_COST_RATIO", ratio)
    found = _found(service, engine, "sparse retrieval")
    # Tier one: the title match (older than the 4 newest) and the 4 newest of BOTH; tier two
    # adds the newest "any word" candidates that are not already in: here ONE's 4 newest.
    assert set(found[:5]) == {OLD_TITLE, *BOTH[-4:]}
    assert found[0] == OLD_TITLE
    assert set(found[5:]) == set(ONE[-4:])


def test_a_query_as_long_as_allowed_works(service: SearchService, engine: Engine) -> None:
    words = ["sparse", "retrieval"] + [f"w{n}" for n in range(200)]
    text = " ".join(words)[:MAX_QUERY_LENGTH]
    assert len(text.split()) > 120
    found = _found(service, engine, text)
    assert OLD_TITLE in found and set(BOTH) <= set(found)


def test_a_rare_word_outweighs_a_common_one(
    engine: Engine, engine_name: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine_name != "postgresql":
        pytest.skip("the document frequencies from pg_stats are PostgreSQL's; tantivy has BM25")
    # "common" is in every paper but one (in the title of COMMON_TITLE), "rare" in one
    # abstract: ts_rank_cd alone puts the title match first (title weight 1, abstract 0.4).
    records = [_paper("2401.00001", 0, "Common ground", "Nothing else here.")]
    records.append(_paper("2401.00002", 1, "Another paper", "A rare finding, reported once."))
    records += [
        _paper(f"2402.{n:05d}", n, f"Paper {n}", "The common case, as usual.") for n in range(1, 31)
    ]
    write_records(engine, *records)  # type: ignore[arg-type]
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE papers")  # the frequencies come from pg_stats
    monkeypatch.setattr(keyword_postgres, "_corpora", {})
    service = SearchService(engine, settings.replace(embed_in_background=False))
    try:
        found = _found(service, engine, "common rare")
    finally:
        service.stop()
    assert found[0] == "2401.00002"
    assert found[1] == "2401.00001"  # the title match leads the common word's papers
