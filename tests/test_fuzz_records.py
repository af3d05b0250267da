"""Hostile input for the record sources read from files: Kaggle JSON lines, arXiv .abs files,
the HF JSON Feed (and its JSON-lines timeline) and the HF API's JSON. Random bytes, the
fixtures damaged byte by byte, JSON with members deleted, duplicated or of the wrong type,
.abs files with lines lost, repeated or filled with odd values; streams mixing good and bad
records. Each file gives well-formed records and RecordErrors naming the file (and the line
or item), never another exception; and a bad record never costs the good ones around it.
(Through the runner into a real database: tests/test_fuzz_ingest.py.)"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from fuzz_strategies import (
    FIXTURES,
    HOSTILE_DATES,
    HUGE,
    TZ,
    almost_ids,
    check_items,
    check_parse,
    dump_json,
    fuzz_settings,
    gzipped,
    hostile_text,
    mutated_bytes,
    mutated_json,
    packings,
    parse_file,
)
from hypothesis import given
from hypothesis import strategies as st

from papertide.ingest import abs as abs_files
from papertide.ingest import hf_api, hf_jsonfeed, kaggle
from papertide.ingest.formats import FORMATS, Format, detect_format

KAGGLE_LINES = (FIXTURES / "kaggle/arxiv-metadata-oai-snapshot.json").read_bytes().splitlines()
ABS_FILES = sorted((FIXTURES / "abs").rglob("*.abs"))[::20]
TIMELINE = FIXTURES / "hf/markert/derived_hf_papers_timeline.excerpt.jsonl"
HF_FEEDS = (
    "hf/markert/history/2025-07-07/hf_papers.json",
    "hf/markert/history/2025-04-03/hf_papers.json",
)
HF_API_DOCUMENTS = (
    "hf/api/daily_papers_2025-05-02.json",
    "hf/api/paper_2505.01234.json",
    "hf/mwoedlinger/papers.excerpt.json",
)
HF_API_LINES = FIXTURES / "hf/api/daily_papers.jsonl"

# Each format's sample files, whole (bytes) for byte-level damage.
SAMPLES: dict[str, list[bytes]] = {
    "kaggle": [
        b"\n".join(KAGGLE_LINES[:12]),
        (FIXTURES / "kaggle/malformed.jsonl").read_bytes(),
    ],
    "abs": [path.read_bytes() for path in ABS_FILES],
    "hf-jsonfeed": [(FIXTURES / name).read_bytes() for name in HF_FEEDS] + [TIMELINE.read_bytes()],
    "hf-api": [(FIXTURES / name).read_bytes() for name in HF_API_DOCUMENTS]
    + [HF_API_LINES.read_bytes()],
}
# Starts that lead each sniffer and parser into its format before the random rest.
HEADS = (
    b"",
    b'{"id": "',
    b'{"arxiv_id": "2501.00001", "date_published": 1, "n_snapshots": 1}\n',
    b'{"version": "https://jsonfeed.org/version/1", "title": "Hugging Face Papers", "items": [',
    b'[{"paper": {"id": "2501.00001"}}, ',
    b'{"2312.17653": {',
    b"-" * 78 + b"\n\\\\\narXiv:2501.00001\n",
)


def _lines(data: bytes) -> list[Any]:
    return [orjson.loads(line) for line in data.splitlines() if line.strip()]


@pytest.mark.parametrize("name", sorted(SAMPLES))
@fuzz_settings(60)
@given(head=st.sampled_from(HEADS), data=st.binary(max_size=1500))
def test_random_bytes(name: str, head: bytes, data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "input.json"
    check_parse(FORMATS[name], path, head + data)
    detected = detect_format(path)  # never raises either
    if detected is not None:
        check_items(list(detected.parse(path, TZ)), str(path), detected.FORMAT)


@pytest.mark.parametrize("name", sorted(SAMPLES))
@fuzz_settings(80)
@given(data=st.data())
def test_damaged_bytes(name: str, data: st.DataObject, tmp_path: Path) -> None:
    base = data.draw(st.sampled_from(SAMPLES[name]))
    damaged = data.draw(mutated_bytes(base))
    check_parse(FORMATS[name], tmp_path / "input.json", gzipped(damaged, data.draw(packings)))


# --- JSON structure ------------------------------------------------------------------------------

# (format, template, how the mutated value becomes a file: alone, or among good lines)
JSON_CASES: dict[str, tuple[Format, Any, str]] = {
    "kaggle line": (kaggle, orjson.loads(KAGGLE_LINES[0]), "line"),
    "timeline line": (hf_jsonfeed, _lines(TIMELINE.read_bytes())[0], "line"),
    "hf api line": (hf_api, _lines(HF_API_LINES.read_bytes())[0], "line"),
    **{
        name: (hf_jsonfeed, orjson.loads((FIXTURES / name).read_bytes()), "document")
        for name in HF_FEEDS
    },
    **{
        name: (hf_api, orjson.loads((FIXTURES / name).read_bytes()), "document")
        for name in HF_API_DOCUMENTS
    },
}


@pytest.mark.parametrize("case", sorted(JSON_CASES))
@fuzz_settings(100)
@given(data=st.data())
def test_damaged_json(case: str, data: st.DataObject, tmp_path: Path) -> None:
    fmt, template, shape = JSON_CASES[case]
    mutated = data.draw(mutated_json(template, max_ops=4))
    if shape == "line":
        good = dump_json(template)
        lines = [good, mutated, good] if data.draw(st.booleans()) else [mutated, good]
        mutated = b"\n".join(line.replace(b"\n", b" ") for line in lines)
    check_parse(fmt, tmp_path / "input.json", gzipped(mutated, data.draw(packings)))


# --- .abs structure ------------------------------------------------------------------------------

DATE_KEYS = (
    "Date",
    "Date (revised v2)",
    "Date (revised)",
    "Date (revised v9999999999)",
    "Date (v2)",
)
SIZES = ("15kb", "15kb,I", "", "x" * 40, "15kb,D,I,X")


@st.composite
def mutated_abs(draw: st.DrawFn, text: str) -> bytes:
    """An .abs file with lines deleted or repeated, header values replaced by odd text, odd
    Date lines and ids, stray lines; in UTF-8 (perhaps invalid), Latin-1 or UTF-16."""
    lines = text.split("\n")
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(0, len(lines) - 1)))
        op = draw(st.sampled_from(["delete", "duplicate", "value", "date", "id", "line"]))
        if op == "delete" and lines:
            del lines[at]
        elif op == "duplicate" and lines:
            lines.insert(at, lines[at])
        elif op == "value" and lines:
            key = lines[at].partition(":")[0]
            lines[at] = f"{key}: {draw(hostile_text())}"
        elif op == "date":
            date = draw(st.sampled_from(HOSTILE_DATES))
            size = draw(st.sampled_from(SIZES))
            lines.insert(at, f"{draw(st.sampled_from(DATE_KEYS))}: {date}   ({size})")
        elif op == "id":
            lines.insert(at, f"{draw(st.sampled_from(['arXiv', 'Paper']))}:{draw(almost_ids())}")
        else:
            lines.insert(at, draw(hostile_text()))
    document = "\n".join(lines)
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "latin-1", "utf-16"]))
    errors = "surrogatepass" if encoding == "utf-8" else "replace"
    return document.encode(encoding, errors)


@fuzz_settings(150)
@given(data=st.data())
def test_damaged_abs(data: st.DataObject, tmp_path: Path) -> None:
    path = data.draw(st.sampled_from(ABS_FILES))
    document = data.draw(mutated_abs(path.read_text("utf-8", "replace")))
    records = check_parse(abs_files, tmp_path / "x.abs", gzipped(document, data.draw(packings)))
    assert len(records) <= 1


# --- mixed good and bad records ------------------------------------------------------------------


def _set(value: dict[str, Any], path: str, new: Any) -> dict[str, Any]:
    """A copy of ``value`` with the member at dotted ``path`` set (or deleted, for ...)."""
    value = copy.deepcopy(value)
    *parents, last = path.split(".")
    node = value
    for key in parents:
        node = node[key]
    if new is ...:
        node.pop(last, None)
    else:
        node[last] = new
    return value


@dataclass(frozen=True)
class Stream:
    """Records of one shape: a good one with a given id, and bad ones (each must be an error)."""

    fmt: Format
    template: dict[str, Any]
    id_path: str
    id_form: str
    bad: tuple[Callable[[dict[str, Any]], Any], ...]
    shape: str  # "lines", "array" (a JSON array) or "feed" (a JSON Feed's items)
    # harmless oddities a good record may carry and still be read
    odd: tuple[Callable[[dict[str, Any]], dict[str, Any]], ...] = ()

    def good(self, ident: str, odd: int) -> dict[str, Any]:
        value = _set(self.template, self.id_path, self.id_form.format(ident))
        return self.odd[odd](value) if odd < len(self.odd) else value


_KAGGLE = orjson.loads(KAGGLE_LINES[1])
_TIMELINE = _lines(TIMELINE.read_bytes())[0]
_ENTRY = _lines(HF_API_LINES.read_bytes())[0]
_FEED_ITEM = orjson.loads((FIXTURES / HF_FEEDS[0]).read_bytes())["items"][0]
_NOT_JSON = b'{"id": "2501.0'
YEAR_ONE = "Mon, 2 Apr 0001 00:00:00 GMT"
V1_DATE = "Mon, 2 Apr 2007 19:18:42 GMT"
FEED_HEAD = b'{"version": "https://jsonfeed.org/version/1", "title": "Hugging Face Papers", '

STREAMS = {
    "kaggle": Stream(
        kaggle,
        _KAGGLE,
        "id",
        "{}",
        (
            lambda r: _NOT_JSON,
            lambda r: [r],
            lambda r: _set(r, "id", "0704.00x1"),
            lambda r: _set(r, "title", ...),
            lambda r: _set(r, "title", ["a", "list"]),
            lambda r: _set(r, "versions", [{"version": "v1", "created": "yesterday"}]),
            lambda r: _set(r, "versions", [{"version": "v1", "created": YEAR_ONE}]),
            lambda r: _set(r, "versions", [{"version": "v99999999999", "created": V1_DATE}]),
            lambda r: _set(r, "versions", r["versions"] + r["versions"][:1]),
            lambda r: _set(r, "categories", "cs.CL not/a:category"),
        ),
        "lines",
        (
            lambda r: _set(r, "abstract", "NUL\x00inside"),
            lambda r: _set(r, "authors_parsed", ...),
            lambda r: _set(r, "abstract", HUGE),
            lambda r: _set(r, "categories", "cs.CL cs.CL"),
            lambda r: _set(r, "doi", 10),
        ),
    ),
    "hf timeline": Stream(
        hf_jsonfeed,
        _TIMELINE,
        "arxiv_id",
        "{}",
        (
            lambda r: _NOT_JSON,
            lambda r: "a string",
            lambda r: _set(_set(r, "arxiv_id", "2501.1"), "id", "1"),
            lambda r: _set(r, "best_rank", 0),
            lambda r: _set(r, "best_rank", 2**40),
            lambda r: _set(r, "date_published", "yesterday"),
            lambda r: _set(r, "date_published", "9999-12-31T23:59:59-12:00"),
            lambda r: _set(r, "title", "\ud800 lone"),  # orjson refuses lone surrogates
        ),
        "lines",
        (lambda r: _set(r, "title", "NUL\x00"), lambda r: _set(r, "content_text", 7)),
    ),
    "hf api lines": Stream(
        hf_api,
        _ENTRY,
        "paper.id",
        "{}",
        (
            lambda r: _NOT_JSON,
            lambda r: _set(r, "paper.id", "2505.1234"),
            lambda r: _set(r, "paper.id", 2505.01234),
            lambda r: _set(r, "publishedAt", "yesterday"),
            lambda r: _set(r, "paper.publishedAt", "0001-01-01T00:00:00+14:00"),
            lambda r: _set(r, "organization", {"name": "x" * 200}),
        ),
        "lines",
        (lambda r: _set(r, "paper.upvotes", 10**30), lambda r: _set(r, "paper.authors", "x")),
    ),
    "hf api array": Stream(
        hf_api,
        _ENTRY,
        "paper.id",
        "{}",
        (
            lambda r: None,
            lambda r: _set(r, "paper.id", "hep-th/99010011"),
            lambda r: _set(r, "publishedAt", "2025-13-01"),
        ),
        "array",
        (lambda r: _set(r, "paper.title", {"not": "text"}),),
    ),
    "hf feed": Stream(
        hf_jsonfeed,
        _FEED_ITEM,
        "id",
        "https://huggingface.co/papers/{}",
        (
            lambda r: "a string",
            lambda r: _set(r, "id", "1"),
            lambda r: _set(r, "date_published", "2025-02-30T00:00:00"),
            lambda r: _set(r, "date_published", "0001-01-01T00:00:00+14:00"),
        ),
        "feed",
        (lambda r: _set(r, "content_text", ["x"]),),
    ),
}


def stream_file(stream: Stream, values: list[Any]) -> bytes:
    encoded = [v if isinstance(v, bytes) else dump_json(v) for v in values]
    if stream.shape == "lines":
        return b"\n".join(encoded) + b"\n"
    body = b"[" + b", ".join(encoded) + b"]"
    if stream.shape == "array":
        return body
    return FEED_HEAD + b'"items": ' + body + b"}"


def stream_case(
    stream: Stream, kinds: list[tuple[int, int]], prefixes: tuple[str, str] = ("2501", "2502")
) -> tuple[bytes, set[str], set[int], set[str]]:
    """A file of good and bad records (kind -1: good, with oddity ``odd``); the good ids, the
    places (line numbers or item indexes) of the bad ones, and the ids they would have had.
    Good ids start with ``prefixes[0]``, bad ones with ``prefixes[1]``."""
    values: list[Any] = []
    good: set[str] = set()
    bad_places: set[int] = set()
    bad_ids: set[str] = set()
    for index, (kind, odd) in enumerate(kinds):
        if kind < 0:
            ident = f"{prefixes[0]}.{index + 1:05d}"
            good.add(ident)
            values.append(stream.good(ident, odd))
        else:
            ident = f"{prefixes[1]}.{index + 1:05d}"
            bad_ids.add(ident)
            bad_places.add(index + 1 if stream.shape == "lines" else index)
            values.append(stream.bad[kind](stream.good(ident, len(stream.odd))))
    return stream_file(stream, values), good, bad_places, bad_ids


def error_place(position: str, shape: str) -> int:
    """The line number (``path:12``) or item index (``path item 3 (...)``) of an error."""
    if shape == "lines":
        return int(position.rsplit(":", 1)[1].split()[0])
    return int(position.split(" item ")[1].split()[0])


def stream_kinds(stream: Stream) -> st.SearchStrategy[list[tuple[int, int]]]:
    kind = st.integers(-1, len(stream.bad) - 1)
    return st.lists(st.tuples(kind, st.integers(0, len(stream.odd))), min_size=1, max_size=10)


@pytest.mark.parametrize("name", sorted(STREAMS))
@fuzz_settings(80)
@given(data=st.data())
def test_bad_records_never_cost_good_ones(name: str, data: st.DataObject, tmp_path: Path) -> None:
    stream = STREAMS[name]
    document, good, bad_places, _bad_ids = stream_case(stream, data.draw(stream_kinds(stream)))
    path = tmp_path / "input.json"
    packing = data.draw(st.sampled_from(["plain", "gzip"]))
    items = parse_file(stream.fmt, path, gzipped(document, packing))
    records, errors = check_items(items, str(path), stream.fmt.FORMAT)
    assert {record.arxiv_id for record in records} == good
    assert len(records) == len(good)
    if not good and [e.position for e in errors] == [str(path)]:
        return  # nothing readable at all: one error for the whole file will do
    assert {error_place(e.position, stream.shape) for e in errors} == bad_places, errors
    assert len(errors) == len(bad_places), errors
