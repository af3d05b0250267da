"""What narrows a search: dates, categories, organization, code, daily lists, authors.

The same :class:`SearchFilters` is applied twice over: as SQL conditions (PostgreSQL keyword
search, and the vector candidates on both engines) and as tantivy queries
(:mod:`papertide.search.keyword_tantivy`). A paper passes when it meets every given filter;
several categories mean any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, exists, func, select

from papertide.cards import EntryStatus
from papertide.db.schema import daily_entries, organizations, paper_categories, papers
from papertide.errors import InvalidInput


class Sort(StrEnum):
    """How results are ordered."""

    RELEVANCE = "relevance"  # hybrid (fused keyword and vector ranks)
    DATE = "date"  # newest first, among papers matching every word
    UPVOTES = "upvotes"  # most upvoted first, among papers matching every word

    @classmethod
    def parse(cls, value: str) -> Sort:
        try:
            return cls(value or "relevance")
        except ValueError:
            choices = ", ".join(s.value for s in cls)
            raise InvalidInput(f"sort {value!r} is not one of {choices}") from None


@dataclass(frozen=True)
class SearchFilters:
    """Hard filters; empty means none."""

    date_from: date | None = None
    date_to: date | None = None
    categories: tuple[str, ...] = ()
    organization: str | None = None  # organization slug
    has_code: bool = False
    on_list: bool = False  # on a published daily list
    authors: tuple[str, ...] = field(default=())  # author:name from the query

    def __post_init__(self) -> None:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise InvalidInput(
                f"date range {self.date_from.isoformat()} to {self.date_to.isoformat()} is "
                "empty: the start is after the end"
            )

    @property
    def active(self) -> bool:
        return bool(
            self.date_from
            or self.date_to
            or self.categories
            or self.organization
            or self.has_code
            or self.on_list
            or self.authors
        )

    def with_query(self, categories: tuple[str, ...], authors: tuple[str, ...]) -> SearchFilters:
        """These filters plus the ``cat:`` and ``author:`` parts of a query."""
        return replace(
            self,
            categories=tuple(dict.fromkeys(self.categories + categories)),
            authors=tuple(dict.fromkeys(self.authors + authors)),
        )

    def published_bounds(self) -> tuple[datetime | None, datetime | None]:
        """[start, end) instants of the date range, in UTC."""
        start = datetime.combine(self.date_from, time(), UTC) if self.date_from else None
        end = None
        if self.date_to and self.date_to < date.max:  # up to date.max: no end at all
            end = datetime.combine(self.date_to + timedelta(days=1), time(), UTC)
        return start, end

    def sql(self) -> ColumnElement[bool]:
        """The filters as a condition on ``papers`` (visible papers only)."""
        conditions: list[ColumnElement[bool]] = [papers.c.hidden_at.is_(None)]
        start, end = self.published_bounds()
        if start is not None:
            conditions.append(papers.c.published_at >= start)
        if end is not None:
            conditions.append(papers.c.published_at < end)
        if self.categories:
            conditions.append(
                exists(
                    select(1).where(
                        paper_categories.c.paper_id == papers.c.id,
                        paper_categories.c.category.in_(self.categories),
                    )
                )
            )
        if self.organization:
            conditions.append(
                exists(
                    select(1).where(
                        organizations.c.id == papers.c.organization_id,
                        organizations.c.slug == self.organization,
                    )
                )
            )
        if self.has_code:
            conditions.append(papers.c.code_url.is_not(None))
        if self.on_list:
            conditions.append(
                exists(
                    select(1).where(
                        daily_entries.c.paper_id == papers.c.id,
                        daily_entries.c.status == EntryStatus.PUBLISHED.value,
                    )
                )
            )
        for name in self.authors:
            pattern = "%" + name.lower().replace("\\", "\\\\").replace("%", r"\%") + "%"
            conditions.append(func.lower(papers.c.authors_text).like(pattern, escape="\\"))
        return and_(*conditions)
