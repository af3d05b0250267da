"""What one subscriber's digest holds.

* **Trending**: the edition's best papers that the subscription's include/exclude rules let
  through, each with why it trends.
* **Picked for you**, for a subscription tied to an account that asked for it: the account's
  "for you" ranking (:mod:`papertide.personal.feed`) over the period's new papers, each with its
  reason. Accounts with nothing to go on yet (no upvotes, saves or topics) get no such section.
* Left out of both: papers this subscription was sent in the last :data:`SENT_LOOKBACK_DAYS`
  days, and for an account the papers it has seen (opened, or got by digest or feed),
  upvoted, saved or dismissed; a paper in the trending section is not picked again.

A :class:`Selector` serves one run: the edition, the candidates of the "for you" ranking and the
rule masks are shared by every subscriber; a batch of subscribers costs one query for what they
were sent, one for their accounts' marks, and the accounts' own profile rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Connection, select
from threadpoolctl import threadpool_limits

from papertide.db.schema import outbox, paper_marks, saved_papers, votes
from papertide.digest.edition import DigestPaper, Edition, papers_by_id
from papertide.digest.periods import Period
from papertide.digest.subscriptions import Subscription
from papertide.personal.feed import (
    Candidates,
    load_candidates,
    load_profile,
    rank,
)
from papertide.personal.feed import followed_papers as followed_of
from papertide.personal.interests import load_interests
from papertide.personal.marks import Mark
from papertide.search.embedder import Embedder

SENT_LOOKBACK_DAYS = 45
LIVE = ("ready", "sending", "sent")


@dataclass(frozen=True, slots=True)
class Item:
    paper: DigestPaper
    reason: str


@dataclass(frozen=True)
class DigestContent:
    subscription: Subscription
    period: Period
    trending: list[Item]
    picks: list[Item]

    @property
    def paper_ids(self) -> list[int]:
        return [item.paper.paper_id for item in (*self.trending, *self.picks)]

    @property
    def empty(self) -> bool:
        return not self.trending and not self.picks


class Selector:
    """Chooses the papers of every subscriber's digest for one period."""

    def __init__(
        self,
        edition: Edition,
        *,
        timezone: str,
        embedder: Callable[[], Embedder] | None = None,
        now: datetime | None = None,
    ) -> None:
        self.edition = edition
        self.timezone = ZoneInfo(timezone)
        self.embedder = embedder
        self.now = now or datetime.now(UTC)
        self._candidates: Candidates | None = None
        self._model: Embedder | None = None
        self._papers: dict[int, DigestPaper] = {p.paper_id: p for p in edition.papers}
        self._reasons: dict[int, str] = {}

    def select(self, connection: Connection, batch: list[Subscription]) -> list[DigestContent]:
        # Each account's ranking is a few small matrix products: a second BLAS thread only
        # spins (measured: 1.4-2.9 ms per ranking instead of 0.25 ms on a busy machine).
        with threadpool_limits(1, user_api="blas"):
            return self._select(connection, batch)

    def _select(self, connection: Connection, batch: list[Subscription]) -> list[DigestContent]:
        sent = self._sent(connection, [s.id for s in batch])
        users = [s.user_id for s in batch if s.user_id is not None]
        marks = self._marks(connection, users)
        trending: dict[int, list[Item]] = {}
        picked: dict[int, list[tuple[int, str]]] = {}
        for sub in batch:
            seen, dismissed = marks.get(sub.user_id or 0, (set(), set()))
            skip = sent.get(sub.id, set()) | seen | dismissed
            trending[sub.id] = self._trending(sub, skip)
            if sub.personal and sub.user_id is not None and self.embedder is not None:
                skip |= {item.paper.paper_id for item in trending[sub.id]}
                picked[sub.id] = self._picks(connection, sub, sub.user_id, skip, dismissed)
        wanted = [pid for picks in picked.values() for pid, _ in picks if pid not in self._papers]
        self._papers.update(papers_by_id(connection, wanted))
        return [
            DigestContent(
                sub,
                self.edition.period,
                trending[sub.id],
                [
                    Item(self._papers[pid], reason)
                    for pid, reason in picked.get(sub.id, [])
                    if pid in self._papers
                ],
            )
            for sub in batch
        ]

    def _trending(self, sub: Subscription, skip: set[int]) -> list[Item]:
        keep = self.edition.masks.passing(sub.include, sub.exclude)
        items: list[Item] = []
        for index in np.flatnonzero(keep).tolist():
            paper = self.edition.papers[index]
            if paper.paper_id in skip:
                continue
            reason = self._reasons.get(paper.paper_id)
            if reason is None:
                reason = self._reasons[paper.paper_id] = paper.trend_reason
            items.append(Item(paper, reason))
            if len(items) == sub.size:
                break
        return items

    def _picks(
        self,
        connection: Connection,
        sub: Subscription,
        user_id: int,
        skip: set[int],
        dismissed: set[int],
    ) -> list[tuple[int, str]]:
        model = self._model_loaded()
        candidates = self._candidates_of(connection, model)
        interests = load_interests(connection, user_id)
        profile = load_profile(connection, user_id, model, interests, dismissed)
        followed = followed_of(connection, user_id)
        if profile.cold and not followed:
            return []
        ruled_out = ~candidates.masks.passing(sub.include, sub.exclude)
        exclude = skip | set(profile.positive_ids) | set(candidates.ids[ruled_out].tolist())
        ranking = rank(profile, candidates, interests, exclude, followed)
        return [(item.paper_id, item.reason) for item in ranking.page(0, sub.size)]

    def _model_loaded(self) -> Embedder:
        if self._model is None:
            assert self.embedder is not None
            self._model = self.embedder()
        return self._model

    def _candidates_of(self, connection: Connection, model: Embedder) -> Candidates:
        if self._candidates is None:
            first = self.edition.period.first_day
            since = datetime.combine(first, datetime.min.time(), self.timezone)
            self._candidates = load_candidates(connection, model.name, since)
        return self._candidates

    def _sent(self, connection: Connection, sub_ids: list[int]) -> dict[int, set[int]]:
        """Papers each subscription got in other recent digests."""
        found: dict[int, set[int]] = {}
        if not sub_ids:
            return found
        rows = connection.execute(
            select(outbox.c.subscription_id, outbox.c.paper_ids).where(
                outbox.c.subscription_id.in_(sub_ids),
                outbox.c.period != self.edition.period.key,
                outbox.c.status.in_(LIVE),
                outbox.c.created_at >= self.now - timedelta(days=SENT_LOOKBACK_DAYS),
            )
        )
        for sub_id, paper_ids in rows:
            found.setdefault(sub_id, set()).update(paper_ids or ())
        return found

    def _marks(
        self, connection: Connection, user_ids: list[int]
    ) -> dict[int, tuple[set[int], set[int]]]:
        """(seen, dismissed) paper ids per account; upvoted and saved papers count as seen."""
        found: dict[int, tuple[set[int], set[int]]] = {u: (set(), set()) for u in user_ids}
        if not user_ids:
            return found
        for user_id, paper_id, kind in connection.execute(
            select(paper_marks.c.user_id, paper_marks.c.paper_id, paper_marks.c.kind).where(
                paper_marks.c.user_id.in_(user_ids)
            )
        ):
            found[user_id][0 if kind == Mark.SEEN.value else 1].add(paper_id)
        # What they upvoted or saved they have seen too.
        for table in (votes, saved_papers):
            for user_id, paper_id in connection.execute(
                select(table.c.user_id, table.c.paper_id).where(table.c.user_id.in_(user_ids))
            ):
                found[user_id][0].add(paper_id)
        return found
