"""Hugging Face papers API responses, and an older scrape of HF daily papers.

Three shapes, in one JSON document or (the first two) as JSON lines, one object per line:

**Daily list** (``GET /api/daily_papers``): an array of entries::

    {"paper": {"id": "2505.01234", "authors": [{"name": "Ada Lovelace", ...}],
               "publishedAt": "...", "title": "...", "summary": "...", "upvotes": 12,
               "ai_summary": "...", "ai_keywords": [...], "githubRepo": "...",
               "projectPage": "...", "withdrawnAt": "...", "submittedOnDailyAt": "...", ...},
     "publishedAt": "...", "title": "...", "summary": "...", "numComments": 3,
     "submittedBy": {"name": "user", "fullname": "..."},
     "organization": {"name": "zai-org", "fullname": "Z.ai", "avatarUrl": "..."}}

``paper.*`` is read first, the entry's own ``title``/``summary`` are the fallback (as
``huggingface_hub.PaperInfo`` does). The entry's ``publishedAt`` is when the paper appeared on
Daily Papers: it gives ``Listing.day`` counted in the configured time zone (when it is
missing, ``paper.submittedOnDailyAt`` does), the entry's index gives ``Listing.position`` and
``submittedBy.name`` the submitter. ``paper.publishedAt`` is the arXiv publication time.
``organization`` is taken from the entry or, failing that, from the paper.

**Single paper** (``GET /api/papers/{id}``): the ``paper`` object on its own, flat, with
``organization`` and ``numComments`` beside it. It was on a daily list if it has
``submittedOnDailyAt`` (submitter: ``submittedOnDailyBy.name``); its list position is unknown.

**Older scrape** (mwoedlinger/PaperExplorer ``papers.json``): an object keyed by arXiv id::

    {"2312.17653": {"url": "https://arxiv.org/abs/2312.17653", "title": "...",
                    "authors": ["Ming Yan", ...], "abstract": "...",
                    "publication_date": "2023-12-24T10:08:59Z", "upvotes": 29}}

``publication_date`` is the arXiv submission time, not a list day, so these records carry no
listing. All three map the same way: authors in order, ``upvotes``, ``githubRepo`` as
``code_url``, ``projectPage`` as ``project_url``, an organization as ``OrganizationRef(slug=name,
name=fullname or name)``, ``withdrawn`` True when ``withdrawnAt`` is set (None otherwise, so an
HF record never clears what arXiv said). Texts are normalised like every parser's (runs of
whitespace as one space; LaTeX, ``<`` and ``>`` kept). A malformed item is a RecordError at
``<file> item <index>`` or ``<file>:<line>``; a truncated document yields the items before the cut.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from papertide.catalog.ids import is_arxiv_id
from papertide.catalog.records import (
    MAX_NUMBER,
    Author,
    Listing,
    OrganizationRef,
    PaperRecord,
    RecordError,
)
from papertide.ingest.files import read_head
from papertide.ingest.hfshared import (
    BrokenJson,
    clean_text,
    document_items,
    first_char,
    first_line_object,
    head_objects,
    json_lines,
    list_day,
    not_an_object,
    parse_timestamp,
    read_arxiv_id,
    read_bytes,
)

FORMAT = "hf-api"

_SCRAPE_START = re.compile(rb'\A(?:\xef\xbb\xbf)?\s*\{\s*"([^"]{1,40})"\s*:\s*\{')
_ENTRY_HEAD = re.compile(rb'"paper"\s*:\s*\{')
_FLAT_HEAD_KEYS = (b'"id"', b'"publishedAt"', b'"summary"')
MAX_SLUG_LENGTH = 100  # organizations.slug


def sniff(head: bytes) -> bool:
    first = first_line_object(head)
    if first is not None:
        return _is_scrape_head(head) or _is_entry(first) or _is_flat(first)
    start = first_char(head)
    if start == "[":
        return bool(_ENTRY_HEAD.search(head)) or all(key in head for key in _FLAT_HEAD_KEYS)
    if start == "{":
        return _is_scrape_head(head) or all(key in head for key in _FLAT_HEAD_KEYS)
    return False


def parse(path: Path, tz: ZoneInfo) -> Iterator[PaperRecord | RecordError]:
    head = read_head(path)
    if _is_scrape_head(head):
        yield from _parse_document(path, read_bytes(path), tz)
    elif first_line_object(head) is not None or (
        # JSON lines whose first line is damaged: a later line is an entry or a paper
        first_char(head) != "["
        and any(_is_entry(line) or _is_flat(line) for line in head_objects(head))
    ):
        yield from _parse_lines(path, tz)
    elif first_char(head) == "{":
        yield from _parse_single(path, read_bytes(path), tz)
    else:
        yield from _parse_document(path, read_bytes(path), tz)


# --- shapes -----------------------------------------------------------------------------------


def _is_entry(value: dict[str, Any]) -> bool:
    return isinstance(value.get("paper"), dict)


def _is_flat(value: dict[str, Any]) -> bool:
    return "id" in value and "publishedAt" in value and ("summary" in value or "title" in value)


def _is_scrape_head(head: bytes) -> bool:
    match = _SCRAPE_START.match(head)
    return match is not None and is_arxiv_id(match.group(1).decode("utf-8", errors="replace"))


# --- files ------------------------------------------------------------------------------------


def _parse_lines(path: Path, tz: ZoneInfo) -> Iterator[PaperRecord | RecordError]:
    for index, (number, value, problem) in enumerate(json_lines(path)):
        where = f"{path}:{number}"
        yield (
            RecordError(where, problem) if problem is not None else _record(value, where, tz, index)
        )


def _parse_single(path: Path, data: bytes, tz: ZoneInfo) -> Iterator[PaperRecord | RecordError]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        yield RecordError(str(path), f"not valid JSON ({exc})")
        return
    yield _record(value, str(path), tz, None)


def _parse_document(path: Path, data: bytes, tz: ZoneInfo) -> Iterator[PaperRecord | RecordError]:
    try:
        for index, key, value in document_items(data):
            where = f"{path} item {index}"
            if key is None:
                yield _record(value, where, tz, index)
            else:
                yield _scrape_record(key, value, where)
    except BrokenJson as exc:
        yield RecordError(
            str(path) if exc.index is None else f"{path} item {exc.index}", exc.reason
        )


# --- records ----------------------------------------------------------------------------------


def _record(
    value: object, where: str, tz: ZoneInfo, index: int | None
) -> PaperRecord | RecordError:
    """A daily-list entry (listed at ``index``) or a flat paper object."""
    if not isinstance(value, dict):
        return not_an_object(value, where)
    paper, listed_at, submitter = _unwrap(value)
    paper_id = read_arxiv_id(paper.get("id"), where)
    if isinstance(paper_id, RecordError):
        return paper_id
    where = f"{where} ({paper_id.id})"
    try:
        published, listed = _timestamp(paper.get("publishedAt")), _timestamp(listed_at)
        organization = _organization(value.get("organization") or paper.get("organization"))
    except ValueError as exc:
        return RecordError(where, str(exc))
    listing = None
    if listed is not None:
        position = index if _is_entry(value) else None
        listing = Listing(list_day(listed, tz), position, submitter_name=_user(submitter))
    return PaperRecord(
        arxiv_id=paper_id.id,
        source=FORMAT,
        position=where,
        version=paper_id.version,
        title=clean_text(paper.get("title")) or clean_text(value.get("title")),
        abstract=clean_text(paper.get("summary")) or clean_text(value.get("summary")),
        authors=_authors(paper.get("authors")),
        published_at=published,
        ai_summary=clean_text(paper.get("ai_summary")),
        code_url=clean_text(paper.get("githubRepo")),
        project_url=clean_text(paper.get("projectPage")),
        organization=organization,
        upvotes=_count(paper.get("upvotes")),
        withdrawn=True if paper.get("withdrawnAt") else None,
        listing=listing,
    )


def _unwrap(value: dict[str, Any]) -> tuple[dict[str, Any], object, object]:
    """The paper object, when it was listed, and by whom: from an entry or a flat paper."""
    if not _is_entry(value):
        return value, value.get("submittedOnDailyAt"), value.get("submittedOnDailyBy")
    paper: dict[str, Any] = value["paper"]
    if value.get("publishedAt") is None:
        return paper, paper.get("submittedOnDailyAt"), paper.get("submittedOnDailyBy")
    return paper, value["publishedAt"], value.get("submittedBy") or paper.get("submittedOnDailyBy")


def _scrape_record(key: str, value: object, where: str) -> PaperRecord | RecordError:
    """One ``{arxiv id: {url, title, authors, abstract, publication_date, upvotes}}`` member."""
    paper_id = read_arxiv_id(key, f"{where} ({key})")
    if isinstance(paper_id, RecordError):
        return paper_id
    where = f"{where} ({paper_id.id})"
    if not isinstance(value, dict):
        return not_an_object(value, where)
    try:
        published = _timestamp(value.get("publication_date"))
    except ValueError as exc:
        return RecordError(where, str(exc))
    return PaperRecord(
        arxiv_id=paper_id.id,
        source=FORMAT,
        position=where,
        version=paper_id.version,
        title=clean_text(value.get("title")),
        abstract=clean_text(value.get("abstract")),
        authors=_authors(value.get("authors")),
        published_at=published,
        upvotes=_count(value.get("upvotes")),
    )


# --- values -----------------------------------------------------------------------------------


def _timestamp(value: object) -> datetime | None:
    return None if value is None or value == "" else parse_timestamp(value)


def _authors(value: object) -> list[Author]:
    """Authors in order: objects with a ``name`` (API) or plain strings (scrape)."""
    if not isinstance(value, list):
        return []
    names = (clean_text(item.get("name") if isinstance(item, dict) else item) for item in value)
    return [Author(name) for name in names if name]


def _organization(value: object) -> OrganizationRef | None:
    if not isinstance(value, dict):
        return None
    slug = clean_text(value.get("name"))
    if slug is None:
        return None
    if len(slug) > MAX_SLUG_LENGTH:
        raise ValueError(f"organization name {slug[:40]!r}... is over {MAX_SLUG_LENGTH} characters")
    name = clean_text(value.get("fullname")) or slug
    return OrganizationRef(slug=slug, name=name, avatar_url=clean_text(value.get("avatarUrl")))


def _user(value: object) -> str | None:
    return clean_text(value.get("name")) if isinstance(value, dict) else None


def _count(value: object) -> int | None:
    """A count (upvotes) the catalog can store; anything else is no count."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_NUMBER:
        return value
    return None
