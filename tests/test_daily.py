"""Daily, weekly and monthly lists, the paper page and trending, on both engines."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import pytest
from factories import make_record, rows, write_records
from sqlalchemy import Engine, event

from papertide import daily
from papertide.cards import excerpt
from papertide.catalog.records import Author, Listing, OrganizationRef, PaperRecord, Version
from papertide.config import Settings
from papertide.errors import InvalidInput, NotFound

MAY_1 = date(2025, 5, 1)


def paper(arxiv_id: str, day: date, position: int | None, upvotes: int, **kw: Any) -> PaperRecord:
    return make_record(arxiv_id, upvotes=upvotes, listing=Listing(day, position), **kw)


def ids(cards: list[daily.PaperCard]) -> list[str]:
    return [card.arxiv_id for card in cards]


@contextmanager
def count_queries(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


# --- days ------------------------------------------------------------------------------------


def test_day_list_orders_by_upvotes_then_list_position(engine: Engine) -> None:
    write_records(
        engine,
        paper("2505.00001", MAY_1, 2, 5),
        paper("2505.00002", MAY_1, 3, 10),
        paper("2505.00003", MAY_1, 0, 5),
        paper("2505.00004", MAY_1, None, 5),
        paper("2505.00005", date(2025, 5, 2), 0, 99),
    )
    with engine.connect() as connection:
        cards = daily.day_list(connection, MAY_1)
    assert ids(cards) == ["2505.00002", "2505.00003", "2505.00001", "2505.00004"]
    assert [c.upvotes for c in cards] == [10, 5, 5, 5]
    assert [c.position for c in cards] == [3, 0, 2, None]
    assert {c.listed_on for c in cards} == {MAY_1}


def test_card_carries_authors_organization_links_and_excerpt(engine: Engine) -> None:
    authors = [Author(f"Author {i}", "MIT" if i == 0 else None) for i in range(5)]
    write_records(
        engine,
        paper(
            "2505.00001",
            MAY_1,
            0,
            7,
            title="Sparse attention",
            abstract="word " * 200,
            authors=authors,
            organization=OrganizationRef("acme", "Acme Labs"),
            code_url="https://github.com/acme/sparse",
            project_url="https://acme.github.io/sparse",
        ),
    )
    with engine.connect() as connection:
        (card,) = daily.day_list(connection, MAY_1)
    assert card.title == "Sparse attention"
    assert card.author_count == 5
    assert card.authors == ("Author 0", "Author 1", "Author 2")
    assert (card.organization_name, card.organization_slug) == ("Acme Labs", "acme")
    assert card.code_url == "https://github.com/acme/sparse"
    assert card.project_url == "https://acme.github.io/sparse"
    assert card.published_at == datetime(2025, 5, 1, 17, 0, tzinfo=UTC)
    assert card.excerpt.endswith("…") and len(card.excerpt) <= 301
    assert card.reason is None


def test_previous_and_next_skip_days_without_papers(engine: Engine) -> None:
    days = [date(2025, 5, 1), date(2025, 5, 5), date(2025, 5, 9)]
    write_records(engine, *(paper(f"2505.0000{i}", d, 0, 1) for i, d in enumerate(days, 1)))
    with engine.connect() as connection:
        assert daily.previous_day(connection, date(2025, 5, 5)) == date(2025, 5, 1)
        assert daily.next_day(connection, date(2025, 5, 5)) == date(2025, 5, 9)
        assert daily.next_day(connection, date(2025, 5, 2)) == date(2025, 5, 5)
        assert daily.previous_day(connection, date(2025, 5, 1)) is None
        assert daily.next_day(connection, date(2025, 5, 9)) is None
        assert daily.latest_list_day(connection, date(2025, 5, 8)) == date(2025, 5, 5)
        assert daily.latest_list_day(connection, date(2025, 4, 30)) is None
        empty = daily.day_view(connection, date(2025, 5, 3))
        fallback = daily.day_view(connection, date(2025, 5, 8), fallback=True)
    assert empty.cards == [] and not empty.fell_back
    assert (empty.previous, empty.next) == (date(2025, 5, 1), date(2025, 5, 5))
    assert fallback.fell_back and fallback.day == date(2025, 5, 5)
    assert ids(fallback.cards) == ["2505.00002"]
    assert (fallback.previous, fallback.next) == (date(2025, 5, 1), date(2025, 5, 9))


def test_today_counts_days_in_new_york(settings: Settings) -> None:
    def at(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
        return datetime(year, month, day, hour, minute, tzinfo=UTC)

    # Summer (EDT, UTC-4) and winter (EST, UTC-5) midnights.
    assert daily.today(settings, at(2025, 5, 2, 3, 59)) == date(2025, 5, 1)
    assert daily.today(settings, at(2025, 5, 2, 4, 0)) == date(2025, 5, 2)
    assert daily.today(settings, at(2025, 1, 15, 4, 59)) == date(2025, 1, 14)
    assert daily.today(settings, at(2025, 1, 15, 5, 0)) == date(2025, 1, 15)
    tokyo = settings.replace(timezone="Asia/Tokyo")
    assert daily.today(tokyo, at(2025, 5, 1, 15, 0)) == date(2025, 5, 2)
    with pytest.raises(ValueError, match="naive"):
        daily.today(settings, datetime(2025, 5, 1))


# --- weeks and months ------------------------------------------------------------------------


def test_iso_week_one_spans_two_calendar_years(engine: Engine) -> None:
    assert daily.week_bounds(2025, 1) == (date(2024, 12, 30), date(2025, 1, 5))
    assert daily.week_bounds(2020, 53) == (date(2020, 12, 28), date(2021, 1, 3))
    with pytest.raises(InvalidInput, match="2021-W53"):
        daily.week_bounds(2021, 53)
    with pytest.raises(InvalidInput):
        daily.week_bounds(2025, 0)
    days = [date(2024, 12, 29), date(2024, 12, 30), date(2025, 1, 5), date(2025, 1, 6)]
    write_records(engine, *(paper(f"2501.0000{i}", d, 0, i) for i, d in enumerate(days, 1)))
    with engine.connect() as connection:
        week = daily.week_list(connection, 2025, 1)
        previous = daily.week_list(connection, 2024, 52)
    assert ids(week.cards) == ["2501.00003", "2501.00002"]
    assert week.total == 2
    assert ids(previous.cards) == ["2501.00001"]


def test_month_bounds_include_first_and_last_day(engine: Engine) -> None:
    assert daily.month_bounds(2024, 2) == (date(2024, 2, 1), date(2024, 2, 29))
    assert daily.month_bounds(2025, 12) == (date(2025, 12, 1), date(2025, 12, 31))
    with pytest.raises(InvalidInput, match="2025-13"):
        daily.month_bounds(2025, 13)
    days = [date(2024, 1, 31), date(2024, 2, 1), date(2024, 2, 29), date(2024, 3, 1)]
    write_records(engine, *(paper(f"2402.0000{i}", d, 0, 1) for i, d in enumerate(days, 1)))
    with engine.connect() as connection:
        february = daily.month_list(connection, 2024, 2)
    # Same upvotes: newest list day first.
    assert ids(february.cards) == ["2402.00003", "2402.00002"]


def test_range_list_shows_each_paper_once_sorted_by_upvotes_day_position(engine: Engine) -> None:
    write_records(
        engine,
        paper("2505.00001", date(2025, 5, 5), 1, 3),
        paper("2505.00002", date(2025, 5, 5), 0, 3),
        paper("2505.00003", date(2025, 5, 6), 4, 3),
        paper("2505.00004", date(2025, 5, 7), 0, 8),
    )
    # The same paper on a second day of the week: shown once, on its latest day.
    write_records(engine, paper("2505.00001", date(2025, 5, 8), 0, 3))
    with engine.connect() as connection:
        week = daily.week_list(connection, 2025, 19)
    assert ids(week.cards) == ["2505.00004", "2505.00001", "2505.00003", "2505.00002"]
    assert week.cards[1].listed_on == date(2025, 5, 8)
    assert week.total == 4


def test_paging_reports_the_total(engine: Engine) -> None:
    write_records(engine, *(paper(f"2505.0000{i}", MAY_1, i, 10 - i) for i in range(1, 6)))
    with engine.connect() as connection:
        pages = [daily.month_list(connection, 2025, 5, page, page_size=2) for page in (1, 2, 3, 4)]
        with pytest.raises(InvalidInput, match="page 0"):
            daily.month_list(connection, 2025, 5, 0, page_size=2)
    assert [ids(p.cards) for p in pages] == [
        ["2505.00001", "2505.00002"],
        ["2505.00003", "2505.00004"],
        ["2505.00005"],
        [],
    ]
    assert {p.total for p in pages} == {5}
    assert daily.page_count(5, 2) == 3 and daily.page_count(0, 2) == 1


# --- the paper page --------------------------------------------------------------------------


def test_paper_page_has_every_field(engine: Engine) -> None:
    record = paper(
        "2505.00001",
        MAY_1,
        0,
        4,
        authors=[Author("Ada Lovelace", "Analytical Engines"), Author("Alan Turing")],
        versions=[
            Version(1, datetime(2025, 4, 30, 17, tzinfo=UTC), "12kb"),
            Version(2, datetime(2025, 5, 6, 9, tzinfo=UTC)),
        ],
        comments="10 pages",
        journal_ref="J. Test 1 (2025)",
        doi="10.1000/test",
        ai_summary="It works.",
        ai_summary_model="summarizer-1",
        organization=OrganizationRef("acme", "Acme Labs"),
    )
    write_records(engine, record)
    # A second listing day. (It repeats the organization: the catalog writer currently drops
    # a paper's organization when a later batch does not name it.)
    again = paper("2505.00001", date(2025, 5, 7), 2, 4, organization=record.organization)
    write_records(engine, again)
    with engine.connect() as connection:
        page = daily.paper_page(connection, "arXiv:2505.00001v2")
    assert page.arxiv_id == "2505.00001"
    assert [(a.name, a.affiliation) for a in page.authors] == [
        ("Ada Lovelace", "Analytical Engines"),
        ("Alan Turing", None),
    ]
    assert page.categories == ("cs.CL", "cs.LG")
    assert [(v.number, v.size) for v in page.versions] == [(1, "12kb"), (2, None)]
    assert page.published_at == datetime(2025, 4, 30, 17, tzinfo=UTC)
    assert page.updated_at == datetime(2025, 5, 6, 9, tzinfo=UTC)
    assert page.days_listed == (date(2025, 5, 7), MAY_1)
    assert (page.comments, page.journal_ref, page.doi) == (
        "10 pages",
        "J. Test 1 (2025)",
        "10.1000/test",
    )
    assert (page.ai_summary, page.ai_summary_model) == ("It works.", "summarizer-1")
    assert (page.organization_name, page.upvotes, page.withdrawn) == ("Acme Labs", 4, False)


def test_paper_page_not_found_names_the_id(engine: Engine) -> None:
    with engine.connect() as connection:
        with pytest.raises(NotFound, match=r"2505\.09999"):
            daily.paper_page(connection, "2505.09999")
        with pytest.raises(NotFound, match="not-an-id"):
            daily.paper_page(connection, "not-an-id")


# --- excerpts ----------------------------------------------------------------------------------


def test_excerpt_cuts_at_a_word_and_never_inside_a_formula() -> None:
    assert excerpt("Short  abstract\nhere.") == "Short abstract here."
    text = "alpha " * 60
    cut = excerpt(text)
    assert cut.endswith("alpha…") and len(cut) <= 301
    formula = "x " * 140 + "$\\sum_{i=1}^{n} a_i < b$ and more text " * 3
    cut = excerpt(formula)
    assert cut.count("$") % 2 == 0
    assert "$\\sum_{i=1}^{n} a_i < b$" in cut


# --- trending --------------------------------------------------------------------------------

# 2025-05-03 12:00 in New York (EDT, UTC-4).
NOW = datetime(2025, 5, 3, 16, 0, tzinfo=UTC)


def test_trending_scores_match_the_formula_by_hand(engine: Engine, settings: Settings) -> None:
    write_records(
        engine,
        paper("2505.00001", date(2025, 5, 3), 0, 4),  # age 12 h: 5 / 14^1.5
        paper("2505.00002", date(2025, 5, 2), 1, 30),  # age 36 h: 31 / 38^1.5
        paper("2505.00003", date(2025, 4, 30), 0, 100),  # age 84 h: 101 / 86^1.5
        paper("2505.00004", date(2025, 4, 26), 0, 500),  # before the 7-day window
    )
    assert daily.compute_trending(engine, settings, now=NOW) == 3
    stored = rows(
        engine,
        "SELECT p.arxiv_id, t.score, t.rank, t.upvotes, t.listed_on, t.reason "
        "FROM trending t JOIN papers p ON p.id = t.paper_id ORDER BY t.rank",
    )
    assert [r[0] for r in stored] == ["2505.00002", "2505.00003", "2505.00001"]
    assert [r[1] for r in stored] == pytest.approx(
        [0.1323385277645694, 0.1266408150412474, 0.0954504435401516]
    )
    assert [r[2] for r in stored] == [1, 2, 3]
    assert [r[5] for r in stored] == [
        "30 upvotes, listed yesterday, #1 on the list",
        "100 upvotes, listed 3 days ago, #1 on the list",
        "4 upvotes, listed today, #1 on the list",
    ]
    with engine.connect() as connection:
        result = daily.trending_list(connection, 1, 2)
    assert result.total == 3
    assert ids(result.cards) == ["2505.00002", "2505.00003"]
    assert result.cards[0].reason == "30 upvotes, listed yesterday, #1 on the list"
    assert result.cards[0].listed_on == date(2025, 5, 2)
    assert result.cards[0].position == 1


def test_trending_ties_are_broken_by_list_position(engine: Engine, settings: Settings) -> None:
    write_records(
        engine,
        paper("2505.00001", date(2025, 5, 3), 2, 6),
        paper("2505.00002", date(2025, 5, 3), 0, 6),
        paper("2505.00003", date(2025, 5, 3), 1, 9),
    )
    daily.compute_trending(engine, settings, now=NOW)
    with engine.connect() as connection:
        cards = daily.trending_list(connection).cards
    assert ids(cards) == ["2505.00003", "2505.00002", "2505.00001"]
    assert [c.reason for c in cards] == [
        "9 upvotes, listed today, #1 on the list",
        "6 upvotes, listed today, #2 on the list",
        "6 upvotes, listed today, #3 on the list",
    ]


def test_trending_uses_the_newest_list_when_data_is_stale(
    engine: Engine, settings: Settings
) -> None:
    write_records(
        engine,
        paper("2505.00001", MAY_1, 0, 9),  # age 24 h at the end of May 1: 10 / 26^1.5
        paper("2504.00002", date(2025, 4, 25), 0, 50),  # 6 days before: inside the window
        paper("2504.00003", date(2025, 4, 24), 0, 50),  # 7 days before: outside
    )
    months_later = datetime(2025, 9, 1, 12, tzinfo=UTC)
    with engine.connect() as connection:
        ref = daily.trending_reference(connection, settings, months_later)
    assert ref is not None and ref.stale
    assert ref.at == datetime(2025, 5, 2, 4, 0, tzinfo=UTC)  # midnight after May 1 in New York
    assert (ref.first_day, ref.day) == (date(2025, 4, 25), MAY_1)
    assert daily.compute_trending(engine, settings, now=months_later) == 2
    stored = rows(
        engine,
        "SELECT p.arxiv_id, t.score, t.reason FROM trending t "
        "JOIN papers p ON p.id = t.paper_id ORDER BY t.rank",
    )
    by_id = {r[0]: r for r in stored}
    assert by_id["2505.00001"][1] == pytest.approx(10 / 26**1.5)
    assert (
        by_id["2505.00001"][2] == "9 upvotes, listed May 1, 2025 (the newest list), #1 on the list"
    )
    assert "(6 days before the newest list)" in by_id["2504.00002"][2]
    # A fresh list inside the window: the reference time is now again.
    with engine.connect() as connection:
        live = daily.trending_reference(connection, settings, datetime(2025, 5, 5, tzinfo=UTC))
    assert live is not None and not live.stale
    assert live.at == datetime(2025, 5, 5, tzinfo=UTC)


def test_compute_trending_replaces_the_table(engine: Engine, settings: Settings) -> None:
    assert daily.compute_trending(engine, settings, now=NOW) == 0
    write_records(engine, paper("2505.00001", date(2025, 5, 3), 0, 1))
    assert daily.compute_trending(engine, settings, now=NOW) == 1
    assert daily.compute_trending(engine, settings, now=NOW) == 1
    assert rows(engine, "SELECT count(*) FROM trending")[0][0] == 1
    with engine.connect() as connection:
        assert daily.trending_list(connection, 2, 1) == daily.CardPage([], 1)


# --- query counts ------------------------------------------------------------------------------


def _many(day: date, count: int, prefix: str) -> list[PaperRecord]:
    return [
        paper(
            f"{prefix}.{i:05d}",
            day,
            i,
            i % 7,
            authors=[Author(f"Author {j}", "Lab") for j in range(5)],
            organization=OrganizationRef(f"org{i % 3}", f"Org {i % 3}"),
        )
        for i in range(count)
    ]


def _measure(engine: Engine, read: Any) -> tuple[Any, int]:
    """Run ``read(connection)`` on a fresh connection; return its result and query count."""
    with engine.connect() as connection, count_queries(engine) as seen:
        result = read(connection)
    return result, len(seen)


def test_lists_issue_the_same_number_of_queries_for_5_or_50_papers(
    engine: Engine, settings: Settings
) -> None:
    small, large = date(2025, 5, 1), date(2025, 5, 2)
    write_records(engine, *_many(small, 5, "2505"), *_many(large, 50, "2506"))
    daily.compute_trending(engine, settings, now=NOW)
    counts: dict[str, list[int]] = {"day": [], "week": [], "trending": []}
    for day, size in ((small, 5), (large, 50)):
        view, n = _measure(engine, lambda c, d=day: daily.day_view(c, d))
        assert len(view.cards) == size and all(len(card.authors) == 3 for card in view.cards)
        counts["day"].append(n)
        result, n = _measure(engine, lambda c, d=day: daily.range_list(c, d, d, 1, 100))
        assert len(result.cards) == size
        counts["week"].append(n)
        result, n = _measure(engine, lambda c, s=size: daily.trending_list(c, 1, s))
        assert len(result.cards) == size
        counts["trending"].append(n)
    # Cards, their authors, and one more (the neighbours of a day; a total for paged lists),
    # plus SQLite's BEGIN.
    for name, (few, many) in counts.items():
        assert few == many <= 4, name
