"""Papers as the Hugging Face papers API shapes them (see docs/api-hf.md).

Three shapes: a search result (``/api/papers/search``), a daily-list entry
(``/api/daily_papers``: ``{"paper": {...}, "publishedAt": ..., ...}``) and the flat paper object
(``/api/papers/{id}``). Keys we have no value for are left out rather than sent as null, as HF
does; times are ISO 8601 UTC with milliseconds and ``Z``. Each builder costs a fixed number of
queries, however many papers it is given.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from fastapi import Request
from markupsafe import Markup
from sqlalchemy import Connection, func, select

from papertide.cards import PaperCard, PaperPage
from papertide.db.schema import comments, organizations, paper_authors, papers
from papertide.hf_daily import DailyEntry, Submitter, day_start, entry_details
from papertide.search.results import abstracts_of
from papertide.web.routes_lists import voted_on


def segments(marked: Markup) -> list[dict[str, str]]:
    """HF's highlightedTitle / highlightedSummary: text and highlight runs, unescaped."""
    parts = re.split(r"<mark>(.*?)</mark>", str(marked), flags=re.DOTALL)
    return [
        {"type": "highlight" if n % 2 else "text", "text": html.unescape(part)}
        for n, part in enumerate(parts)
        if part
    ]


def iso(value: datetime | date | None) -> str | None:
    """``2025-05-01T17:59:58.000Z``; a date is its midnight UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return iso(datetime(value.year, value.month, value.day, tzinfo=UTC))


def authors_json(connection: Connection, arxiv_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every author of each paper, in order, as ``{_id, name, hidden}``."""
    found: dict[str, list[dict[str, Any]]] = {a: [] for a in arxiv_ids}
    rows = connection.execute(
        select(papers.c.arxiv_id, paper_authors.c.name, paper_authors.c.position)
        .join(paper_authors, paper_authors.c.paper_id == papers.c.id)
        .where(papers.c.arxiv_id.in_(arxiv_ids))
        .order_by(papers.c.arxiv_id, paper_authors.c.position)
    )
    for arxiv_id, name, position in rows:
        found[arxiv_id].append({"_id": f"{arxiv_id}#{position}", "name": name, "hidden": False})
    return found


def comment_counts(connection: Connection, arxiv_ids: list[str]) -> dict[str, int]:
    """Comments not deleted, per paper (papers without any are left out)."""
    rows = connection.execute(
        select(papers.c.arxiv_id, func.count(comments.c.id))
        .join(comments, comments.c.paper_id == papers.c.id)
        .where(papers.c.arxiv_id.in_(arxiv_ids), comments.c.deleted_at.is_(None))
        .group_by(papers.c.arxiv_id)
    )
    return dict(rows.all())


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# --- search results ----------------------------------------------------------------------------


def card_json(
    card: PaperCard,
    summary: str,
    authors: list[dict[str, Any]],
    comments_n: int,
    voted: bool,
    timezone: str,
) -> dict[str, Any]:
    """One search result: the card, its whole abstract, authors, comments, the viewer's vote;
    ``publishedAt`` is the start of its latest list day (``timezone``), else its arXiv date."""
    listed_at = day_start(card.listed_on, timezone) if card.listed_on else card.published_at
    paper = {
        "id": card.arxiv_id,
        "authors": authors,
        "publishedAt": iso(card.published_at),
        "title": card.title,
        "summary": summary,
        "upvotes": card.upvotes,
        "discussionId": card.arxiv_id,
        "githubRepo": card.code_url,
        "projectPage": card.project_url,
    }
    item: dict[str, Any] = {
        "paper": _compact(paper),
        "publishedAt": iso(listed_at),
        "title": card.title,
        "summary": summary,
        "numComments": comments_n,
        "upvoted": voted,
        "isAuthorParticipating": False,
        "highlightedTitle": segments(card.title_html or Markup.escape(card.title)),
        "highlightedSummary": segments(card.excerpt_html or Markup.escape(card.excerpt)),
    }
    if card.organization_slug:
        item["organization"] = {
            "name": card.organization_slug,
            "fullname": card.organization_name,
        }
    return item


def cards_json(
    request: Request, connection: Connection, cards: list[PaperCard]
) -> list[dict[str, Any]]:
    """Search results (``/api/papers/search``, similar papers), in the cards' order."""
    ids = [c.arxiv_id for c in cards]
    abstracts = abstracts_of(connection, cards)
    authors = authors_json(connection, ids)
    counts = comment_counts(connection, ids)
    voted = voted_on(request, connection, cards)
    timezone = request.app.state.settings.timezone
    return [
        card_json(
            c,
            abstracts.get(c.arxiv_id, c.excerpt),
            authors[c.arxiv_id],
            counts.get(c.arxiv_id, 0),
            c.arxiv_id in voted,
            timezone,
        )
        for c in cards
    ]


# --- daily lists and single papers -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Extras:
    """What cards and pages lack: the whole abstract, the AI summary, the organization avatar."""

    abstract: str
    ai_summary: str | None
    organization_avatar: str | None


def _extras(connection: Connection, arxiv_ids: list[str]) -> dict[str, _Extras]:
    rows = connection.execute(
        select(
            papers.c.arxiv_id, papers.c.abstract, papers.c.ai_summary, organizations.c.avatar_url
        )
        .select_from(
            papers.outerjoin(organizations, organizations.c.id == papers.c.organization_id)
        )
        .where(papers.c.arxiv_id.in_(arxiv_ids))
    )
    return {row[0]: _Extras(*row[1:]) for row in rows}


def user_json(submitter: Submitter) -> dict[str, Any]:
    """``submittedBy``: an account here, or the name an import carried (HF's username)."""
    return {
        "_id": submitter.username,
        "name": submitter.username,
        "fullname": submitter.fullname,
        "type": "user",
        "isPro": False,
    }


def organization_json(slug: str | None, name: str | None, avatar: str | None) -> dict[str, Any]:
    if not slug:
        return {}
    return {"organization": _compact({"name": slug, "fullname": name, "avatarUrl": avatar})}


def _daily_item(
    entry: DailyEntry, extras: _Extras, authors: list[dict[str, Any]], comments_n: int
) -> dict[str, Any]:
    card = entry.card
    listed_at = iso(entry.listed_at)
    submitter = user_json(entry.submitter) if entry.submitter else None
    paper = {
        "id": card.arxiv_id,
        "authors": authors,
        "publishedAt": iso(card.published_at),
        "title": card.title,
        "summary": extras.abstract,
        "upvotes": card.upvotes,
        "discussionId": card.arxiv_id,
        "ai_summary": extras.ai_summary,
        "githubRepo": card.code_url,
        "projectPage": card.project_url,
        "submittedOnDailyAt": listed_at,
        "submittedOnDailyBy": submitter,
    }
    item = {
        "paper": _compact(paper),
        "publishedAt": listed_at,
        "title": card.title,
        "summary": extras.abstract,
        "numComments": comments_n,
        "isAuthorParticipating": False,
        "submittedBy": submitter,
    }
    organization = organization_json(
        card.organization_slug, card.organization_name, extras.organization_avatar
    )
    return {**_compact(item), **organization}


def daily_json(connection: Connection, entries: list[DailyEntry]) -> list[dict[str, Any]]:
    """``/api/daily_papers`` items, in the entries' order."""
    ids = [e.card.arxiv_id for e in entries]
    extras = _extras(connection, ids)
    authors = authors_json(connection, ids)
    counts = comment_counts(connection, ids)
    return [
        _daily_item(
            e, extras[e.card.arxiv_id], authors[e.card.arxiv_id], counts.get(e.card.arxiv_id, 0)
        )
        for e in entries
    ]


def paper_json(connection: Connection, page: PaperPage, timezone: str) -> dict[str, Any]:
    """The flat ``/api/papers/{id}`` object; ``submittedOnDaily*`` from its latest list day."""
    key = page.arxiv_id
    extras = _extras(connection, [key])[key]
    entry = None
    if page.days_listed:
        listed = (key, page.days_listed[0])
        entry = entry_details(connection, [listed], timezone).get(listed)
    values = {
        "id": key,
        "authors": authors_json(connection, [key])[key],
        "publishedAt": iso(page.published_at),
        "submittedOnDailyAt": iso(entry.listed_at) if entry else None,
        "submittedOnDailyBy": user_json(entry.submitter) if entry and entry.submitter else None,
        "title": page.title,
        "summary": page.abstract,
        "upvotes": page.upvotes,
        "discussionId": key,
        "ai_summary": page.ai_summary,
        "githubRepo": page.code_url,
        "projectPage": page.project_url,
        "numComments": comment_counts(connection, [key]).get(key, 0),
    }
    organization = organization_json(
        page.organization_slug, page.organization_name, extras.organization_avatar
    )
    return {**_compact(values), **organization}
