r"""arXiv ``.abs`` files: the metadata arXiv keeps for each paper, one paper per file.

The runner walks a tree of them (``ftp/arxiv/papers/0704/0704.0001.abs``,
``ftp/hep-th/papers/9901/9901001.abs``, and earlier versions as ``orig/.../2101.04061v1.abs``);
:func:`parse` reads one file. A file looks like this (UTF-8; a few old ones are Latin-1)::

    ------------------------------------------------------------------------------
    \\
    arXiv:0704.0001
    From: Pavel Nadolsky <hidden@example.org>
    Date: Mon, 2 Apr 2007 19:18:42 GMT   (443kb)
    Date (revised v2): Tue, 24 Jul 2007 20:10:27 GMT   (370kb)

    Title: Calculation of prompt diphoton production cross sections at Tevatron and
      LHC energies
    Authors: C. Bal\'azs, E. L. Berger, P. M. Nadolsky, C.-P. Yuan
    Categories: hep-ph
    Comments: 37 pages, 15 figures; published version
    Report-no: ANL-HEP-PR-07-12
    Journal-ref: Phys.Rev.D76:013009,2007
    DOI: 10.1103/PhysRevD.76.013009
    \\
      A fully differential calculation in perturbative quantum chromodynamics is
    presented for the production of massive photon pairs at hadron colliders. ...
    \\

A dashed line, a ``\\`` line, ``Key: value`` header lines (continuations are indented; other
keys are License, MSC-class, ACM-class, Proxy; very old files say ``Paper:`` for ``arXiv:``),
a ``\\`` line, the abstract, a closing ``\\`` line. Each ``Date`` line is one version, with its
size and flags in parentheses: ``(377kb,D)``; the flag ``I`` on the latest version means the paper
was withdrawn. Orig files carry only the versions up to their own. Categories is missing in some
old orig files.

The rules shared with the Kaggle snapshot (which copies these fields from the same files) live
here, so both formats give the same record: :func:`clean_text`, :func:`clean_doi`,
:func:`parse_arxiv_date`, :func:`split_authors` (the Authors line the way arXiv splits it),
:func:`clean_name`, :func:`submitter_name` and :func:`version_summary`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from papertide.catalog.ids import parse_arxiv_id
from papertide.catalog.records import (
    PaperRecord,
    RecordError,
    Version,
    arxiv_categories,
    checked_date,
)
from papertide.errors import InvalidInput
from papertide.ingest.arxiv_names import clean_text, split_authors, submitter_name
from papertide.ingest.files import DAMAGED_GZIP, open_binary

FORMAT = "abs"

_SEPARATOR = "\\\\"  # the line "\\" that frames the header and the abstract
_DASHES = b"-" * 10

# ----------------------------------------------------------------------------------------------
# Shared rules (used by the Kaggle parser too)


_DOI_PREFIX = re.compile(r"(?:doi:\s*|https?://(?:dx\.)?doi\.org/)", re.IGNORECASE)


def clean_doi(value: object) -> str | None:
    """A DOI field without a ``doi:`` or ``https://doi.org/`` prefix (``.abs`` files have some)."""
    text = clean_text(value)
    if text is not None and not text.startswith("10."):
        text = _DOI_PREFIX.sub("", text) or None
    return text


_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


def parse_arxiv_date(text: str) -> datetime:
    """``Mon, 2 Apr 2007 19:18:42 GMT`` (the weekday is optional) as an aware UTC datetime.

    Raises ValueError for anything else.
    """
    parts = text.split()
    if parts and parts[0].endswith(","):
        parts = parts[1:]
    if len(parts) != 5 or parts[4] not in ("GMT", "UTC") or parts[1] not in _MONTHS:
        raise ValueError(f"{text!r} is not an arXiv date (like 'Mon, 2 Apr 2007 19:18:42 GMT')")
    hour, minute, second = map(int, parts[3].split(":"))
    return checked_date(
        datetime(int(parts[2]), _MONTHS[parts[1]], int(parts[0]), hour, minute, second, tzinfo=UTC)
    )


MAX_VERSION = 9999  # as many digits as an id's version suffix may have (catalog.ids)
MAX_SIZE_LENGTH = 32  # paper_versions.size


def checked_versions(versions: Iterable[Version]) -> list[Version]:
    """``versions`` sorted by number; ValueError for a number repeated or out of range, or a
    size that is no size."""
    ordered = sorted(versions, key=lambda version: version.number)
    seen: set[int] = set()
    for version in ordered:
        if not 1 <= version.number <= MAX_VERSION:
            raise ValueError(f"version number {version.number} is out of range (1-{MAX_VERSION})")
        if version.number in seen:
            raise ValueError(f"version v{version.number} is given twice")
        seen.add(version.number)
        if version.size is not None and len(version.size) > MAX_SIZE_LENGTH:
            raise ValueError(f"version size {version.size[:40]!r} is not a size like '15kb'")
    return ordered


def version_summary(
    versions: list[Version],
) -> tuple[int | None, datetime | None, datetime | None]:
    """(latest version number, v1 date, latest version's date) of versions sorted by number."""
    if not versions:
        return None, None, None
    first = versions[0].submitted_at if versions[0].number == 1 else None
    return versions[-1].number, first, versions[-1].submitted_at


# ----------------------------------------------------------------------------------------------
# The .abs format


def sniff(head: bytes) -> bool:
    """A dashed line, then (after the ``\\`` line) an ``arXiv:`` or ``Paper:`` header."""
    lines = head.lstrip(b"\xef\xbb\xbf\r\n").split(b"\n", 4)
    if len(lines) < 2 or not lines[0].startswith(_DASHES) or lines[0].strip(b"-\r "):
        return False
    return any(line.startswith((b"arXiv:", b"Paper:")) for line in lines[1:4])


class _Malformed(Exception):
    """The file is not a readable .abs record; the message is the reason."""


@dataclass(slots=True)
class _Fields:
    header: dict[str, str] = field(default_factory=dict)
    dates: list[tuple[str, str]] = field(default_factory=list)  # (key, value) in file order
    abstract: list[str] = field(default_factory=list)


def _decoded_lines(lines: Iterable[bytes]) -> Iterator[str]:
    """Each line as text (UTF-8, else Latin-1), without NUL characters: no column holds them."""
    for raw in lines:
        if b"\x00" in raw:
            raw = raw.replace(b"\x00", b"")
        try:
            yield raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            yield raw.decode("latin-1").rstrip("\r\n")


def _add_field(fields: _Fields, key: str, value: str) -> None:
    if key.startswith("Date"):
        fields.dates.append((key, value))
    else:
        fields.header.setdefault(key, value)


def _read_header(lines: Iterator[str], fields: _Fields) -> None:
    """``Key: value`` lines up to the next ``\\`` line; indented lines continue the last value."""
    key, value = "", ""
    for line in lines:
        if line == _SEPARATOR:
            break
        if line[:1] in (" ", "\t") and key:
            value = f"{value}\n{line}"
            continue
        if key:
            _add_field(fields, key, value)
        name, colon, rest = line.partition(":")
        key, value = (name.strip(), rest.strip()) if colon and line.strip() else ("", "")
    if key:
        _add_field(fields, key, value)


def _read_fields(lines: Iterator[str]) -> _Fields:
    first = next(lines, None)
    if first is None:
        raise _Malformed("empty file")
    if not first.startswith("-" * 10):
        raise _Malformed(f"not an .abs file (starts with {first[:40]!r})")
    for line in lines:
        if line == _SEPARATOR:
            break
        if line.strip():  # no "\\" line before the header: tolerate it
            lines = itertools.chain([line], lines)
            break
    fields = _Fields()
    _read_header(lines, fields)
    for line in lines:
        if line == _SEPARATOR:
            break
        fields.abstract.append(line)
    return fields


_REVISED = re.compile(r"Date \(revised(?: v(\d+))?\)")


def _versions(dates: list[tuple[str, str]]) -> tuple[list[Version], bool]:
    """Versions from the Date lines, and whether the latest one is withdrawn (flag ``I``)."""
    versions: list[tuple[Version, list[str]]] = []
    for key, value in dates:
        revised = _REVISED.fullmatch(key)
        if key == "Date":
            number = 1
        elif revised:
            number = int(revised.group(1) or len(versions) + 1)
        else:
            raise ValueError(f"unknown date line {key!r}")
        stamp, _, size_part = value.partition("(")
        size, *flags = (item.strip() for item in size_part.rstrip(") ").split(","))
        versions.append((Version(number, parse_arxiv_date(stamp), size or None), flags))
    versions.sort(key=lambda item: item[0].number)
    withdrawn = bool(versions) and "I" in versions[-1][1]
    return checked_versions(version for version, _ in versions), withdrawn


def _record(fields: _Fields, position: str) -> PaperRecord:
    header = fields.header
    raw_id = header.get("arXiv") or header.get("Paper")
    if not raw_id:
        raise ValueError("no arXiv: line")
    arxiv_id = parse_arxiv_id(raw_id)
    title = clean_text(header.get("Title"))
    if title is None:
        raise ValueError(f"{arxiv_id.id}: no title")
    versions, withdrawn = _versions(fields.dates)
    latest, published_at, updated_at = version_summary(versions)
    categories = arxiv_categories(header.get("Categories", "").split())
    return PaperRecord(
        arxiv_id=arxiv_id.id,
        source=FORMAT,
        position=position,
        version=arxiv_id.version or latest,
        title=title,
        abstract=clean_text("\n".join(fields.abstract)),
        authors=split_authors(header.get("Authors", "")),
        categories=categories,
        primary_category=categories[0] if categories else None,
        published_at=published_at,
        updated_at=updated_at,
        versions=versions,
        comments=clean_text(header.get("Comments")),
        journal_ref=clean_text(header.get("Journal-ref")),
        doi=clean_doi(header.get("DOI")),
        report_no=clean_text(header.get("Report-no")),
        license=clean_text(header.get("License")),
        msc_class=clean_text(header.get("MSC-class")),
        acm_class=clean_text(header.get("ACM-class")),
        submitter=submitter_name(header.get("From")),
        withdrawn=withdrawn if versions else None,
    )


def parse(path: Path, tz: ZoneInfo) -> Iterator[PaperRecord | RecordError]:
    """The one paper in the .abs file ``path``, or a RecordError saying why it is unreadable.

    Raises OSError only when the file itself cannot be read. ``tz`` is unused (dates are GMT).
    """
    position = str(path)
    try:
        with open_binary(path) as handle:
            fields = _read_fields(_decoded_lines(handle))
        record = _record(fields, position)
    except (_Malformed, InvalidInput, ValueError) as exc:
        yield RecordError(position, getattr(exc, "message", None) or str(exc))
        return
    except DAMAGED_GZIP:
        yield RecordError(position, "file ends early (truncated or damaged gzip)")
        return
    yield record
