"""``/api/daily_papers`` pages read from a window of the newest days (``hf_daily.daily_page``),
checked page by page against the order computed here from the entries themselves, on lists
where the window falls short: the same papers listed again and again on the newest days, a
hidden paper and pending entries among them, and the trending order."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from factories import listed, make_record, write_records
from sqlalchemy import Engine, select, update

from papertide import daily
from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.db.schema import daily_entries, papers, trending
from papertide.hf_daily import DailyScope, DailySort, daily_page

LAST = date(2025, 5, 30)
DAYS = 40
AGAIN = [f"2505.9{n:04d}" for n in range(6)]  # on each of the newest 12 days' lists
HIDDEN = "2505.80001"
PENDING_DAY = LAST - timedelta(3)


def _day(n: int) -> date:
    return LAST - timedelta(n)


def _seed(engine: Engine) -> None:
    for n in range(DAYS):
        day = _day(n)
        fresh = [f"25{(n % 9) + 1:02d}.{n * 10 + k + 1:05d}" for k in range(3)]
        again = AGAIN if n < 12 else []
        listed_ids = [*again, *fresh] if n % 2 else [*fresh, *again]
        if n == 5:
            listed_ids.append(HIDDEN)
        records = [
            make_record(arxiv_id, listing=listed(day, position), upvotes=(n * 7 + position) % 11)
            for position, arxiv_id in enumerate(listed_ids)
        ]
        write_records(engine, *records)
    with write_transaction(engine) as connection:
        connection.execute(
            update(papers).where(papers.c.arxiv_id == HIDDEN).values(hidden_at=datetime.now(UTC))
        )
        connection.execute(
            update(daily_entries).where(daily_entries.c.day == PENDING_DAY).values(status="pending")
        )


def _expected(engine: Engine, scope: DailyScope) -> list[tuple[str, date]]:
    """(arXiv id, list day) of every paper in scope, in the endpoint's order, from the rows."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                papers.c.arxiv_id,
                papers.c.upvotes,
                papers.c.hidden_at,
                daily_entries.c.day,
                daily_entries.c.position,
                daily_entries.c.status,
            ).join(papers, papers.c.id == daily_entries.c.paper_id)
        ).all()
        ranks = dict(connection.execute(select(trending.c.paper_id, trending.c.rank)).all())
        ids = dict(connection.execute(select(papers.c.arxiv_id, papers.c.id)).all())
    latest: dict[str, tuple[date, int, int]] = {}
    for row in rows:
        if row.status != "published" or row.hidden_at is not None:
            continue
        if (scope.first and row.day < scope.first) or (scope.last and row.day > scope.last):
            continue
        if row.arxiv_id not in latest or row.day > latest[row.arxiv_id][0]:
            latest[row.arxiv_id] = (row.day, row.position, row.upvotes)

    def key(arxiv_id: str) -> tuple[object, ...]:
        day, position, upvotes = latest[arxiv_id]
        by_date = (-day.toordinal(), position, arxiv_id)
        if scope.sort is DailySort.TRENDING:
            rank = ranks.get(ids[arxiv_id])
            return (rank is None, rank or 0, -upvotes, *by_date)
        return by_date

    return [(arxiv_id, latest[arxiv_id][0]) for arxiv_id in sorted(latest, key=key)]


def _pages(engine: Engine, scope: DailyScope, limit: int) -> list[tuple[str, date]]:
    found: list[tuple[str, date]] = []
    with engine.connect() as connection:
        for p in range(200):
            entries, more = daily_page(connection, scope, "America/New_York", p * limit, limit)
            found += [(e.card.arxiv_id, e.card.listed_on) for e in entries]  # type: ignore[misc]
            assert not more or len(entries) == limit, "more after a short page"
            if not more:
                return found
    raise AssertionError("paging never ended")


@pytest.mark.parametrize("limit", [1, 4, 7, 50])
@pytest.mark.parametrize(
    "scope",
    [
        DailyScope(),
        DailyScope(_day(20), _day(2)),
        DailyScope(_day(20), None),
        DailyScope(None, _day(9)),
        DailyScope(sort=DailySort.TRENDING),
    ],
    ids=["all", "between", "since", "until", "trending"],
)
def test_pages_match_the_order_of_every_entry(
    engine: Engine, settings: Settings, scope: DailyScope, limit: int
) -> None:
    _seed(engine)
    if scope.sort is DailySort.TRENDING:
        now = datetime.combine(LAST, datetime.min.time(), UTC) + timedelta(hours=20)
        assert daily.compute_trending(engine, settings, now) > 0
    expected = _expected(engine, scope)
    assert len(expected) > 2 * limit or limit == 50
    assert HIDDEN not in {arxiv_id for arxiv_id, _ in expected}
    assert _pages(engine, scope, limit) == expected


def test_a_page_past_the_end_is_empty(engine: Engine) -> None:
    _seed(engine)
    with engine.connect() as connection:
        entries, more = daily_page(connection, DailyScope(), "America/New_York", 10_000, 10)
    assert (entries, more) == ([], False)
