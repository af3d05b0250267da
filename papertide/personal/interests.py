"""What a user told us they want: topics, include/exclude rules, a threshold, a trending weight.

Rules are hard filters on the feed. *Include* rules, when any are set, keep only papers that
match at least one of them; *exclude* rules drop every paper that matches any of them. A
keyword matches the title or abstract (case-insensitive, as a whole word or phrase); a category
matches any of the paper's categories; an author matches a substring of the author list; an
organization matches the paper's organization slug or name.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from papertide.db.schema import interests
from papertide.errors import InvalidInput

MAX_TOPICS = 20
MAX_RULES = 50
MAX_TEXT = 100
FIELDS = ("keywords", "categories", "authors", "organizations")


@dataclass(frozen=True)
class RuleSet:
    keywords: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    organizations: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.keywords or self.categories or self.authors or self.organizations)

    def rules(self) -> list[tuple[str, str]]:
        """Every rule as (kind, value)."""
        return [(kind, value) for kind in FIELDS for value in getattr(self, kind)]

    def matches(self, paper: PaperFacts) -> str | None:
        """The first rule ``paper`` matches, as (kind, value) text, else None."""
        for kind, value in self.rules():
            if matches_one(kind, value, paper):
                return f"{kind[:-1]} {value}"
        return None


@dataclass(frozen=True, slots=True)
class PaperFacts:
    """What rules look at, lower-cased once per paper."""

    text: str  # title + abstract
    categories: frozenset[str]
    authors: str
    organizations: frozenset[str]  # slug and name


_PHRASES: dict[str, re.Pattern[str]] = {}


def matches_one(kind: str, value: str, paper: PaperFacts) -> bool:
    """Whether one rule (``kind`` one of FIELDS) matches ``paper``."""
    if kind == "keywords":
        first = value.lower().split()[0] if value.split() else ""
        # A substring test first: the regex runs only where the word can be.
        return bool(first) and first in paper.text and _phrase(value).search(paper.text) is not None
    if kind == "categories":
        return value in paper.categories
    if kind == "authors":
        return value.lower() in paper.authors
    return value.lower() in paper.organizations


def _phrase(keyword: str) -> re.Pattern[str]:
    pattern = _PHRASES.get(keyword)
    if pattern is None:
        words = r"\s+".join(re.escape(w) for w in keyword.lower().split())
        pattern = re.compile(rf"(?<!\w){words}(?!\w)")
        _PHRASES[keyword] = pattern
    return pattern


class RuleMasks:
    """Which of a fixed list of papers each rule matches, computed once per rule: a digest run
    or a cached feed window answers every subscriber's rules from the same arrays."""

    def __init__(self, facts: list[PaperFacts]) -> None:
        self.facts = facts
        self._masks: dict[tuple[str, str], npt.NDArray[np.bool_]] = {}

    def mask(self, kind: str, value: str) -> npt.NDArray[np.bool_]:
        key = (kind, value)
        found = self._masks.get(key)
        if found is None:
            found = np.fromiter(
                (matches_one(kind, value, facts) for facts in self.facts),
                dtype=bool,
                count=len(self.facts),
            )
            self._masks[key] = found
        return found

    def passing(self, include: RuleSet, exclude: RuleSet) -> npt.NDArray[np.bool_]:
        """Which papers the rules let through (see the module docstring)."""
        n = len(self.facts)
        keep = np.ones(n, dtype=bool)
        for kind, value in exclude.rules():
            keep &= ~self.mask(kind, value)
        wanted = include.rules()
        if wanted:
            hit = np.zeros(n, dtype=bool)
            for kind, value in wanted:
                hit |= self.mask(kind, value)
            keep &= hit
        return keep


@dataclass(frozen=True)
class Interests:
    topics: tuple[str, ...] = ()
    include: RuleSet = field(default_factory=RuleSet)
    exclude: RuleSet = field(default_factory=RuleSet)
    threshold: float = 0.0  # papers whose personal score is below it are left out
    trending_weight: float = 0.3  # 0: only personal relevance, 1: only community trending
    window_days: int = 7
    onboarded: bool = False

    def passes(self, paper: PaperFacts) -> bool:
        if self.exclude.matches(paper) is not None:
            return False
        return self.include.empty or self.include.matches(paper) is not None


def _clean_list(values: list[str] | tuple[str, ...], what: str, limit: int) -> tuple[str, ...]:
    cleaned = [" ".join(v.split()) for v in values if v.strip()]
    for value in cleaned:
        if len(value) > MAX_TEXT:
            raise InvalidInput(f"{what} {value[:30]!r}... is longer than {MAX_TEXT} characters")
    if len(cleaned) > limit:
        raise InvalidInput(f"at most {limit} {what}s, not {len(cleaned)}")
    return tuple(dict.fromkeys(cleaned))


def split_list(text: str) -> list[str]:
    """Form fields hold one item per line or comma."""
    return [part for line in text.splitlines() for part in line.split(",")]


def make_interests(
    *,
    topics: list[str],
    include: dict[str, list[str]],
    exclude: dict[str, list[str]],
    threshold: float,
    trending_weight: float,
    window_days: int,
    onboarded: bool = True,
) -> Interests:
    """Validated interests; InvalidInput names the field at fault."""
    if not -1.0 <= threshold <= 1.0:
        raise InvalidInput(f"threshold {threshold} is outside -1 to 1")
    if not 0.0 <= trending_weight <= 1.0:
        raise InvalidInput(f"trending weight {trending_weight} is outside 0 to 1")
    if not 1 <= window_days <= 31:
        raise InvalidInput(f"window of {window_days} days is outside 1 to 31")

    def rules(values: dict[str, list[str]], side: str) -> RuleSet:
        unknown = set(values) - set(FIELDS)
        if unknown:
            raise InvalidInput(f"unknown {side} rule {sorted(unknown)[0]!r}")
        return RuleSet(
            **{
                name: _clean_list(values.get(name, []), f"{side} {name[:-1]}", MAX_RULES)
                for name in FIELDS
            }
        )

    return Interests(
        topics=_clean_list(topics, "topic", MAX_TOPICS),
        include=rules(include, "include"),
        exclude=rules(exclude, "exclude"),
        threshold=threshold,
        trending_weight=trending_weight,
        window_days=window_days,
        onboarded=onboarded,
    )


def load_interests(connection: Connection, user_id: int) -> Interests:
    row = connection.execute(select(interests).where(interests.c.user_id == user_id)).first()
    if row is None:
        return Interests()
    rules: dict[str, Any] = row.rules or {}
    return Interests(
        topics=tuple(row.topics or ()),
        include=RuleSet(**{k: tuple(v) for k, v in rules.get("include", {}).items()}),
        exclude=RuleSet(**{k: tuple(v) for k, v in rules.get("exclude", {}).items()}),
        threshold=row.threshold,
        trending_weight=row.trending_weight,
        window_days=row.window_days,
        onboarded=row.onboarded_at is not None,
    )


def save_interests(connection: Connection, user_id: int, value: Interests) -> None:
    now = datetime.now(UTC)
    values = {
        "user_id": user_id,
        "topics": list(value.topics),
        "rules": {"include": asdict(value.include), "exclude": asdict(value.exclude)},
        "threshold": value.threshold,
        "trending_weight": value.trending_weight,
        "window_days": value.window_days,
        "onboarded_at": now if value.onboarded else None,
        "updated_at": now,
    }
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert(interests).values(values)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["user_id"],
            set_={k: statement.excluded[k] for k in values if k != "user_id"},
        )
    )
