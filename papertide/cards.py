"""The two shapes in which the site shows a paper: a card on a list, and the paper page.

Lists (:mod:`papertide.daily`) build a card query from :func:`card_select` and run it through
:func:`fetch_cards`, which costs two queries whatever the number of cards: one for the cards
joined with their organization, one for the first authors of all of them.

Visibility: a list shows only *published* entries (not submissions waiting for a moderator or
turned down) of papers no moderator has hidden; :func:`visible_entry` is that condition and
:func:`from_entries` applies it. A hidden paper's page answers 404, except to moderators.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, NamedTuple

from markupsafe import Markup
from sqlalchemy import ColumnElement, Connection, Select, and_, func, null, select

from papertide.catalog.ids import parse_arxiv_id
from papertide.db.schema import (
    daily_entries,
    organizations,
    paper_authors,
    paper_categories,
    paper_versions,
    papers,
)
from papertide.errors import InvalidInput, NotFound

EXCERPT_CHARS = 300
CARD_AUTHORS = 3
# A formula cut by the excerpt limit is kept whole when it ends this close to the limit.
_MATH_SLACK = 80
_MATH_RE = re.compile(r"\$\$.+?\$\$|\$[^$]+?\$|\\\(.+?\\\)|\\\[.+?\\\]", re.DOTALL)


class EntryStatus(StrEnum):
    """Where a daily-list entry stands (``daily_entries.status``)."""

    PUBLISHED = "published"  # on the list
    PENDING = "pending"  # a submission waiting for a moderator
    REJECTED = "rejected"  # a submission a moderator turned down


def visible_entry() -> ColumnElement[bool]:
    """Entries that lists show: published, of a paper that is not hidden (joins papers)."""
    return and_(daily_entries.c.status == EntryStatus.PUBLISHED.value, papers.c.hidden_at.is_(None))


@dataclass(frozen=True, slots=True)
class PaperCard:
    """What a list shows of one paper."""

    arxiv_id: str
    title: str
    excerpt: str  # the abstract, cut at a word near EXCERPT_CHARS, never inside a formula
    author_count: int
    authors: tuple[str, ...]  # the first CARD_AUTHORS names, in order
    published_at: datetime | None
    upvotes: int
    organization_name: str | None
    organization_slug: str | None
    code_url: str | None
    project_url: str | None
    listed_on: date | None  # None: on no list (search results)
    position: int | None  # 0-based order on that day's list as the source gave it
    reason: str | None = None  # trending only: why it ranks where it does
    # Search results: title and excerpt with the matched words marked (escaped HTML).
    title_html: Markup | None = None
    excerpt_html: Markup | None = None
    reason_kind: str = "trending"  # "match": why a search put it first
    paper_id: int = 0  # the catalog's key (search, feeds and similar papers order cards by it)


class CardPage(NamedTuple):
    """One page of a longer list, and how many papers the whole list holds."""

    cards: list[PaperCard]
    total: int


@dataclass(frozen=True, slots=True)
class AuthorLine:
    name: str
    affiliation: str | None


@dataclass(frozen=True, slots=True)
class VersionLine:
    number: int
    submitted_at: datetime | None
    size: str | None


@dataclass(frozen=True, slots=True)
class PaperPage:
    """Everything the paper page shows."""

    arxiv_id: str
    title: str
    abstract: str
    authors: tuple[AuthorLine, ...]
    categories: tuple[str, ...]
    primary_category: str | None
    versions: tuple[VersionLine, ...]
    days_listed: tuple[date, ...]  # newest first
    published_at: datetime | None
    updated_at: datetime | None
    latest_version: int | None
    comments: str | None
    journal_ref: str | None
    doi: str | None
    report_no: str | None
    license: str | None
    msc_class: str | None
    acm_class: str | None
    submitter: str | None
    ai_summary: str | None
    ai_summary_model: str | None
    code_url: str | None
    project_url: str | None
    organization_name: str | None
    organization_slug: str | None
    upvotes: int
    withdrawn: bool
    hidden_at: datetime | None = None  # only moderators ever see a hidden paper's page


_PAGE_FIELDS = (
    "arxiv_id",
    "title",
    "abstract",
    "primary_category",
    "published_at",
    "updated_at",
    "latest_version",
    "comments",
    "journal_ref",
    "doi",
    "report_no",
    "license",
    "msc_class",
    "acm_class",
    "submitter",
    "ai_summary",
    "ai_summary_model",
    "code_url",
    "project_url",
    "organization_name",
    "organization_slug",
    "upvotes",
)


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` on one line, cut at a word before ``limit`` characters, never inside a formula
    (a cut formula would show as broken LaTeX), with an ellipsis when anything was cut."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    space = flat.rfind(" ", 0, limit + 1)
    cut = space if space > limit // 2 else limit
    for match in _MATH_RE.finditer(flat):
        if match.start() >= cut:
            break
        if match.end() > cut:
            keep = match.end() - limit <= _MATH_SLACK or match.start() == 0
            cut = match.end() if keep else match.start()
            break
    return flat[:cut].rstrip(" ,;:") + "…"


def page_count(total: int, page_size: int) -> int:
    """How many pages ``total`` papers fill (at least one, so an empty list has page 1)."""
    return max(1, -(-total // page_size))


def check_page(page: int, page_size: int) -> int:
    """The row offset of ``page`` (pages start at 1)."""
    if page < 1 or page_size < 1:
        raise InvalidInput(f"page {page} of size {page_size} does not exist (pages start at 1)")
    return (page - 1) * page_size


def card_select(listed_on: ColumnElement[Any] = daily_entries.c.day) -> Select[Any]:
    """The card columns; add FROM clauses and filters (see :func:`from_entries`)."""
    return select(
        papers.c.id,
        papers.c.arxiv_id,
        papers.c.title,
        papers.c.abstract,
        papers.c.author_count,
        papers.c.published_at,
        papers.c.upvotes,
        papers.c.code_url,
        papers.c.project_url,
        organizations.c.name.label("organization_name"),
        organizations.c.slug.label("organization_slug"),
        listed_on.label("listed_on"),
        daily_entries.c.position,
    )


def list_day_select(condition: ColumnElement[bool], *, latest: bool) -> Select[Any]:
    """The latest (or earliest) day meeting ``condition`` whose list shows a paper.

    ``ORDER BY day LIMIT 1`` rather than ``max(day)``: the join with papers (for hidden ones)
    would make ``max`` read every entry, while the day index finds the first visible one."""
    return (
        select(daily_entries.c.day)
        .join(papers, papers.c.id == daily_entries.c.paper_id)
        .where(condition, visible_entry())
        .order_by(daily_entries.c.day.desc() if latest else daily_entries.c.day.asc())
        .limit(1)
    )


def nearest_list_day(
    connection: Connection, condition: ColumnElement[bool], *, latest: bool
) -> date | None:
    day: date | None = connection.execute(list_day_select(condition, latest=latest)).scalar()
    return day


def from_entries(statement: Select[Any]) -> Select[Any]:
    """Cards read from visible daily-list entries, with their paper and organization."""
    return statement.select_from(
        daily_entries.join(papers, papers.c.id == daily_entries.c.paper_id).outerjoin(
            organizations, organizations.c.id == papers.c.organization_id
        )
    ).where(visible_entry())


def fetch_cards(connection: Connection, statement: Select[Any]) -> list[PaperCard]:
    """Run a card query, then fetch the first authors of every card in one more query."""
    rows = list(connection.execute(statement).mappings())
    if not rows:
        return []
    names: dict[int, list[str]] = {row["id"]: [] for row in rows}
    for paper_id, name in connection.execute(
        select(paper_authors.c.paper_id, paper_authors.c.name)
        .where(paper_authors.c.paper_id.in_(list(names)))
        .where(paper_authors.c.position < CARD_AUTHORS)
        .order_by(paper_authors.c.paper_id, paper_authors.c.position)
    ):
        names[paper_id].append(name)
    return [
        PaperCard(
            arxiv_id=row["arxiv_id"],
            title=row["title"],
            excerpt=excerpt(row["abstract"]),
            author_count=row["author_count"],
            authors=tuple(names[row["id"]]),
            published_at=row["published_at"],
            upvotes=row["upvotes"],
            organization_name=row["organization_name"],
            organization_slug=row["organization_slug"],
            code_url=row["code_url"],
            project_url=row["project_url"],
            listed_on=row["listed_on"],
            position=row["position"],
            reason=row.get("reason"),
            paper_id=row["id"],
        )
        for row in rows
    ]


def cards_for_ids(connection: Connection, ids: list[int]) -> list[PaperCard]:
    """Cards of visible papers, in the order of ``ids`` (search results, similar papers);
    ``listed_on`` is the latest day the paper was on a list, if any."""
    if not ids:
        return []
    last_listed = (
        select(func.max(daily_entries.c.day))
        .where(daily_entries.c.paper_id == papers.c.id, visible_entry())
        .scalar_subquery()
    )
    statement = (
        select(
            *[c for c in card_select().selected_columns if c.name not in ("listed_on", "position")],
            last_listed.label("listed_on"),
            null().label("position"),
        )
        .select_from(
            papers.outerjoin(organizations, organizations.c.id == papers.c.organization_id)
        )
        .where(papers.c.id.in_(ids), papers.c.hidden_at.is_(None))
    )
    rank = {paper_id: n for n, paper_id in enumerate(ids)}
    return sorted(fetch_cards(connection, statement), key=lambda card: rank[card.paper_id])


def paper_page(connection: Connection, arxiv_id: str, *, include_hidden: bool = False) -> PaperPage:
    """Everything about one paper; ``arxiv_id`` may carry a version or an ``arXiv:`` prefix.

    A hidden paper is NotFound, worded like a missing one, unless ``include_hidden`` (for
    moderators)."""
    try:
        key = parse_arxiv_id(arxiv_id).id
    except InvalidInput:
        raise NotFound(f"no paper {arxiv_id!r}: that is not an arXiv id") from None
    statement = (
        select(
            papers,
            organizations.c.name.label("organization_name"),
            organizations.c.slug.label("organization_slug"),
        )
        .select_from(
            papers.outerjoin(organizations, organizations.c.id == papers.c.organization_id)
        )
        .where(papers.c.arxiv_id == key)
    )
    row = connection.execute(statement).mappings().first()
    if row is None or (row["hidden_at"] is not None and not include_hidden):
        raise NotFound(f"no paper {key} in this catalog")
    authors, categories, versions, days = _paper_children(connection, row["id"])
    return PaperPage(
        authors=authors,
        categories=categories,
        versions=versions,
        days_listed=days,
        withdrawn=bool(row["withdrawn"]),
        hidden_at=row["hidden_at"],
        **{name: row[name] for name in _PAGE_FIELDS},
    )


def _paper_children(
    connection: Connection, paper_id: int
) -> tuple[tuple[AuthorLine, ...], tuple[str, ...], tuple[VersionLine, ...], tuple[date, ...]]:
    authors = connection.execute(
        select(paper_authors.c.name, paper_authors.c.affiliation)
        .where(paper_authors.c.paper_id == paper_id)
        .order_by(paper_authors.c.position)
    )
    categories = connection.execute(
        select(paper_categories.c.category)
        .where(paper_categories.c.paper_id == paper_id)
        .order_by(paper_categories.c.position)
    ).scalars()
    versions = connection.execute(
        select(paper_versions.c.version, paper_versions.c.submitted_at, paper_versions.c.size)
        .where(paper_versions.c.paper_id == paper_id)
        .order_by(paper_versions.c.version)
    )
    days = connection.execute(
        select(daily_entries.c.day)
        .where(daily_entries.c.paper_id == paper_id)
        .where(daily_entries.c.status == EntryStatus.PUBLISHED.value)
        .order_by(daily_entries.c.day.desc())
    ).scalars()
    return (
        tuple(AuthorLine(name, affiliation) for name, affiliation in authors),
        tuple(categories),
        tuple(VersionLine(number, at, size) for number, at, size in versions),
        tuple(days),
    )
