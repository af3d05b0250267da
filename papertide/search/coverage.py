"""How much of the catalog has vectors: the figure behind "semantic search covers N of M".

Counted in full now and then (a background job: at 1M papers it takes 0.1-2 s); in between,
:meth:`Coverage.advance` adds only rows newer than the last count (an index range), so the
figure is exact as papers and vectors arrive and drifts only by deletions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from papertide.db.schema import paper_embeddings, papers


@dataclass(frozen=True)
class Coverage:
    """Counts of papers and of vectors, and the highest ids they had when counted."""

    model: str | None
    at: float
    embedded: int
    papers: int
    last_vector: int
    last_paper: int

    @classmethod
    def count(cls, connection: Connection, model: str | None) -> Coverage:
        embedded, last_vector = 0, 0
        if model is not None:
            embedded, last_vector = connection.execute(
                select(func.count(), func.coalesce(func.max(paper_embeddings.c.id), 0)).where(
                    paper_embeddings.c.model == model
                )
            ).one()
        papers_n, last_paper = connection.execute(
            select(func.count(), func.coalesce(func.max(papers.c.id), 0))
        ).one()
        return cls(model, time.monotonic(), embedded, papers_n, last_vector, last_paper)

    def advance(self, connection: Connection) -> Coverage:
        new_papers, last_paper = connection.execute(
            select(func.count(), func.coalesce(func.max(papers.c.id), self.last_paper)).where(
                papers.c.id > self.last_paper
            )
        ).one()
        new_vectors, last_vector = 0, self.last_vector
        if self.model is not None:
            new_vectors, last_vector = connection.execute(
                select(
                    func.count(), func.coalesce(func.max(paper_embeddings.c.id), self.last_vector)
                ).where(
                    paper_embeddings.c.model == self.model,
                    paper_embeddings.c.id > self.last_vector,
                )
            ).one()
        return Coverage(
            self.model,
            self.at,
            self.embedded + new_vectors,
            self.papers + new_papers,
            last_vector,
            last_paper,
        )
