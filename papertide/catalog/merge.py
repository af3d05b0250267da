"""How a record changes a paper: the merge rules, on plain in-memory state.

A record only sets the fields it knows (None and empty lists never erase). A record describing
an older version than the catalog holds only fills fields that are still empty, so a stale
source cannot roll a paper back; version histories are always merged. Every field taken from a
record remembers its source. The paper's ``content_hash`` covers everything a record can change,
so an unchanged re-import is detected with one comparison.
"""

from __future__ import annotations

import hashlib
import operator
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

import orjson

from papertide.catalog.links import extract_links
from papertide.catalog.records import PaperRecord

# Scalar paper fields a record may set, in hash order.
SCALAR_FIELDS = (
    "title",
    "abstract",
    "ai_summary",
    "ai_summary_model",
    "primary_category",
    "published_at",
    "updated_at",
    "latest_version",
    "comments",
    "journal_ref",
    "doi",
    "report_no",
    "license",
    "msc_class",
    "acm_class",
    "submitter",
    "code_url",
    "project_url",
    "organization_slug",
    "withdrawn",
    "imported_upvotes",
)
_scalar_values = operator.itemgetter(*SCALAR_FIELDS)
# Fields copied straight from a record when it provides them.
_COPIED = (
    "title",
    "abstract",
    "ai_summary",
    "ai_summary_model",
    "comments",
    "journal_ref",
    "doi",
    "report_no",
    "license",
    "msc_class",
    "acm_class",
    "submitter",
)
_copied_values = operator.attrgetter(*_COPIED)
_WITHDRAWN_RE = re.compile(
    r"\b(?:this (?:paper|article|submission) (?:has been|is) withdrawn)", re.I
)
EXTRACTED = "extracted"


@dataclass(slots=True)
class PaperState:
    """A paper as the catalog holds it (or will, once written)."""

    arxiv_id: str
    fields: dict[str, Any]
    authors: list[tuple[str, str | None]] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    versions: dict[int, tuple[datetime | None, str | None]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def content_hash(self) -> str:
        # Datetimes are hashed as their isoformat() (orjson hands them to _isoformat), tuples
        # as lists: the same bytes as converting field by field first, in fewer Python steps.
        fields = self.fields
        try:
            scalars: Any = _scalar_values(fields)
        except KeyError:  # a state built without every field
            scalars = [fields.get(name) for name in SCALAR_FIELDS]
        payload = [
            scalars,
            self.authors,
            self.categories,
            sorted((n, at, size) for n, (at, size) in self.versions.items()),
        ]
        data = orjson.dumps(payload, default=_isoformat, option=orjson.OPT_PASSTHROUGH_DATETIME)
        return hashlib.md5(data, usedforsecurity=False).hexdigest()

    def copy(self) -> PaperState:
        return PaperState(
            self.arxiv_id,
            dict(self.fields),
            list(self.authors),
            list(self.categories),
            dict(self.versions),
            dict(self.sources),
        )


def _isoformat(value: Any) -> str:
    if isinstance(value, date | time):
        return value.isoformat()
    raise TypeError(f"cannot hash {type(value).__name__}")


def empty_state(arxiv_id: str) -> PaperState:
    return PaperState(arxiv_id=arxiv_id, fields=dict.fromkeys(SCALAR_FIELDS))


def merge_record(state: PaperState | None, record: PaperRecord) -> PaperState:
    """The paper after applying ``record`` to ``state`` (``None``: a paper new to the catalog)."""
    merged = empty_state(record.arxiv_id) if state is None else state.copy()
    fields = merged.fields
    sources = merged.sources
    source = record.source
    current = fields.get("latest_version")
    if record.versions:
        newest: int | None = max(v.number for v in record.versions)
    else:
        newest = record.version
    if record.version is not None and newest is not None:
        newest = max(newest, record.version)
    authoritative = newest is None or current is None or newest >= current
    _merge_versions(merged, record)

    def put(name: str, value: Any) -> None:
        if value is None or (not authoritative and fields.get(name) is not None):
            return
        fields[name] = value
        sources[name] = source

    for name, value in zip(_COPIED, _copied_values(record), strict=True):
        if value is not None and (authoritative or fields.get(name) is None):
            fields[name] = value
            sources[name] = source
    put("primary_category", record.primary_category or next(iter(record.categories), None))
    put("withdrawn", record.withdrawn)
    put("imported_upvotes", record.upvotes)
    if record.organization is not None:
        put("organization_slug", record.organization.slug)
    if record.authors and (authoritative or not merged.authors):
        merged.authors = [(a.name, a.affiliation) for a in record.authors]
        sources["authors"] = source
    if record.categories and (authoritative or not merged.categories):
        merged.categories = list(dict.fromkeys(record.categories))
        sources["categories"] = source
    _merge_dates(merged, record, put)
    _merge_links(merged, record)
    if fields.get("withdrawn") is None and _WITHDRAWN_RE.search(fields.get("comments") or ""):
        fields["withdrawn"] = True
        sources["withdrawn"] = EXTRACTED
    return merged


def _merge_versions(merged: PaperState, record: PaperRecord) -> None:
    for version in record.versions:
        old_at, old_size = merged.versions.get(version.number, (None, None))
        merged.versions[version.number] = (
            version.submitted_at or old_at,
            version.size or old_size,
        )
    if record.version is not None and record.version not in merged.versions:
        at = record.updated_at if record.version > 1 else record.published_at
        merged.versions[record.version] = (at, None)
    if merged.versions:
        latest = max(merged.versions)
        current = merged.fields.get("latest_version")
        merged.fields["latest_version"] = max(latest, current or 0)


def _merge_dates(merged: PaperState, record: PaperRecord, put: Any) -> None:
    first = merged.versions.get(1, (None, None))[0]
    put("published_at", first or record.published_at)
    latest = merged.fields.get("latest_version")
    latest_at = merged.versions.get(latest, (None, None))[0] if latest else None
    put("updated_at", latest_at or record.updated_at)
    if merged.fields.get("published_at") is None:
        merged.fields["published_at"] = merged.fields.get("updated_at")


def _merge_links(merged: PaperState, record: PaperRecord) -> None:
    """Explicit links from a source win; otherwise links are extracted from the text."""
    found = None
    for name in ("code_url", "project_url"):
        explicit = getattr(record, name)
        if explicit:
            merged.fields[name] = explicit
            merged.sources[name] = record.source
            continue
        if merged.sources.get(name, EXTRACTED) != EXTRACTED and merged.fields.get(name):
            continue
        if found is None:
            found = extract_links(merged.fields.get("abstract"), merged.fields.get("comments"))
        value = getattr(found, name)
        merged.fields[name] = value
        if value:
            merged.sources[name] = EXTRACTED
        else:
            merged.sources.pop(name, None)
