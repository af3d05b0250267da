"""Hostile inputs for the fuzz tests (tests/test_fuzz_*.py), and the property every parser keeps.

Inputs come in two kinds: anything at all (random bytes and text), and the real fixtures of
tests/fixtures mutated with knowledge of their structure: JSON with members deleted,
duplicated or given values of the wrong type, XML with elements removed, duplicated, renamed
into other namespaces or filled with odd text, and bytes truncated, spliced, or sprinkled with
NUL bytes, invalid UTF-8, entity tricks and huge or deeply nested runs.

The property (:func:`check_items`): a parser yields only PaperRecords and RecordErrors. A record
is one the catalog can store on either engine (a normalised arXiv id, values of the right types
and within the columns' limits, no NUL or lone surrogate in any text, dates in range); an error
names its position (starting with the file it came from) and a reason.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import re
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from papertide.catalog.ids import ArxivId, parse_arxiv_id
from papertide.catalog.records import (
    EARLIEST_DATE,
    LATEST_DATE,
    MAX_NUMBER,
    Author,
    Listing,
    OrganizationRef,
    PaperRecord,
    RecordError,
    Version,
)
from papertide.ingest.formats import Format

TZ = ZoneInfo("America/New_York")
FIXTURES = Path(__file__).parent / "fixtures"
# A normalised arXiv id, ASCII only (ids become URLs, file names and API path parameters).
NORMAL_ID = re.compile(r"(?:\d{4}\.\d{4,5}|[a-z]+(?:-[a-z]+)*(?:\.[A-Z]{2})?/\d{7})", re.ASCII)
# Column limits of the catalog tables (papertide/db/schema.py) that PostgreSQL enforces.
CATEGORY_LIMIT, SIZE_LIMIT, SLUG_LIMIT = 64, 32, 100


# Examples per test: the counts below by default; set the variable for a longer run
# (PAPERTIDE_TEST_FUZZ_SCALE=10 pytest tests/test_fuzz_*.py runs ten times as many).
SCALE = float(os.environ.get("PAPERTIDE_TEST_FUZZ_SCALE", "1"))


def fuzz_settings(max_examples: int, deadline_ms: int | None = 5000) -> settings:
    """Settings for a fuzz test: a bounded run, a deadline per example (an input that makes a
    parser crawl fails the test; generous, as the test machines are shared) and no complaints
    about large or slow-to-generate inputs, which are the point here."""
    return settings(
        max_examples=max(1, round(max_examples * SCALE)),
        deadline=None if deadline_ms is None else timedelta(milliseconds=deadline_ms),
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


# --- hostile values ----------------------------------------------------------------------------

HUGE = "x" * 200_000
HOSTILE_TEXT = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "tail \udfff",
    "\u202eevil",
    "\ufeff",
    "\u0661\u0662\u0663",
    "<script>alert(1)</script>",
    "&amp;&lt;",
    "]]>",
    "\n\t\r",
    HUGE,
    "9" * 400,
)
HOSTILE_DATES = (
    "9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01",
    "9999-12-31",
    "1899-12-31T23:59:59Z",
    "3000-01-01T00:00:00Z",
    "2025-02-30T00:00:00Z",
    "2025-13-01",
    "2025-05-01T25:00:00Z",
    "yesterday",
    "",
    "Fri, 31 Dec 9999 23:00:00 -1200",
    "Mon, 1 Jan 0001 00:00:00 +1400",
    "Mon, 2 Apr 0001 00:00:00 GMT",
    "Mon, 2 Apr 99999 19:18:42 GMT",
    "Mon, 2 Apr 2007 99:18:42 GMT",
    "Mon, 2 Apr 2007 19:18 GMT",
)
HOSTILE_NUMBERS = (0, -1, 2**31, 2**63, 10**30, 1.5, 1e308, float("nan"), float("inf"))
HOSTILE_CHUNKS = (
    b"\x00",
    b"\xff",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"\xef\xbb\xbf",
    b"<",
    b"&",
    b"&#0;",
    b"&#xD800;",
    b"]]>",
    b"<!--",
    b'"',
    b"{",
    b"}",
    b"[",
    b",",
    b":",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"\n",
    b"\r\n",
    b"A" * 70_000,
    b"[" * 3_000,
    b"<a>" * 3_000,
)
DEEP_JSON = "\u2063deep-json\u2063"  # replaced by deeply nested arrays after serialising
DEEP_XML = "\u2063deep-xml\u2063"  # replaced by deeply nested elements after serialising


def hostile_text() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=40))


def xml_safe_text() -> st.SearchStrategy[str]:
    """Text ElementTree can serialise (it cannot encode lone surrogates)."""
    return st.one_of(
        st.sampled_from([t for t in HOSTILE_TEXT if not re.search("[\ud800-\udfff]", t)]),
        st.sampled_from(HOSTILE_DATES),
        st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
        st.just(DEEP_XML),
    )


# --- arXiv ids ---------------------------------------------------------------------------------

ARCHIVES = ("hep-th", "math", "cond-mat", "astro-ph", "q-bio", "cs", "math.GT", "physics")


@st.composite
def valid_ids(draw: st.DrawFn) -> str:
    """A normalised arXiv id, new or old style, possibly with a version."""
    if draw(st.booleans()):
        year = draw(st.integers(7, 99))
        month = draw(st.integers(4 if year == 7 else 1, 12))
        digits = 5 if year >= 15 else 4
        number = draw(st.integers(1, 10**digits - 1))
        ident = f"{year:02d}{month:02d}.{number:0{digits}d}"
    else:
        year = draw(st.sampled_from([91, 95, 99, 0, 3, 7]))
        month = draw(st.integers(1, 12))
        archive, number = draw(st.sampled_from(ARCHIVES)), draw(st.integers(1, 999))
        ident = f"{archive}/{year:02d}{month:02d}{number:03d}"
    version = draw(st.one_of(st.none(), st.integers(1, 9999)))
    return f"{ident}v{version}" if version else ident


ID_PREFIXES = (
    "arXiv:",
    "ARXIV:",
    "oai:arXiv.org:",
    "https://arxiv.org/abs/",
    "http://export.arxiv.org/abs/",
    "arxiv.org/pdf/",
    "https://huggingface.co/papers/",
)
_DIGIT_SETS = ("٠١٢٣٤٥٦٧٨٩", "０１２３４５６７８９", "०१२३४५६७८९", "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗")


def _foreign_digits(ident: str, digits: str) -> str:
    return ident.translate(str.maketrans("0123456789", digits))


@st.composite
def almost_ids(draw: st.DrawFn) -> str:
    """A valid id with one thing wrong: a month 00 or 13, the wrong number of digits, a
    version v0, digits of another script, a look-alike letter, junk around it."""
    ident = draw(valid_ids())
    mutations = [
        lambda s: re.sub(r"^(\d\d)\d\d", r"\g<1>13", s),
        lambda s: re.sub(r"^(\d\d)\d\d", r"\g<1>00", s),
        lambda s: re.sub(r"(/\d\d)\d\d", r"\g<1>13", s),
        lambda s: re.sub(r"\.(\d{4,5})", lambda m: "." + m.group(1)[:-1], s),
        lambda s: re.sub(r"\.(\d{4,5})", lambda m: "." + m.group(1) + "0", s),
        lambda s: re.sub(r"v\d+$", "", s) + "v0",
        lambda s: re.sub(r"v\d+$", "", s) + "v01",
        lambda s: re.sub(r"v\d+$", "", s) + "v99999",
        lambda s: _foreign_digits(s, draw(st.sampled_from(_DIGIT_SETS))),
        lambda s: s.replace("e", "е").replace("a", "а"),  # Cyrillic look-alikes
        lambda s: s.upper(),
        lambda s: s.replace(".", "·").replace("/", "∕"),
        lambda s: s + draw(st.sampled_from(["x", " x", "\x00", "/", "//", "v", ".pdf.pdf", "\n1"])),
        lambda s: draw(st.sampled_from(["x", "\x00", " ", "/", "arXiv", "arxiv:arxiv:"])) + s,
        lambda s: draw(st.sampled_from(ID_PREFIXES)) + s + draw(st.sampled_from(["?", "#", "/x"])),
    ]
    return str(draw(st.sampled_from(mutations))(ident))


# --- the property ------------------------------------------------------------------------------


def check_text(value: object, what: str, *, limit: int | None = None) -> None:
    """None or a non-empty string the database can store."""
    if value is None:
        return
    assert isinstance(value, str), f"{what} is {type(value).__name__}: {value!r:.80}"
    assert value, f"{what} is an empty string (None means absent)"
    assert "\x00" not in value, f"{what} holds a NUL character: {value!r:.80}"
    value.encode("utf-8")  # a lone surrogate raises here
    if limit is not None:
        assert len(value) <= limit, f"{what} longer than its column ({limit}): {value!r:.80}"


def check_number(value: object, what: str, low: int) -> None:
    if value is None:
        return
    assert type(value) is int, f"{what} is {type(value).__name__}: {value!r}"
    assert low <= value <= MAX_NUMBER, f"{what} out of range: {value}"


def check_moment(value: object, what: str) -> None:
    if value is None:
        return
    assert isinstance(value, datetime), f"{what} is {type(value).__name__}"
    assert value.utcoffset() == timedelta(0), f"{what} is not UTC: {value!r}"
    assert EARLIEST_DATE <= value < LATEST_DATE, f"{what} out of range: {value}"
    value.astimezone(TZ)  # pages show it in the site's zone


TEXT_FIELDS = (
    *("title", "abstract", "comments", "journal_ref", "doi", "report_no", "license"),
    *("msc_class", "acm_class", "submitter", "ai_summary", "ai_summary_model"),
    *("code_url", "project_url"),
)


def check_record(record: PaperRecord, origin: str, source: str) -> None:
    assert NORMAL_ID.fullmatch(record.arxiv_id), f"arxiv_id {record.arxiv_id!r}"
    assert parse_arxiv_id(record.arxiv_id) == ArxivId(record.arxiv_id)
    assert record.source == source
    assert record.position.startswith(origin), f"position {record.position!r}"
    check_number(record.version, "version", 1)
    for name in TEXT_FIELDS:
        check_text(getattr(record, name), name)
    assert isinstance(record.authors, list)
    for author in record.authors:
        assert isinstance(author, Author)
        assert author.name, "an author without a name"
        check_text(author.name, "author name")
        check_text(author.affiliation, "affiliation")
    assert isinstance(record.categories, list)
    assert len(set(record.categories)) == len(record.categories), record.categories
    for category in record.categories:
        check_text(category, "category", limit=CATEGORY_LIMIT)
        assert category and not any(c.isspace() for c in category), repr(category)
    if record.primary_category is not None:
        assert record.categories and record.primary_category == record.categories[0]
    check_moment(record.published_at, "published_at")
    check_moment(record.updated_at, "updated_at")
    assert isinstance(record.versions, list)
    numbers = [version.number for version in record.versions]
    assert len(set(numbers)) == len(numbers), f"versions repeat: {numbers}"
    for version in record.versions:
        assert isinstance(version, Version)
        check_number(version.number, "version number", 1)
        check_moment(version.submitted_at, "version date")
        check_text(version.size, "version size", limit=SIZE_LIMIT)
    check_number(record.upvotes, "upvotes", 0)
    assert record.withdrawn in (None, True, False)
    if record.organization is not None:
        assert isinstance(record.organization, OrganizationRef)
        assert record.organization.slug and record.organization.name
        check_text(record.organization.slug, "organization slug", limit=SLUG_LIMIT)
        check_text(record.organization.name, "organization name")
        check_text(record.organization.avatar_url, "organization avatar")
    if record.listing is not None:
        assert isinstance(record.listing, Listing)
        assert type(record.listing.day) is date
        assert EARLIEST_DATE.date() <= record.listing.day < LATEST_DATE.date()
        check_number(record.listing.position, "listing position", 0)
        check_text(record.listing.submitter_name, "listing submitter")
        check_text(record.listing.comment, "listing comment")


def check_error(error: RecordError, origin: str) -> None:
    assert isinstance(error.position, str) and error.position.startswith(origin), error
    assert isinstance(error.reason, str) and error.reason.strip(), error
    assert "Traceback" not in error.reason


def check_items(
    items: list[PaperRecord | RecordError], origin: str, source: str
) -> tuple[list[PaperRecord], list[RecordError]]:
    """Check every item; the records and the errors, in order."""
    records: list[PaperRecord] = []
    errors: list[RecordError] = []
    for item in items:
        if isinstance(item, PaperRecord):
            check_record(item, origin, source)
            records.append(item)
        else:
            assert isinstance(item, RecordError), f"neither a record nor an error: {item!r:.200}"
            check_error(item, origin)
            errors.append(item)
    return records, errors


def parse_file(fmt: Format, path: Path, data: bytes) -> list[PaperRecord | RecordError]:
    path.write_bytes(data)
    return list(fmt.parse(path, TZ))


def check_parse(fmt: Format, path: Path, data: bytes) -> list[PaperRecord]:
    """Write ``data`` to ``path``, parse it as ``fmt`` and check the property; the records."""
    records, _errors = check_items(parse_file(fmt, path, data), str(path), fmt.FORMAT)
    return records


# --- bytes ---------------------------------------------------------------------------------


@st.composite
def mutated_bytes(draw: st.DrawFn, base: bytes, max_ops: int = 4) -> bytes:
    """``base`` truncated, with slices deleted or duplicated, or hostile chunks inserted."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, max_ops))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["truncate", "delete", "duplicate", "insert", "insert"]))
        if op == "truncate":
            del data[at:]
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 200))]
        elif op == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(1, 400))]
        else:
            data[at:at] = draw(st.sampled_from(HOSTILE_CHUNKS))
    return bytes(data)


def gzipped(data: bytes, how: str) -> bytes:
    """``data`` as it is, gzip-compressed, or compressed and cut short."""
    if how == "plain":
        return data
    packed = gzip.compress(data)
    return packed if how == "gzip" else packed[: max(2, len(packed) * 2 // 3)]


packings = st.sampled_from(["plain", "plain", "gzip", "gzip-truncated"])


# --- JSON --------------------------------------------------------------------------------------


def hostile_values() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.sampled_from(HOSTILE_NUMBERS),
        st.sampled_from(HOSTILE_TEXT),
        st.sampled_from(HOSTILE_DATES),
        almost_ids(),
        st.text(max_size=30),
        st.sampled_from([[], {}, [None], {"name": None}, [[["x"]]], {"id": {"id": {}}}]),
        st.lists(st.text(max_size=5), max_size=3),
        st.just(DEEP_JSON),
    )


def _slots(value: Any) -> list[tuple[Any, Any]]:
    """(container, key or index) of every value inside ``value``."""
    found: list[tuple[Any, Any]] = []
    stack = [value]
    while stack:
        node = stack.pop()
        keys = list(node) if isinstance(node, dict) else range(len(node))
        for key in keys:
            found.append((node, key))
            if isinstance(node[key], dict | list):
                stack.append(node[key])
    return found


def dump_json(value: Any, ascii_only: bool = True) -> bytes:
    """JSON text of ``value`` (lone surrogates kept as escapes, or as invalid UTF-8), with
    :data:`DEEP_JSON` expanded to arrays nested 5,000 deep."""
    text = json.dumps(value, ensure_ascii=ascii_only)
    marker = json.dumps(DEEP_JSON, ensure_ascii=ascii_only)
    text = text.replace(marker, "[" * 5000 + "]" * 5000)
    return text.encode("utf-8", "surrogatepass")


@st.composite
def mutated_json_value(draw: st.DrawFn, value: Any, max_ops: int = 3) -> Any:
    """``value`` with members deleted, duplicated or replaced by hostile values."""
    value = copy.deepcopy(value)
    for _ in range(draw(st.integers(1, max_ops))):
        slots = _slots(value)
        if not slots:
            return draw(hostile_values())
        container, key = draw(st.sampled_from(slots))
        op = draw(st.sampled_from(["delete", "replace", "replace", "duplicate", "wrap"]))
        if op == "delete":
            del container[key]
        elif op == "replace":
            container[key] = draw(hostile_values())
        elif op == "wrap":
            container[key] = draw(st.sampled_from([[container[key]], {"value": container[key]}]))
        elif isinstance(container, list):
            container.insert(key, copy.deepcopy(container[key]))
        else:
            container[key + "_"] = copy.deepcopy(container[key])
    return value


def mutated_json(value: Any, max_ops: int = 3) -> st.SearchStrategy[bytes]:
    return st.builds(dump_json, mutated_json_value(value, max_ops), st.booleans())


# --- XML ---------------------------------------------------------------------------------------

XML_ATTRIBUTES = ("term", "href", "rel", "title", "status", "code", "version", "cursor")
FOREIGN_NS = "{http://example.org/unexpected}"


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


@st.composite
def mutated_xml(draw: st.DrawFn, base: bytes, max_ops: int = 3) -> bytes:
    """The XML document ``base`` with elements removed, duplicated, moved to another or no
    namespace, given odd text or attributes, or nested 5,000 deep."""
    root = ET.fromstring(base)  # our own fixtures: trusted
    for _ in range(draw(st.integers(1, max_ops))):
        parents = {child: parent for parent in root.iter() for child in parent}
        target = draw(st.sampled_from(list(root.iter())))
        op = draw(
            st.sampled_from(["remove", "duplicate", "text", "text", "attribute", "rename", "child"])
        )
        parent = parents.get(target)
        if op == "remove" and parent is not None:
            parent.remove(target)
        elif op == "duplicate" and parent is not None:
            parent.insert(list(parent).index(target), copy.deepcopy(target))
        elif op == "attribute":
            target.set(draw(st.sampled_from(XML_ATTRIBUTES)), draw(xml_safe_text()))
        elif op == "rename":
            local = _local(target.tag)
            target.tag = draw(st.sampled_from([FOREIGN_NS + local, local, local.upper()]))
        elif op == "child":
            tag = draw(st.sampled_from([c.tag for c in root.iter()]))
            ET.SubElement(target, tag).text = draw(xml_safe_text())
        else:
            target.text = draw(xml_safe_text())
    data = ET.tostring(root, encoding="unicode")
    data = data.replace(DEEP_XML, "<d>" * 5000 + "x" + "</d>" * 5000)
    return data.encode("utf-8")
