"""A period's edition: the papers its lists hold, ranked by the community, with why they trend.

Every digest of one period draws its "trending" section from the same edition, read once per
run: the papers listed on the period's days (each once, on its latest day there), ordered by
upvotes, then day (newest first), then list position, as the weekly and monthly pages order
them. Each paper says why it ranks where it does: its upvotes, comments and rank on its day's
list. Papers for the "picked for you" section that are not in the edition are read by id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, func, select

from papertide.cards import excerpt, visible_entry
from papertide.db.schema import (
    comments,
    daily_entries,
    organizations,
    paper_authors,
    paper_categories,
    papers,
)
from papertide.digest.mathtext import unicode_math
from papertide.digest.periods import Period
from papertide.personal.interests import PaperFacts, RuleMasks

EMAIL_EXCERPT = 420
EMAIL_AUTHORS = 4
MAX_EDITION = 2000


@dataclass(frozen=True, slots=True)
class DigestPaper:
    paper_id: int
    arxiv_id: str
    title: str  # math as Unicode
    excerpt: str  # the abstract's start, math as Unicode
    authors: tuple[str, ...]  # the first EMAIL_AUTHORS
    author_count: int
    organization: str | None
    upvotes: int
    comments: int
    code_url: str | None
    project_url: str | None
    listed_on: date | None
    day_rank: int | None  # rank by upvotes on its day's list
    facts: PaperFacts

    @property
    def byline(self) -> str:
        """'Ada Lovelace, Alan Turing and 3 more · Org' (empty when nothing is known)."""
        line = ", ".join(self.authors)
        if self.author_count > len(self.authors):
            line += f" and {self.author_count - len(self.authors)} more"
        if self.organization:
            line = f"{line} · {self.organization}" if line else self.organization
        return line

    @property
    def trend_reason(self) -> str:
        """'12 upvotes and 3 comments, #2 on Monday's list'."""
        why = f"{self.upvotes} upvote{'s' * (self.upvotes != 1)}"
        if self.comments:
            why += f" and {self.comments} comment{'s' * (self.comments != 1)}"
        if self.listed_on is not None and self.day_rank is not None:
            why += f", #{self.day_rank} on {self.listed_on:%A}'s list"
        return why


@dataclass(frozen=True)
class Edition:
    period: Period
    papers: list[DigestPaper]  # best first

    @cached_property
    def masks(self) -> RuleMasks:
        return RuleMasks([p.facts for p in self.papers])


_CARD = (
    papers.c.id,
    papers.c.arxiv_id,
    papers.c.title,
    papers.c.abstract,
    papers.c.authors_text,
    papers.c.author_count,
    papers.c.upvotes,
    papers.c.code_url,
    papers.c.project_url,
    organizations.c.name.label("organization_name"),
    organizations.c.slug.label("organization_slug"),
)


def load_edition(connection: Connection, period: Period, limit: int = MAX_EDITION) -> Edition:
    """The edition of ``period`` (its best ``limit`` papers)."""
    entries = (
        select(
            daily_entries.c.paper_id,
            daily_entries.c.day,
            daily_entries.c.position,
            func.row_number()
            .over(
                partition_by=daily_entries.c.day,
                order_by=(
                    papers.c.upvotes.desc(),
                    daily_entries.c.position.asc().nulls_last(),
                    papers.c.arxiv_id,
                ),
            )
            .label("day_rank"),
            func.row_number()
            .over(partition_by=daily_entries.c.paper_id, order_by=daily_entries.c.day.desc())
            .label("latest"),
        )
        .join(papers, papers.c.id == daily_entries.c.paper_id)
        .where(daily_entries.c.day.between(period.first_day, period.last_day), visible_entry())
        .subquery()
    )
    statement = (
        select(*_CARD, entries.c.day, entries.c.day_rank)
        .select_from(
            entries.join(papers, papers.c.id == entries.c.paper_id).outerjoin(
                organizations, organizations.c.id == papers.c.organization_id
            )
        )
        .where(entries.c.latest == 1)
        .order_by(
            papers.c.upvotes.desc(),
            entries.c.day.desc(),
            entries.c.position.asc().nulls_last(),
            papers.c.arxiv_id,
        )
        .limit(limit)
    )
    rows = list(connection.execute(statement).mappings())
    return Edition(period, _papers(connection, rows))


def papers_by_id(connection: Connection, ids: list[int]) -> dict[int, DigestPaper]:
    """Visible papers by id (the "picked for you" section), on no list."""
    if not ids:
        return {}
    rows = list(
        connection.execute(
            select(*_CARD)
            .select_from(
                papers.outerjoin(organizations, organizations.c.id == papers.c.organization_id)
            )
            .where(papers.c.id.in_(ids), papers.c.hidden_at.is_(None))
        ).mappings()
    )
    return {p.paper_id: p for p in _papers(connection, rows)}


def _papers(connection: Connection, rows: list[Any]) -> list[DigestPaper]:
    ids = [row["id"] for row in rows]
    if not ids:
        return []
    names: dict[int, list[str]] = {i: [] for i in ids}
    for paper_id, name in connection.execute(
        select(paper_authors.c.paper_id, paper_authors.c.name)
        .where(paper_authors.c.paper_id.in_(ids), paper_authors.c.position < EMAIL_AUTHORS)
        .order_by(paper_authors.c.paper_id, paper_authors.c.position)
    ):
        names[paper_id].append(name)
    categories: dict[int, set[str]] = {i: set() for i in ids}
    for paper_id, category in connection.execute(
        select(paper_categories.c.paper_id, paper_categories.c.category).where(
            paper_categories.c.paper_id.in_(ids)
        )
    ):
        categories[paper_id].add(category)
    talk: dict[int, int] = dict(
        connection.execute(
            select(comments.c.paper_id, func.count())
            .where(comments.c.paper_id.in_(ids), comments.c.deleted_at.is_(None))
            .group_by(comments.c.paper_id)
        ).all()
    )
    return [
        DigestPaper(
            paper_id=row["id"],
            arxiv_id=row["arxiv_id"],
            title=unicode_math(" ".join(row["title"].split())),
            excerpt=unicode_math(excerpt(row["abstract"], EMAIL_EXCERPT)),
            authors=tuple(names[row["id"]]),
            author_count=row["author_count"],
            organization=row["organization_name"],
            upvotes=row["upvotes"],
            comments=talk.get(row["id"], 0),
            code_url=row["code_url"],
            project_url=row["project_url"],
            listed_on=row.get("day"),
            day_rank=row.get("day_rank"),
            facts=PaperFacts(
                text=f"{row['title']}\n{row['abstract']}".lower(),
                categories=frozenset(categories[row["id"]]),
                authors=(row["authors_text"] or "").lower(),
                organizations=frozenset(
                    x.lower() for x in (row["organization_slug"], row["organization_name"]) if x
                ),
            ),
        )
        for row in rows
    ]
