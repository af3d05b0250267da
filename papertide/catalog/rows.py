"""Catalog states as table rows, for both engines: tuples in column order, values in the form
the target expects (Python objects for SQLAlchemy Core, stored form for the SQLite fast path)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Protocol

from papertide.catalog.merge import SCALAR_FIELDS, PaperState, merge_record
from papertide.catalog.records import PaperRecord


class ValueForm(Protocol):
    """How timestamps, booleans and JSON are given to the database."""

    def timestamp(self, value: datetime | None) -> Any: ...

    def boolean(self, value: bool) -> Any: ...

    def json(self, value: dict[str, str]) -> Any: ...


class NaiveDatetime(ValueError):
    """A naive datetime where a timezone-aware one is required (the Core path reports it)."""


class PythonValues:
    """Column values as Python objects, for SQLAlchemy Core (PostgreSQL, and updates)."""

    @staticmethod
    def timestamp(value: datetime | None) -> Any:
        return value

    @staticmethod
    def boolean(value: bool) -> Any:
        return value

    @staticmethod
    def json(value: dict[str, str]) -> Any:
        return value


class SqliteValues:
    """Column values as SQLAlchemy's SQLite types store them.

    ``UTCDateTime``: naive UTC text ``YYYY-MM-DD HH:MM:SS.ffffff``; ``Boolean``: 0/1; ``JSON``:
    ``json.dumps`` text. A naive datetime raises :class:`NaiveDatetime` (the Core path then
    raises the error users see).
    """

    def __init__(self) -> None:
        self._json: dict[tuple[tuple[str, str], ...], str] = {}

    @staticmethod
    def timestamp(value: datetime | None) -> Any:
        if value is None:
            return None
        tz = value.tzinfo
        if tz is None:
            raise NaiveDatetime(value)
        if tz is not UTC:
            value = value.astimezone(UTC)
        # isoformat of an aware UTC datetime: "YYYY-MM-DDTHH:MM:SS.ffffff+00:00", 4-digit year.
        text = value.isoformat(" ", "microseconds")
        return text[:26]

    @staticmethod
    def boolean(value: bool) -> Any:
        return 1 if value else 0

    def json(self, value: dict[str, str]) -> Any:
        # field_sources come in few shapes ({"title": "kaggle", ...}): remember their text.
        try:
            key = tuple(value.items())
            text = self._json.get(key)
        except TypeError:  # unhashable values: not a shape worth remembering
            return json.dumps(value)
        if text is None:
            text = json.dumps(value)
            if len(self._json) < 4096:
                self._json[key] = text
        return text


PYTHON_VALUES = PythonValues()
SQLITE_VALUES = SqliteValues()

# The paper columns a record sets directly: the merge's scalar fields but those the writer
# derives (organization id from the slug, withdrawn as a boolean, the upvote totals).
PAPER_COLUMNS = tuple(
    name
    for name in SCALAR_FIELDS
    if name not in {"organization_slug", "withdrawn", "imported_upvotes"}
)


# Columns of a new paper's row: paper_values, then created_at and modified_at (on SQLite the pk
# comes first: the writer assigns it).
INSERT_COLUMNS = (
    "arxiv_id",
    "title",
    "abstract",
    "authors_text",
    "author_count",
    *PAPER_COLUMNS[2:],
    "organization_id",
    "withdrawn",
    "imported_upvotes",
    "upvotes",
    "field_sources",
    "content_hash",
    "created_at",
    "modified_at",
)
# Of those, the ones an update rewrites (upvotes move by the imported difference instead).
UPDATE_COLUMNS = tuple(c for c in INSERT_COLUMNS if c not in ("arxiv_id", "upvotes", "created_at"))
AUTHOR_COLUMNS = ("paper_id", "position", "name", "affiliation")
CATEGORY_COLUMNS = ("paper_id", "position", "category")
VERSION_COLUMNS = ("paper_id", "version", "submitted_at", "size")


def paper_values(
    state: PaperState, digest: str, org_ids: dict[str, int], values: ValueForm
) -> tuple[Any, ...]:
    """The paper's row in INSERT_COLUMNS order, but for the last two (created_at, modified_at):
    the writer appends the batch's time."""
    get = state.fields.get
    authors = state.authors
    slug = get("organization_slug")
    imported = get("imported_upvotes") or 0
    return (
        state.arxiv_id,
        get("title"),
        get("abstract") or "",
        ", ".join([name for name, _ in authors]),
        len(authors),
        get("ai_summary"),
        get("ai_summary_model"),
        get("primary_category"),
        values.timestamp(get("published_at")),
        values.timestamp(get("updated_at")),
        get("latest_version"),
        get("comments"),
        get("journal_ref"),
        get("doi"),
        get("report_no"),
        get("license"),
        get("msc_class"),
        get("acm_class"),
        get("submitter"),
        get("code_url"),
        get("project_url"),
        org_ids.get(slug) if slug else None,
        values.boolean(bool(get("withdrawn"))),
        imported,
        imported,
        values.json(state.sources),
        digest,
    )


def version_values(state: PaperState, values: ValueForm) -> list[tuple[Any, ...]]:
    """(version, submitted_at, size) of each version: a version row but for its paper_id."""
    timestamp = values.timestamp
    return [(n, timestamp(at), size) for n, (at, size) in state.versions.items()]


@dataclass(frozen=True, slots=True)
class AsNew:
    """A record, and the paper it makes if new to the catalog, merged ahead of writing.

    Bulk ingestion does this in the parser thread, off the writing thread: the writer takes
    ``state`` and ``digest`` when the paper is indeed new, and merges ``record`` itself
    otherwise, so the outcome is the same either way. ``row`` and ``versions`` are the paper's
    and its versions' values (see paper_values, version_values) in the form ``form``, when
    computed ahead.
    """

    record: PaperRecord
    state: PaperState
    digest: str
    form: ValueForm | None = None
    row: tuple[Any, ...] | None = None
    versions: list[tuple[Any, ...]] | None = None


def merge_as_new(record: PaperRecord, form: ValueForm | None = None) -> AsNew:
    """Merge ``record`` as a new paper; with ``form``, also compute its row values ahead
    (not for papers with an organization, whose id only the database knows)."""
    state = merge_record(None, record)
    digest = state.content_hash()
    if form is None or state.fields.get("organization_slug") is not None:
        return AsNew(record, state, digest)
    try:
        row = paper_values(state, digest, {}, form)
        versions = version_values(state, form)
    except NaiveDatetime:
        return AsNew(record, state, digest)  # the writer reports it
    return AsNew(record, state, digest, form, row, versions)


Rows = list[tuple[Any, ...]]


def record_of(item: PaperRecord | AsNew) -> PaperRecord:
    return item.record if isinstance(item, AsNew) else item


def computed_ahead(
    ahead: Mapping[str, AsNew], state: PaperState, values: ValueForm
) -> AsNew | None:
    """The AsNew whose row values are ``state``'s in form ``values``, if one was computed."""
    found = ahead.get(state.arxiv_id)
    if found is None or found.state is not state or found.form is not values:
        return None
    return found


def child_rows(
    states: list[PaperState],
    paper_ids: dict[str, int],
    values: ValueForm,
    ahead: Mapping[str, AsNew] = MappingProxyType({}),
) -> tuple[Rows, Rows, Rows]:
    """Author, category and version rows (tuples in column order) of the given papers."""
    authors: Rows = []
    categories: Rows = []
    versions: Rows = []
    for state in states:
        pk = paper_ids[state.arxiv_id]
        authors.extend(
            [(pk, i, name, affiliation) for i, (name, affiliation) in enumerate(state.authors)]
        )
        categories.extend([(pk, i, category) for i, category in enumerate(state.categories)])
        found = computed_ahead(ahead, state, values) if ahead else None
        version_rows = found.versions if found is not None else None
        if version_rows is None:
            version_rows = version_values(state, values)
        versions.extend([(pk, *version) for version in version_rows])
    return authors, categories, versions
