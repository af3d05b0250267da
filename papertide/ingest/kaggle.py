"""The Kaggle arXiv metadata snapshot (``arxiv-metadata-oai-snapshot.json``): JSON lines.

One paper per line (``.json``/``.jsonl``, or gzip of either), copied from arXiv's ``.abs``
files::

    {"id": "0704.0001", "submitter": "Pavel Nadolsky",
     "authors": "C. Bal\\\\'azs, E. L. Berger, P. M. Nadolsky, C.-P. Yuan",
     "title": "Calculation of prompt diphoton ... at Tevatron and\\n  LHC energies",
     "comments": "37 pages, 15 figures; published version",
     "journal-ref": "Phys.Rev.D76:013009,2007", "doi": "10.1103/PhysRevD.76.013009",
     "report-no": "ANL-HEP-PR-07-12", "categories": "hep-ph",
     "license": null, "abstract": "  A fully differential calculation ...\\n",
     "versions": [{"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}, ...],
     "update_date": "2008-11-26",
     "authors_parsed": [["Bal\\u00e1zs", "C.", ""], ["Berger", "E. L.", ""], ...]}

``authors_parsed`` is arXiv's own split of ``authors`` ([last, first, suffix, affiliation...],
TeX accents already in Unicode); names become "First Last Suffix". It is used for plain lines
only: where ``authors`` has parentheses (affiliations), TeX, semicolons, suffixes or
collaborations, the line is split again with the .abs rules, as arXiv's split loses numbered
affiliations (``Smith (1), Jones (2) ((1) Univ A, (2) Univ B)``), takes nicknames for
affiliations and converts TeX a little differently. Everything shared with the .abs format
(whitespace, dates, names, DOIs, submitter) uses the functions in :mod:`papertide.ingest.abs`,
so both give the same record for the same paper. The snapshot has no version sizes, MSC/ACM
classes or withdrawn flag: those stay None.

The file is streamed line by line with orjson; a bad line gives a RecordError for
``path:line`` and the next line is read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from papertide.catalog.ids import parse_arxiv_id
from papertide.catalog.records import Author, PaperRecord, RecordError, Version, arxiv_categories
from papertide.errors import InvalidInput
from papertide.ingest.abs import checked_versions, clean_doi, parse_arxiv_date, version_summary
from papertide.ingest.arxiv_names import (
    clean_affiliation,
    clean_name,
    clean_text,
    split_authors,
    submitter_name,
)
from papertide.ingest.files import DAMAGED_GZIP, open_binary

FORMAT = "kaggle"

_KAGGLE_KEYS = (b'"journal-ref"', b'"report-no"', b'"authors_parsed"', b'"update_date"')
_SNIFF_LINES = 5
# Authors lines where arXiv's split (authors_parsed) and the .abs rules can differ: split again.
_RESPLIT = re.compile(r"[(;\\]|\b(?:Sr|II|III|IV)\b|(?i:collaboration|group|team)")


def sniff(head: bytes) -> bool:
    """A JSON object per line whose first line (or, when that one is damaged, one of the next
    few) has ``id`` and the snapshot's own keys."""
    lines = head.lstrip(b"\xef\xbb\xbf \t\r\n").split(b"\n", _SNIFF_LINES)[:_SNIFF_LINES]
    return any(
        line.startswith(b"{") and b'"id"' in line and sum(key in line for key in _KAGGLE_KEYS) >= 2
        for line in lines
    )


def _versions(raw: Any) -> list[Version]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError("versions is not a list")
    versions = []
    for entry in raw:
        label = entry["version"]
        if not isinstance(label, str) or not label.startswith("v"):
            raise ValueError(f"bad version {label!r}")
        versions.append(Version(int(label[1:]), parse_arxiv_date(entry["created"])))
    return checked_versions(versions)


def _author(entry: list[str]) -> Author:
    """``[last, first, suffix, affiliation...]`` as "First Last Suffix"."""
    parts = (entry[1], entry[0], entry[2]) if len(entry) >= 3 else reversed(entry)
    name = clean_name(" ".join(part for part in parts if part))
    if len(entry) <= 3:
        return Author(name)
    affiliations = [text for text in map(clean_affiliation, entry[3:]) if text]
    return Author(name, "; ".join(affiliations) or None)


def _authors(data: dict[str, Any]) -> list[Author]:
    line = data.get("authors")
    parsed = data.get("authors_parsed")
    if isinstance(line, str) and (
        not isinstance(parsed, list) or not parsed or _RESPLIT.search(line)
    ):
        return split_authors(line)
    if not isinstance(parsed, list):
        return []
    return [author for author in map(_author, parsed) if author.name]


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return clean_text(value) if value else None


def _record(data: dict[str, Any], position: str) -> PaperRecord:
    raw_id = data.get("id")
    if not isinstance(raw_id, str):
        raise ValueError("no id")
    arxiv_id = parse_arxiv_id(raw_id)
    title = _text(data, "title")
    if title is None:
        raise ValueError(f"{arxiv_id.id}: no title")
    versions = _versions(data.get("versions"))
    latest, published_at, updated_at = version_summary(versions)
    raw_categories = data.get("categories")
    categories = arxiv_categories(raw_categories.split() if isinstance(raw_categories, str) else [])
    return PaperRecord(
        arxiv_id=arxiv_id.id,
        source=FORMAT,
        position=position,
        version=arxiv_id.version or latest,
        title=title,
        abstract=_text(data, "abstract"),
        authors=_authors(data),
        categories=categories,
        primary_category=categories[0] if categories else None,
        published_at=published_at,
        updated_at=updated_at,
        versions=versions,
        comments=_text(data, "comments"),
        journal_ref=_text(data, "journal-ref"),
        doi=clean_doi(data.get("doi")),
        report_no=_text(data, "report-no"),
        license=_text(data, "license"),
        submitter=submitter_name(data.get("submitter")),
    )


def _parse_line(line: bytes, position: str) -> PaperRecord | RecordError:
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return RecordError(position, f"not JSON: {exc}")
    if not isinstance(data, dict):
        return RecordError(position, f"not a JSON object but {type(data).__name__}")
    try:
        return _record(data, position)
    except InvalidInput as exc:
        return RecordError(position, exc.message)
    except ValueError as exc:
        return RecordError(position, str(exc))
    except (TypeError, KeyError, IndexError, AttributeError) as exc:
        return RecordError(position, f"unexpected structure ({type(exc).__name__}: {exc})")


def parse(path: Path, tz: ZoneInfo) -> Iterator[PaperRecord | RecordError]:
    """Each line of ``path`` as a PaperRecord, or a RecordError at ``path:line``; blank lines
    are skipped. Raises OSError only when the file cannot be read. ``tz`` is unused."""
    prefix = f"{path}:"
    lineno = 0
    with open_binary(path) as handle:
        try:
            for lineno, line in enumerate(handle, 1):
                if line.isspace():
                    continue
                yield _parse_line(line, f"{prefix}{lineno}")
        except DAMAGED_GZIP:
            yield RecordError(f"{prefix}{lineno + 1}", "file ends mid-record (truncated gzip)")
