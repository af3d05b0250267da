"""The "for you" feed: new papers of a window, ranked for one user, each with its reason.

The model, in the open (all similarities are cosines of all-MiniLM-L6-v2 embeddings):

* **positives** are the papers the user upvoted or saved (the latest :data:`MAX_POSITIVES`),
  **negatives** the papers they marked "not interested", **topics** the free-text topics they
  gave (embedded as queries).
* ``like(p) = 0.7 * max_j cos(p, positive_j) + 0.3 * cos(p, mean of positives)``: the nearest
  positive explains the paper ("close to <your paper>"), the centroid smooths over several.
* ``topic(p) = max_k cos(p, topic_k) + TOPIC_OFFSET``: a short phrase sits further from an
  abstract than another abstract does, so topic similarities are lifted to the same scale.
* ``personal(p) = base - NEGATIVE_WEIGHT * max(0, max_j cos(p, negative_j) - base)`` with
  ``base = max(like, topic)``: a paper pays only for being closer to a dismissed paper than to
  anything the user likes (a fixed floor instead pushed relevant papers of the same field down:
  on CSFCube a dismissal then cost nDCG@10 0.06, see docs/benchmarks.md).
* ``trending(p) = log(1 + upvotes) / log(1 + max upvotes in the window)``, 0 to 1.
* ``score = (1 - w) * personal + w * trending`` with the user's trending weight ``w``.
* Papers in public folders the user **follows** score at least :data:`FOLLOWED_SCORE`, with
  the folder as their reason.
* Papers below the user's **threshold** on ``personal`` are left out; include/exclude **rules**
  are hard filters (:mod:`papertide.personal.interests`); dismissed and **seen** papers never
  come back. With no positives and no topics yet (cold start), the feed is the window's
  trending order, and the page asks for topics.

Speed: the window's candidates (ids, vectors, facts for the rules, upvotes) are read once and
cached per process for :data:`CACHE_S`; a request then costs the user's own rows and one small
matrix product.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Integer, Select, String, bindparam, func, select, union

from papertide.cards import EntryStatus
from papertide.db.schema import (
    daily_entries,
    folder_follows,
    folders,
    organizations,
    paper_categories,
    paper_embeddings,
    papers,
    saved_papers,
    users,
    votes,
)
from papertide.personal.interests import Interests, PaperFacts, RuleMasks, load_interests
from papertide.personal.marks import Mark, marked_ids
from papertide.search.embedder import Embedder

Matrix = npt.NDArray[np.float32]

MAX_POSITIVES = 200
TOPIC_OFFSET = 0.15
NEGATIVE_WEIGHT = 0.5
FOLLOWED_SCORE = 0.8
CACHE_S = 60.0


@dataclass(frozen=True)
class Candidates:
    """The window's papers that have a vector, as arrays."""

    ids: npt.NDArray[np.int64]
    matrix: Matrix  # (n, dim), rows normalised
    facts: list[PaperFacts]
    upvotes: npt.NDArray[np.float32]
    titles: list[str]

    @cached_property
    def masks(self) -> RuleMasks:
        """Rule results, computed once per cached window and shared by all users."""
        return RuleMasks(self.facts)

    def passing(self, interests: Interests) -> npt.NDArray[np.bool_]:
        """Which candidates ``interests``' rules let through."""
        return self.masks.passing(interests.include, interests.exclude)

    @property
    def trending(self) -> npt.NDArray[np.float32]:
        top = float(self.upvotes.max()) if len(self.upvotes) else 0.0
        if top <= 0:
            return np.zeros(len(self.upvotes), dtype=np.float32)
        return (np.log1p(self.upvotes) / math.log1p(top)).astype(np.float32)


@dataclass(frozen=True)
class Profile:
    positive_ids: list[int]
    positive_titles: list[str]
    positives: Matrix  # (p, dim)
    negatives: Matrix  # (n, dim)
    topics: tuple[str, ...]
    topic_matrix: Matrix  # (t, dim)

    @property
    def cold(self) -> bool:
        return len(self.positive_ids) == 0 and not self.topics


@dataclass(frozen=True, slots=True)
class FeedItem:
    paper_id: int
    score: float
    personal: float
    trending: float
    reason: str


def window_start(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)


def load_candidates(connection: Connection, model: str, since: datetime) -> Candidates:
    """Visible papers published or listed since ``since`` that have a ``model`` vector."""
    # Two indexed ranges joined by UNION: an OR of them in one WHERE reads every paper.
    recent = union(
        select(papers.c.id).where(papers.c.published_at >= since),
        select(daily_entries.c.paper_id).where(
            daily_entries.c.day >= since.date(),
            daily_entries.c.status == EntryStatus.PUBLISHED.value,
        ),
    ).subquery()
    rows = connection.execute(
        select(
            papers.c.id,
            papers.c.title,
            papers.c.abstract,
            papers.c.authors_text,
            papers.c.upvotes,
            organizations.c.slug,
            organizations.c.name,
            paper_embeddings.c.vector,
        )
        .join(paper_embeddings, paper_embeddings.c.paper_id == papers.c.id)
        .outerjoin(organizations, organizations.c.id == papers.c.organization_id)
        .where(
            paper_embeddings.c.model == model,
            papers.c.hidden_at.is_(None),
            papers.c.id.in_(select(recent.c.id)),
        )
    ).all()
    ids = [r.id for r in rows]
    categories: dict[int, set[str]] = {i: set() for i in ids}
    for paper_id, category in connection.execute(
        select(paper_categories.c.paper_id, paper_categories.c.category).where(
            paper_categories.c.paper_id.in_(ids)
        )
    ):
        categories[paper_id].add(category)
    dim = len(rows[0].vector) if rows else 0
    return Candidates(
        ids=np.asarray(ids, dtype=np.int64),
        matrix=np.vstack([r.vector for r in rows]).astype(np.float32)
        if rows
        else np.zeros((0, dim), dtype=np.float32),
        facts=[
            PaperFacts(
                text=f"{r.title}\n{r.abstract}".lower(),
                categories=frozenset(categories[r.id]),
                authors=(r.authors_text or "").lower(),
                organizations=frozenset(x.lower() for x in (r.slug, r.name) if x),
            )
            for r in rows
        ],
        upvotes=np.asarray([r.upvotes for r in rows], dtype=np.float32),
        titles=[r.title for r in rows],
    )


class CandidateCache:
    """The window's candidates per (model, window, day), shared by a process's requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._found: dict[tuple[str, int], tuple[float, Candidates]] = {}

    def get(self, connection: Connection, model: str, days: int, now: datetime) -> Candidates:
        key = (model, days)
        with self._lock:
            hit = self._found.get(key)
        if hit is not None and time.monotonic() - hit[0] < CACHE_S:
            return hit[1]
        found = load_candidates(connection, model, window_start(now, days))
        with self._lock:
            self._found[key] = (time.monotonic(), found)
        return found

    def clear(self) -> None:
        with self._lock:
            self._found.clear()


def load_profile(
    connection: Connection,
    user_id: int,
    embedder: Embedder,
    interests: Interests,
    dismissed: set[int] | None = None,
) -> Profile:
    """The user's positives (upvotes and saves), negatives (dismissals) and topic vectors."""
    positive_rows = connection.execute(
        _positives_statement(), {"user_id": user_id, "model": embedder.name}
    ).all()
    if dismissed is None:
        dismissed = marked_ids(connection, user_id, Mark.DISMISSED)
    negative_rows = (
        connection.execute(
            select(paper_embeddings.c.vector).where(
                paper_embeddings.c.model == embedder.name,
                paper_embeddings.c.paper_id.in_(sorted(dismissed)[-MAX_POSITIVES:]),
            )
        )
        .scalars()
        .all()
        if dismissed
        else []
    )
    dim = embedder.dim
    return Profile(
        positive_ids=[r.id for r in positive_rows],
        positive_titles=[r.title for r in positive_rows],
        positives=_stack([r.vector for r in positive_rows], dim),
        negatives=_stack(list(negative_rows), dim),
        topics=interests.topics,
        topic_matrix=_stack([topic_vector(embedder, t) for t in interests.topics], dim),
    )


@cache
def _positives_statement() -> Select[tuple[int, str, Any]]:
    """The newest upvoted or saved papers with their vectors; built once (building it took
    longer than running it), bound per call."""
    user_id = bindparam("user_id", type_=Integer)
    liked = (
        select(votes.c.paper_id.label("paper_id"), votes.c.created_at.label("at"))
        .where(votes.c.user_id == user_id)
        .union_all(
            select(saved_papers.c.paper_id, saved_papers.c.saved_at).where(
                saved_papers.c.user_id == user_id
            )
        )
        .subquery()
    )
    newest = (
        select(liked.c.paper_id, func.max(liked.c.at).label("at"))
        .group_by(liked.c.paper_id)
        .order_by(func.max(liked.c.at).desc())
        .limit(MAX_POSITIVES)
        .subquery()
    )
    return (
        select(papers.c.id, papers.c.title, paper_embeddings.c.vector)
        .join(newest, newest.c.paper_id == papers.c.id)
        .join(paper_embeddings, paper_embeddings.c.paper_id == papers.c.id)
        .where(paper_embeddings.c.model == bindparam("model", type_=String))
        .order_by(newest.c.at.desc())
    )


_TOPICS: dict[tuple[str, str], Matrix] = {}


def topic_vector(embedder: Embedder, topic: str) -> Matrix:
    """A topic's embedding (cached per process: users share topics)."""
    key = (embedder.name, topic.lower())
    found = _TOPICS.get(key)
    if found is None:
        found = embedder.encode_query(topic)
        if len(_TOPICS) > 10_000:
            _TOPICS.clear()
        _TOPICS[key] = found
    return found


def _stack(vectors: list[Matrix], dim: int) -> Matrix:
    if not vectors:
        return np.zeros((0, dim), dtype=np.float32)
    return np.vstack(vectors).astype(np.float32)


@dataclass(frozen=True)
class Ranking:
    """One user's ranked feed: kept candidates best first; items are built per page."""

    profile: Profile
    candidates: Candidates
    followed: dict[int, str]
    order: npt.NDArray[np.int64]  # candidate indices, kept ones only, best first
    score: Matrix
    personal: Matrix
    like: Matrix
    topic: Matrix
    nearest: npt.NDArray[np.int64]
    best_topic: npt.NDArray[np.int64]
    in_followed: npt.NDArray[np.bool_]
    weight: float

    def __len__(self) -> int:
        return len(self.order)

    @property
    def paper_ids(self) -> list[int]:
        return [int(i) for i in self.candidates.ids[self.order].tolist()]

    def page(self, start: int = 0, count: int | None = None) -> list[FeedItem]:
        end = len(self.order) if count is None else start + count
        return [self._item(int(i)) for i in self.order[start:end].tolist()]

    def _item(self, i: int) -> FeedItem:
        paper_id = int(self.candidates.ids[i])
        trending = float(self.candidates.trending[i])
        personal = float(self.personal[i])
        if self.in_followed[i] and personal <= FOLLOWED_SCORE + 1e-6 and paper_id in self.followed:
            reason = f"In {self.followed[paper_id]}, which you follow"
        else:
            reason = _reason(
                self.profile,
                self.candidates,
                i,
                like=float(self.like[i]),
                topic=float(self.topic[i]),
                trending_part=self.weight * trending,
                personal_part=(1 - self.weight) * personal,
                nearest=int(self.nearest[i]),
                best_topic=int(self.best_topic[i]),
            )
        return FeedItem(paper_id, float(self.score[i]), personal, trending, reason)


def rank(
    profile: Profile,
    candidates: Candidates,
    interests: Interests,
    exclude: set[int],
    followed: dict[int, str] | None = None,
) -> Ranking:
    """Score, filter and order the candidates for one user (see the module docstring).
    ``followed``: papers in folders the user follows (id -> "folder by owner"); their
    personal score is at least :data:`FOLLOWED_SCORE`."""
    n = len(candidates.ids)
    keep = ~np.isin(candidates.ids, np.fromiter(exclude, dtype=np.int64, count=len(exclude)))
    keep &= candidates.passing(interests)
    like = np.full(n, -1.0, dtype=np.float32)
    nearest = np.full(n, -1, dtype=np.int64)
    if len(profile.positive_ids) and n:
        sims = candidates.matrix @ profile.positives.T
        nearest = sims.argmax(axis=1)
        centroid = profile.positives.mean(axis=0)
        centroid /= max(float(np.linalg.norm(centroid)), 1e-9)
        like = 0.7 * sims.max(axis=1) + 0.3 * (candidates.matrix @ centroid)
    topic = np.full(n, -1.0, dtype=np.float32)
    best_topic = np.full(n, -1, dtype=np.int64)
    if len(profile.topics) and n:
        topic_sims = candidates.matrix @ profile.topic_matrix.T
        best_topic = topic_sims.argmax(axis=1)
        topic = topic_sims.max(axis=1) + TOPIC_OFFSET
    personal = np.maximum(like, topic)
    if len(profile.negatives) and n:
        # Only what is closer to a dismissed paper than to anything liked pays.
        closest_negative = (candidates.matrix @ profile.negatives.T).max(axis=1)
        personal = personal - NEGATIVE_WEIGHT * np.maximum(0.0, closest_negative - personal)
    followed = followed or {}
    in_followed = np.isin(
        candidates.ids, np.fromiter(followed, dtype=np.int64, count=len(followed))
    )
    trending = candidates.trending
    weight = interests.trending_weight
    if profile.cold and not in_followed.any():
        personal = np.zeros(n, dtype=np.float32)
        weight = 1.0
    else:
        personal = np.where(in_followed, np.maximum(personal, FOLLOWED_SCORE), personal)
        keep &= personal >= interests.threshold
    score = ((1 - weight) * personal + weight * trending).astype(np.float32)
    order = np.argsort(-score, kind="stable")
    return Ranking(
        profile=profile,
        candidates=candidates,
        followed=followed,
        order=order[keep[order]],
        score=score,
        personal=personal.astype(np.float32),
        like=like,
        topic=topic,
        nearest=nearest,
        best_topic=best_topic,
        in_followed=in_followed,
        weight=weight,
    )


def _reason(
    profile: Profile,
    candidates: Candidates,
    i: int,
    *,
    like: float,
    topic: float,
    trending_part: float,
    personal_part: float,
    nearest: int,
    best_topic: int,
) -> str:
    upvotes = int(candidates.upvotes[i])
    if profile.cold or trending_part > personal_part:
        return f"Trending: {upvotes} upvote{'s' if upvotes != 1 else ''}"
    if like >= topic and nearest >= 0:
        return f"Close to “{profile.positive_titles[nearest]}”, which you liked"
    return f"Matches your topic “{profile.topics[best_topic]}”"


def window_now() -> datetime:
    return datetime.now(UTC)


def followed_papers(connection: Connection, user_id: int) -> dict[int, str]:
    """Papers in the public folders ``user_id`` follows: id -> "Name by owner"."""
    rows = connection.execute(
        select(saved_papers.c.paper_id, folders.c.name, users.c.username)
        .join(folders, folders.c.id == saved_papers.c.folder_id)
        .join(folder_follows, folder_follows.c.folder_id == folders.c.id)
        .join(users, users.c.id == folders.c.user_id)
        .where(folder_follows.c.user_id == user_id, folders.c.public.is_(True))
    )
    return {paper_id: f"“{name}” by {owner}" for paper_id, name, owner in rows}


@dataclass(frozen=True)
class FeedPage:
    items: list[FeedItem]  # this page
    total: int
    interests: Interests
    cold: bool  # no positives and no topics: trending order, ask for interests


def for_you(
    connection: Connection,
    user_id: int,
    embedder: Embedder,
    cache: CandidateCache,
    *,
    page: int = 1,
    page_size: int = 20,
    now: datetime | None = None,
) -> FeedPage:
    """One page of the user's feed. Papers they dismissed, saw, saved or upvoted are left out."""
    interests = load_interests(connection, user_id)
    dismissed = marked_ids(connection, user_id, Mark.DISMISSED)
    profile = load_profile(connection, user_id, embedder, interests, dismissed)
    candidates = cache.get(connection, embedder.name, interests.window_days, now or window_now())
    exclude = dismissed | marked_ids(connection, user_id, Mark.SEEN) | set(profile.positive_ids)
    ranking = rank(profile, candidates, interests, exclude, followed_papers(connection, user_id))
    items = ranking.page((page - 1) * page_size, page_size)
    return FeedPage(items, len(ranking), interests, profile.cold)
