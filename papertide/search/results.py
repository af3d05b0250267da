"""Search results as the pages and the API show them: cards with matched words marked."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import Connection, select

from papertide.cards import PaperCard, cards_for_ids
from papertide.db.schema import papers
from papertide.errors import NotFound
from papertide.search.highlight import highlight
from papertide.search.service import Mode, SearchOutcome, SearchRequest, SearchService


@dataclass(frozen=True)
class ResultPage:
    outcome: SearchOutcome
    cards: list[PaperCard]


def search_cards(
    service: SearchService, connection: Connection, request: SearchRequest
) -> ResultPage:
    """Run ``request`` and turn its page of ids into highlighted cards (pins say why)."""
    outcome = service.search(request)
    marked = [
        replace(
            card,
            title_html=highlight(card.title, outcome.query),
            excerpt_html=highlight(card.excerpt, outcome.query),
            reason=outcome.pins.get(card.paper_id),
            reason_kind="match",
        )
        for card in cards_for_ids(connection, outcome.ids)
    ]
    return ResultPage(outcome, marked)


def abstracts_of(connection: Connection, cards: list[PaperCard]) -> dict[str, str]:
    """Whole abstracts of the cards' papers (cards carry an excerpt; the API returns all)."""
    return dict(
        connection.execute(
            select(papers.c.arxiv_id, papers.c.abstract).where(
                papers.c.id.in_([c.paper_id for c in cards])
            )
        ).all()
    )


def similar_cards(
    service: SearchService,
    connection: Connection,
    arxiv_id: str,
    limit: int = 10,
    *,
    include_hidden: bool = False,
) -> tuple[list[PaperCard], Mode]:
    """Cards of the (visible) papers most like ``arxiv_id``; a hidden ``arxiv_id`` is NotFound
    unless ``include_hidden`` (a moderator on its page)."""
    condition = papers.c.arxiv_id == arxiv_id
    if not include_hidden:
        condition = condition & papers.c.hidden_at.is_(None)
    paper_id = connection.execute(select(papers.c.id).where(condition)).scalar()
    if paper_id is None:
        raise NotFound(f"paper {arxiv_id} is not in the catalog")
    found, mode = service.similar(paper_id, limit)
    return cards_for_ids(connection, [i for i, _score in found]), mode
