"""What every ingestion source produces: a PaperRecord per paper, or a RecordError.

Parsers never touch the database. They yield records (fields they do not know stay None or
empty, so they never overwrite what another source filled in) and errors with their position.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

# The bounds of what the catalog stores. Its integer columns (versions, upvotes, list
# positions) are 32-bit; a date outside these years is a mistake in the data (arXiv began in
# 1991), and one near year 1 or 9999 could not even be shown in another time zone.
MAX_NUMBER = 2**31 - 1
EARLIEST_DATE = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_DATE = datetime(3000, 1, 1, tzinfo=UTC)
MAX_CATEGORY_LENGTH = 64  # papers.primary_category, paper_categories.category
# Every arXiv category: cs.CL, hep-th, math-ph, cond-mat.stat-mech, q-fin.CP, physics.atom-ph.
_CATEGORY = re.compile(r"[a-z]+(?:-[a-z]+)*(?:\.[A-Za-z]+(?:-[A-Za-z]+)*)?", re.ASCII)


@dataclass(slots=True)
class Author:
    name: str
    affiliation: str | None = None


@dataclass(slots=True)
class Version:
    number: int
    submitted_at: datetime | None = None  # timezone-aware UTC
    size: str | None = None  # as arXiv gives it, e.g. "12kb"


@dataclass(slots=True)
class OrganizationRef:
    slug: str
    name: str
    avatar_url: str | None = None


@dataclass(slots=True)
class Listing:
    """The paper appeared on a day's daily list (imports from HF, or auto-follow)."""

    day: date
    position: int | None = None  # 0-based order on that day's list as the source gave it
    submitter_name: str | None = None
    comment: str | None = None


@dataclass(slots=True)
class PaperRecord:
    """One paper as one source describes it. Only ``arxiv_id`` and ``source`` are required."""

    arxiv_id: str  # normalised, without version (see catalog.ids.parse_arxiv_id)
    source: str  # format name: "kaggle", "abs", "arxiv-atom", "oai-pmh", "arxiv-rss", ...
    position: str = ""  # where it came from, for messages: "file.json:12"
    version: int | None = None  # the version this record describes (latest it knows)
    title: str | None = None
    abstract: str | None = None
    authors: list[Author] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)  # primary first when known
    primary_category: str | None = None
    published_at: datetime | None = None  # first version (v1) submission, UTC
    updated_at: datetime | None = None  # this/latest version, UTC
    versions: list[Version] = field(default_factory=list)
    comments: str | None = None
    journal_ref: str | None = None
    doi: str | None = None
    report_no: str | None = None
    license: str | None = None
    msc_class: str | None = None
    acm_class: str | None = None
    submitter: str | None = None
    ai_summary: str | None = None
    ai_summary_model: str | None = None
    code_url: str | None = None
    project_url: str | None = None
    organization: OrganizationRef | None = None
    upvotes: int | None = None
    withdrawn: bool | None = None
    listing: Listing | None = None


@dataclass(frozen=True, slots=True)
class RecordError:
    """A record that could not be read: where it was and why. The run goes on."""

    position: str  # "path/to/file.jsonl:17", "feed.atom entry 3 (2505.01234)"
    reason: str

    def __str__(self) -> str:
        return f"{self.position}: {self.reason}"


# --- checks shared by the parsers ---------------------------------------------------------------


def checked_date(value: datetime) -> datetime:
    """``value`` in UTC (a naive value is taken to be UTC) when it lies between EARLIEST_DATE
    and LATEST_DATE; ValueError saying so otherwise."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    moment: datetime | None
    try:
        moment = aware.astimezone(UTC)
    except OverflowError:  # an offset pushed it past year 1 or 9999
        moment = None
    if moment is None or not EARLIEST_DATE <= moment < LATEST_DATE:
        raise ValueError(
            f"date {value.isoformat()} is out of range "
            f"(years {EARLIEST_DATE.year} to {LATEST_DATE.year - 1})"
        )
    return moment


def is_category(value: str) -> bool:
    """Whether ``value`` is spelled like an arXiv category (and fits the catalog's column)."""
    return len(value) <= MAX_CATEGORY_LENGTH and _CATEGORY.fullmatch(value) is not None


def arxiv_categories(values: Iterable[str]) -> list[str]:
    """``values`` in order without repeats; ValueError quoting the first that is not spelled
    like an arXiv category."""
    kept = list(dict.fromkeys(values))
    for value in kept:
        if not is_category(value):
            raise ValueError(f"{value[:80]!r} is not an arXiv category (like cs.CL or hep-th)")
    return kept
