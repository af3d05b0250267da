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
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from papertide.catalog.ids import parse_arxiv_id
from papertide.catalog.records import Author, PaperRecord, RecordError, Version
from papertide.errors import InvalidInput
from papertide.ingest.files import open_binary

FORMAT = "abs"

_SEPARATOR = "\\\\"  # the line "\\" that frames the header and the abstract
_DASHES = b"-" * 10

# ----------------------------------------------------------------------------------------------
# Shared rules (used by the Kaggle parser too)


def clean_text(value: object) -> str | None:
    """Collapse runs of whitespace (newlines included) to one space and strip; empty → None."""
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())
    return text or None


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
    return datetime(
        int(parts[2]), _MONTHS[parts[1]], int(parts[0]), hour, minute, second, tzinfo=UTC
    )


# TeX accents → Unicode combining marks (composed afterwards with NFC).
_ACCENT_MARKS = {
    "'": "\u0301",
    "`": "\u0300",
    "^": "\u0302",
    '"': "\u0308",
    "~": "\u0303",
    "=": "\u0304",
    ".": "\u0307",
    "u": "\u0306",
    "v": "\u030c",
    "H": "\u030b",
    "c": "\u0327",
    "k": "\u0328",
    "r": "\u030a",
    "d": "\u0323",
    "b": "\u0331",
}
_ACCENT = re.compile(
    r"""\\(?:(?P<sym>['`^"~=.])|(?P<word>[uvHckrdb])(?![A-Za-z]))\s*"""
    r"""(?:\{\s*(?P<braced>\\[ij]|[A-Za-z])\s*\}|(?P<bare>\\[ij](?![A-Za-z])|[A-Za-z]))"""
)
_TEX_LETTERS = {
    "ss": "ß",
    "ae": "æ",
    "AE": "Æ",
    "oe": "œ",
    "OE": "Œ",
    "aa": "å",
    "AA": "Å",
    "o": "ø",
    "O": "Ø",
    "l": "ł",
    "L": "Ł",
    "i": "ı",
    "j": "ȷ",
}
_TEX_LETTER = re.compile(r"\\(ss|ae|AE|oe|OE|aa|AA|o|O|l|L|i|j)(?![A-Za-z])(?:\{\}| (?=\w))?")
_BRACED_CHAR = re.compile(r"\{(\w)\}")


def _accent(match: re.Match[str]) -> str:
    base = match.group("braced") or match.group("bare")
    base = base[1] if base.startswith("\\") else base  # \'\i is an accented i
    return base + _ACCENT_MARKS[match.group("sym") or match.group("word")]


def tex_to_unicode(text: str) -> str:
    """Turn TeX accents and letters (``Bal\\'azs``, ``\\v{S}``, ``{\\O}bro``) into Unicode (NFC).

    Braces left around a single character (``{á}``) go too. Other TeX is left as it is.
    """
    if "\\" in text:
        text = _ACCENT.sub(_accent, text)
        text = _TEX_LETTER.sub(lambda m: _TEX_LETTERS[m.group(1)], text)
        text = unicodedata.normalize("NFC", text)
    if "{" in text:
        text = _BRACED_CHAR.sub(r"\1", text)
    return text


_TRAILING_ET_AL = re.compile(r"\s+et\.?\s+al\.?$")


def clean_name(name: str) -> str:
    """The final form of a person's name, whatever the source: Unicode, no TeX, single spaces.

    ``C. -P. Yuan`` (how arXiv's own splitter spaces ``C.-P.``) becomes ``C.-P. Yuan``, and a
    trailing "et al." (``B. Jones et al.``, with no comma before it) goes.
    """
    if "\\" in name or "{" in name or "~" in name:
        name = tex_to_unicode(name).replace("~", " ")
        name = " ".join(name.replace("{", "").replace("}", "").split())
    if ". -" in name:
        name = name.replace(". -", ".-")
    if " et al" in name:
        name = _TRAILING_ET_AL.sub("", name)
    return name


def clean_affiliation(text: str) -> str | None:
    affiliation = clean_text(text)
    if affiliation is not None and "\\" in affiliation:
        affiliation = tex_to_unicode(affiliation)
    return affiliation


_DOT_NO_SPACE = re.compile(r"(?<!\\)\.(?=\S)")


def _tidy_name(name: str) -> str:
    """arXiv's spacing of a name: one space after each initial (``J.P.Hague`` → ``J. P. Hague``)."""
    return clean_name(_DOT_NO_SPACE.sub(". ", " ".join(name.split())))


_SPACES = re.compile(r"\s+")
_AND = re.compile(r",?\s+(?:and|&)\s")
_NAME_SEPARATORS = re.compile(r"\s*[,:;]\s*")
_NAME_GOES_ON = re.compile(r"\s*([^\s,:;()]+)(?:\s*[,:;]|\s+(?:and|&)\s|\s*$)")
_ET_AL = re.compile(r"et\.?\s+al\.?", re.IGNORECASE)
_SUFFIX = re.compile(r"(?:Jr|Sr)\.?|I{2,3}|IV")
_COLLABORATION = re.compile(r"\b(?:collaboration|group|team)\b", re.IGNORECASE)
_REFERENCES = re.compile(r"\d+(?:\s*(?:,|and|&)\s*\d+)*")
_TABLE_ENTRY = re.compile(r"\(\s*(\d+)\s*\)")


@dataclass(slots=True)
class _Entry:
    name: str
    affiliations: list[str] = field(default_factory=list)


def _top_level_blocks(line: str) -> list[str]:
    """Split into text and top-level ``(...)`` blocks; nested parentheses stay in their block."""
    blocks: list[str] = []
    depth, start = 0, 0
    for index, char in enumerate(line):
        if char == "(":
            if depth == 0:
                blocks.append(line[start:index])
                start = index
            depth += 1
        elif char == ")" and depth > 0:
            depth -= 1
            if depth == 0:
                blocks.append(line[start : index + 1])
                start = index + 1
    blocks.append(line[start:])
    return [block for block in blocks if block.strip()]


def _affiliation_table(blocks: list[str]) -> dict[str, str]:
    """A closing ``((1) Univ A, (2) Univ B)`` block (taken off ``blocks``): affiliations by
    number."""
    if not blocks or not blocks[-1].startswith("(") or not blocks[-1][1:].lstrip().startswith("("):
        return {}
    inner = blocks.pop()[1:-1] if blocks[-1].endswith(")") else blocks.pop()[1:]
    parts = _TABLE_ENTRY.split(inner)  # ["", "1", " Univ A, ", "2", " Univ B"]
    table: dict[str, str] = {}
    for number, text in zip(parts[1::2], parts[2::2], strict=True):
        affiliation = clean_affiliation(text.rstrip(" \t\n.,;"))
        if affiliation:
            table[number] = affiliation
    return table


def _names_in(text: str) -> tuple[list[str], bool]:
    """The names in a stretch of the line between parentheses (split at commas, colons,
    semicolons, "and", "&"), and whether it ends with a name rather than a separator."""
    pieces = [
        piece.strip() for piece in _NAME_SEPARATORS.split(_AND.sub(",", _SPACES.sub(" ", text)))
    ]
    names: list[str] = []
    for piece in pieces:
        if not piece:
            continue
        if names and _SUFFIX.fullmatch(piece):
            names[-1] = f"{names[-1]}, {piece}"  # "John Smith, Jr." is one name
        else:
            names.append(piece)
    return names, bool(pieces[-1])


def _affiliations_of(block: str, table: dict[str, str]) -> list[str]:
    inner = block[1:-1] if block.endswith(")") else block[1:]
    if _REFERENCES.fullmatch(inner.strip()):
        return [table[ref] for ref in re.findall(r"\d+", inner) if ref in table]
    affiliation = clean_affiliation(inner)
    return [affiliation] if affiliation else []


def _continues_name(text: str) -> str | None:
    """The word that completes a name around a parenthesis, as ``Liang`` in ``Zhe (Rita) Liang,
    ...``: text going on with one word and no separator before it."""
    match = _NAME_GOES_ON.match(text)
    return match.group(1) if match and match.group(1) not in ("and", "&") else None


def _entries(blocks: list[str], table: dict[str, str]) -> list[_Entry]:
    entries: list[_Entry] = []
    owner: _Entry | None = None  # the name right before a "(": it is that name's affiliation
    attached: tuple[_Entry, str] | None = None  # the last "(...)" and the name it went to
    for block in blocks:
        if block.startswith("("):
            attached = (owner, block) if owner is not None else None
            if owner is not None:
                owner.affiliations = _affiliations_of(block, table)
            owner = None
            continue
        word = _continues_name(block) if attached else None
        owner = None
        if attached and word:
            entry, paren = attached
            entry.name = f"{entry.name} {paren} {word}"  # "Zhe (Rita) Liang": a nickname
            entry.affiliations = []
            block = block.split(word, 1)[1]
            owner = entry if not block.strip() else None
        attached = None
        names, ends_with_name = _names_in(block)
        new = [_Entry(name) for name in names if not _ET_AL.fullmatch(name)]
        entries.extend(new)
        if new and ends_with_name:
            owner = new[-1]
    return entries


def _back_propagate(entries: list[_Entry]) -> None:
    """``A, B (Univ)`` means both are at Univ: copy affiliations to the names before, as arXiv
    does, but not onto collaborations named at the start."""
    first = 0
    while first < len(entries) and _COLLABORATION.search(entries[first].name):
        first += 1
    last: list[str] = []
    for entry in reversed(entries[first:]):
        if entry.affiliations:
            last = entry.affiliations
        elif last:
            entry.affiliations = list(last)


def split_authors(line: str) -> list[Author]:
    """Split an Authors line as arXiv does: names separated by commas, colons, "and" and "&"
    (and semicolons); a parenthesis right after a name is its affiliation (numbers refer to a
    closing ``((1) ..., (2) ...)`` table), and an affiliation also covers the names before it
    that have none. ``et al`` is dropped. Names get arXiv's spacing after initials, then
    :func:`clean_name`. Beyond arXiv: a parenthesis inside a name (``Zhe (Rita) Liang``) stays
    in the name, and TeX thin spaces (``\\,``) are spaces.
    """
    if "\\," in line:
        line = line.replace("\\,", " ")  # TeX thin space
    blocks = _top_level_blocks(line)
    table = _affiliation_table(blocks)
    entries = _entries(blocks, table)
    _back_propagate(entries)
    authors = []
    for entry in entries:
        name = _tidy_name(entry.name)
        if name:
            authors.append(Author(name, "; ".join(entry.affiliations) or None))
    return authors


_ANGLE_ADDRESS = re.compile(r"\s*<[^>]*>\s*")
_PAREN_NAME = re.compile(r"^\S+@\S+\s*\((.*)\)$")


def submitter_name(value: str | None) -> str | None:
    """The name from a ``From:`` value (``Name <address>``, ``"Name" <address>``, ``address
    (Name)``), or a submitter field, as :func:`clean_name` gives it; no name → None."""
    text = clean_text(value)
    if text is None:
        return None
    match = _PAREN_NAME.match(text)
    if match:
        text = match.group(1)
    elif "<" in text:
        text = _ANGLE_ADDRESS.sub(" ", text)
    elif "@" in text and " " not in text:
        return None  # a bare address
    text = clean_text(text.strip().strip('"'))
    return clean_name(text) if text else None


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
    for raw in lines:
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
    return [version for version, _ in versions], withdrawn


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
    categories = header.get("Categories", "").split()
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
    except EOFError:
        yield RecordError(position, "file ends early (truncated gzip)")
        return
    yield record
