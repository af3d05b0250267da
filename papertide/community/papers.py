"""The papers community actions apply to: resolved by arXiv id, hidden ones answer NotFound."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, select

from papertide.catalog.ids import parse_arxiv_id
from papertide.db.schema import papers
from papertide.errors import InvalidInput, NotFound


def visible() -> ColumnElement[bool]:
    """The filter keeping papers a moderator has not hidden."""
    return papers.c.hidden_at.is_(None)


def canonical_id(arxiv_id: str) -> str:
    """``arxiv_id`` without version or prefix; NotFound when it is not an arXiv id at all."""
    try:
        return parse_arxiv_id(arxiv_id).id
    except InvalidInput:
        raise NotFound(f"no paper {arxiv_id!r}: that is not an arXiv id") from None


def paper_row(connection: Connection, arxiv_id: str, *, lock: bool = False) -> Any:
    """The visible paper's ``id``, ``arxiv_id``, ``imported_upvotes``; ``lock`` takes its row
    lock (PostgreSQL ``FOR UPDATE``; SQLite writers are serialized by BEGIN IMMEDIATE)."""
    key = canonical_id(arxiv_id)
    statement: Select[Any] = select(
        papers.c.id, papers.c.arxiv_id, papers.c.imported_upvotes
    ).where(papers.c.arxiv_id == key, visible())
    if lock:
        statement = statement.with_for_update()
    row = connection.execute(statement).first()
    if row is None:
        raise NotFound(f"no paper {key} in this catalog")
    return row
