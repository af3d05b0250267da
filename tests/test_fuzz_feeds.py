"""Hostile input for the XML sources: the arXiv API's Atom, the listing feeds (RSS and Atom)
and OAI-PMH. Random bytes, the fixtures damaged byte by byte and element by element, entity
tricks, and documents mixing good and bad entries. Each file gives well-formed records and
RecordErrors naming the file (and the entry), never another exception; the parser behind the
live fetchers raises only our own errors; entity expansion and external entities are refused;
and a bad entry never costs the good ones around it."""

from __future__ import annotations

import copy
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fuzz_strategies import (
    FIXTURES,
    HOSTILE_DATES,
    check_items,
    check_parse,
    fuzz_settings,
    gzipped,
    mutated_bytes,
    mutated_xml,
    packings,
    parse_file,
)
from hypothesis import example, given
from hypothesis import strategies as st

from papertide.catalog.records import PaperRecord
from papertide.errors import PapertideError
from papertide.ingest import arxiv_atom, arxiv_rss, oai_pmh
from papertide.ingest.formats import Format
from papertide.ingest.polite_http import retry_after_seconds

ATOM_NS = "{http://www.w3.org/2005/Atom}"
OAI_NS = "{http://www.openarchives.org/OAI/2.0/}"
META_NS = "{http://arxiv.org/OAI/arXiv/}"


def _set_text(element: ET.Element, path: str, value: str) -> None:
    found = element.find(path)
    assert found is not None, path
    found.text = value


def _remove(element: ET.Element, path: str) -> None:
    for parent in element.iter():
        for child in list(parent):
            if child in element.findall(path):
                parent.remove(child)


@dataclass(frozen=True)
class XmlSource:
    """One XML format: its fixtures, where its entries are, and how to make an entry good (with
    a given id) or bad (in ways that must give a RecordError)."""

    fmt: Format
    fixtures: tuple[str, ...]
    container: Callable[[ET.Element], ET.Element]
    entry_tag: str
    entry_word: str  # how error positions name an entry: "entry 3", "item 3", "record 3"
    set_id: Callable[[ET.Element, str], None]
    breakers: tuple[Callable[[ET.Element], None], ...]
    bytes_parser: Callable[[bytes, str], Any]

    def document(self, number: int = 0) -> bytes:
        return (FIXTURES / self.fixtures[number]).read_bytes()


def _atom_id(entry: ET.Element, ident: str) -> None:
    _set_text(entry, f"{ATOM_NS}id", f"http://arxiv.org/abs/{ident}v1")


def _listing_id(entry: ET.Element, ident: str) -> None:
    guid = entry.find("guid")
    if guid is None:
        _set_text(entry, f"{ATOM_NS}id", f"oai:arXiv.org:{ident}v1")
    else:
        guid.text = f"oai:arXiv.org:{ident}v1"


def _listing_no_id(entry: ET.Element) -> None:
    for path in ("guid", "link", "description", f"{ATOM_NS}id", f"{ATOM_NS}summary"):
        _remove(entry, path)
    for link in entry.findall(f"{ATOM_NS}link"):
        entry.remove(link)


def _oai_id(record: ET.Element, ident: str) -> None:
    _set_text(record, f"{OAI_NS}header/{OAI_NS}identifier", f"oai:arXiv.org:{ident}")
    _set_text(record, f"{OAI_NS}metadata/{META_NS}arXiv/{META_NS}id", ident)


def _channel(root: ET.Element) -> ET.Element:
    return root.find("channel") if root.tag == "rss" else root  # type: ignore[return-value]


SOURCES = {
    "arxiv-atom": XmlSource(
        arxiv_atom,
        ("atom/user-manual-example.atom", "atom/constructed-entries.atom", "atom/api-error.atom"),
        lambda root: root,
        f"{ATOM_NS}entry",
        "entry",
        _atom_id,
        (
            lambda e: _remove(e, f"{ATOM_NS}id"),
            lambda e: _set_text(e, f"{ATOM_NS}id", "http://arxiv.org/abs/2501.1"),
            lambda e: _set_text(e, f"{ATOM_NS}published", "9999-12-31T23:59:59-12:00"),
            lambda e: _set_text(e, f"{ATOM_NS}updated", "yesterday"),
            lambda e: _remove(e, f"{ATOM_NS}author/{ATOM_NS}name"),
        ),
        lambda data, origin: arxiv_atom.parse_feed(data, origin),
    ),
    "arxiv-rss": XmlSource(
        arxiv_rss,
        ("rss/cs.CL.rss.xml", "rss/cs.CL.atom.xml", "rss/broken.rss.xml"),
        _channel,
        "item",
        "item",
        _listing_id,
        (_listing_no_id,),
        lambda data, origin: arxiv_rss.parse_feed(data, origin),
    ),
    "oai-pmh": XmlSource(
        oai_pmh,
        ("oai/listrecords-arxiv-2015-01-01.xml", "oai/getrecord-1412.8544.xml"),
        lambda root: root.find(f"{OAI_NS}ListRecords"),  # type: ignore[arg-type,return-value]
        f"{OAI_NS}record",
        "record",
        _oai_id,
        (
            lambda r: _remove(r, f"{OAI_NS}metadata"),
            lambda r: _set_text(r, f"{OAI_NS}metadata/{META_NS}arXiv/{META_NS}id", "14128544"),
            lambda r: _set_text(
                r, f"{OAI_NS}metadata/{META_NS}arXiv/{META_NS}created", "0001-01-01"
            ),
            lambda r: _remove(r, f"{OAI_NS}metadata/{META_NS}arXiv/{META_NS}authors/*/*"),
        ),
        oai_pmh.parse_list_records,
    ),
}
NAMES = sorted(SOURCES)


# --- entity tricks ------------------------------------------------------------------------------


def with_doctype(document: bytes, doctype: bytes, reference: bytes) -> bytes:
    """``document`` with ``doctype`` before its root and ``reference`` (an entity use) put in
    the first element's text."""
    declaration = re.match(rb"\s*<\?xml[^>]*\?>", document)
    cut = declaration.end() if declaration else 0
    body = document[cut:]
    first = re.search(rb"<(?![?!])[^>]*(?<!/)>", body)
    if first is not None:
        body = body[: first.end()] + reference + body[first.end() :]
    return document[:cut] + doctype + body


def billion_laughs() -> bytes:
    levels = [b'<!ENTITY lol0 "lol">']
    for level in range(1, 10):
        refs = f"&lol{level - 1};".encode() * 10
        levels.append(f"<!ENTITY lol{level} ".encode() + b'"' + refs + b'">')
    return b"<!DOCTYPE lolz [" + b"".join(levels) + b"]>"


def external_entity(target: Path) -> bytes:
    return f'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file://{target}">]>'.encode()


ENTITY_TRICKS = {
    "billion laughs": (billion_laughs(), b"&lol9;"),
    "quadratic blowup": (b'<!DOCTYPE x [<!ENTITY a "' + b"A" * 50_000 + b'">]>', b"&a;" * 2000),
    "external dtd": (b'<!DOCTYPE x SYSTEM "http://example.invalid/evil.dtd">', b""),
    "parameter entity": (
        b'<!DOCTYPE x [<!ENTITY % p SYSTEM "http://example.invalid/p.dtd"> %p;]>',
        b"",
    ),
    "internal entity": (b'<!DOCTYPE x [<!ENTITY e "expanded">]>', b"&e;"),
}


def check_bytes_parser(source: XmlSource, data: bytes) -> None:
    """What the live fetchers use: items, or one of our own errors for the whole document."""
    try:
        parsed = source.bytes_parser(data, "https://example.org/feed")
    except PapertideError as exc:
        assert exc.message.strip()
        return
    items = parsed.records if isinstance(parsed, oai_pmh.ListRecordsPage) else parsed[0]
    check_items(items, "https://example.org/feed", source.fmt.FORMAT)


@pytest.mark.parametrize("name", NAMES)
@fuzz_settings(60)
@given(data=st.binary(max_size=2000))
def test_random_bytes(name: str, data: bytes, tmp_path: Path) -> None:
    source = SOURCES[name]
    check_parse(source.fmt, tmp_path / "feed.xml", data)
    check_bytes_parser(source, data)


@pytest.mark.parametrize("name", NAMES)
@fuzz_settings(80)
@given(data=st.data())
def test_damaged_bytes(name: str, data: st.DataObject, tmp_path: Path) -> None:
    source = SOURCES[name]
    base = source.document(data.draw(st.integers(0, len(source.fixtures) - 1)))
    damaged = data.draw(mutated_bytes(base))
    check_parse(source.fmt, tmp_path / "feed.xml", gzipped(damaged, data.draw(packings)))
    check_bytes_parser(source, damaged)


@pytest.mark.parametrize("name", NAMES)
@fuzz_settings(120)
@given(data=st.data())
def test_damaged_structure(name: str, data: st.DataObject, tmp_path: Path) -> None:
    source = SOURCES[name]
    base = source.document(data.draw(st.integers(0, len(source.fixtures) - 1)))
    document = data.draw(mutated_xml(base, max_ops=4))
    check_parse(source.fmt, tmp_path / "feed.xml", document)
    check_bytes_parser(source, document)


@pytest.mark.parametrize("trick", sorted(ENTITY_TRICKS))
@pytest.mark.parametrize("name", NAMES)
def test_entities_are_refused_or_inert(name: str, trick: str, tmp_path: Path) -> None:
    """Entity declarations are refused (one error for the file); a DOCTYPE naming an external
    DTD is inert: nothing is fetched, and the records are those of the document without it."""
    source = SOURCES[name]
    doctype, reference = ENTITY_TRICKS[trick]
    path = tmp_path / "feed.xml"
    started = time.perf_counter()
    items = parse_file(source.fmt, path, with_doctype(source.document(), doctype, reference))
    assert time.perf_counter() - started < 2
    records, errors = check_items(items, str(path), source.fmt.FORMAT)
    if records or not errors or "unsafe XML" not in errors[0].reason:
        assert reference == b"", f"{trick} was not refused: {items}"
        assert items == parse_file(source.fmt, path, source.document())
    else:
        assert len(errors) == 1, errors


@pytest.mark.parametrize("encoding", ["TF-8", "shift_jis", "utf-7", "idna", "rot13", "utf-16"])
@pytest.mark.parametrize("name", NAMES)
def test_declared_encodings_that_cannot_be_read(name: str, encoding: str, tmp_path: Path) -> None:
    source = SOURCES[name]
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>'.encode()
    document = declaration + re.sub(rb"^\s*<\?xml[^>]*\?>", b"", source.document())
    path = tmp_path / "feed.xml"
    records, errors = check_items(parse_file(source.fmt, path, document), str(path), name)
    assert records == [] and len(errors) == 1, errors
    assert "encoding" in errors[0].reason, errors[0]


@pytest.mark.parametrize("name", NAMES)
def test_external_entities_read_no_file(name: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    source = SOURCES[name]
    document = with_doctype(source.document(), external_entity(secret), b"&xxe;")
    items = parse_file(source.fmt, tmp_path / "feed.xml", document)
    assert "TOP-SECRET" not in repr(items)
    (error,) = items
    assert not isinstance(error, PaperRecord) and "unsafe XML" in error.reason


@pytest.mark.parametrize("name", NAMES)
@fuzz_settings(60)
@given(data=st.data())
def test_bad_entries_never_cost_good_ones(name: str, data: st.DataObject, tmp_path: Path) -> None:
    """Good and bad entries mixed: every good one is read, every bad one is an error at its
    place, in a file that also went through gzip or not."""
    source = SOURCES[name]
    root = ET.fromstring(source.document())
    container = source.container(root)
    template = container.find(source.entry_tag)
    assert template is not None
    for old in container.findall(source.entry_tag):
        container.remove(old)
    kinds = data.draw(st.lists(st.integers(-1, len(source.breakers) - 1), min_size=1, max_size=8))
    good: set[str] = set()
    for number, kind in enumerate(kinds, start=1):
        entry = copy.deepcopy(template)
        ident = f"2501.{number:05d}"
        source.set_id(entry, ident)
        if kind < 0:
            good.add(ident)
        else:
            source.breakers[kind](entry)
        container.append(entry)
    path = tmp_path / "feed.xml"
    document = gzipped(
        ET.tostring(root, encoding="utf-8"), data.draw(st.sampled_from(["plain", "gzip"]))
    )
    records, errors = check_items(
        parse_file(source.fmt, path, document), str(path), source.fmt.FORMAT
    )
    assert {record.arxiv_id for record in records} == good
    bad_places = {n for n, kind in enumerate(kinds, start=1) if kind >= 0}
    assert len(errors) == len(bad_places), errors
    for error in errors:
        number = int(error.position.split(f" {source.entry_word} ")[1].split()[0])
        assert number in bad_places, error


@fuzz_settings(300)
@given(st.one_of(st.none(), st.text(max_size=40), st.sampled_from(HOSTILE_DATES)))
@example("²")  # str.isdigit() holds for it, float() refuses it
@example("Fri, 31 Dec 9999 23:00:00 -1200")  # past year 9999 in UTC
def test_retry_after_header(value: str | None) -> None:
    """The fetchers' reading of an HTTP Retry-After header: seconds to wait, or None."""
    seconds = retry_after_seconds(value, now=datetime(2025, 5, 1, tzinfo=UTC))
    assert seconds is None or (isinstance(seconds, float) and seconds >= 0)
