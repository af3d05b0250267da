"""arXiv API search results: the Atom 1.0 feed of ``export.arxiv.org/api/query``.

The format (arXiv API user manual, sections 3.3 and 5.2)::

    <feed xmlns="http://www.w3.org/2005/Atom">
      <opensearch:totalResults>24617</opensearch:totalResults>   all hits of the query
      <opensearch:startIndex>0</opensearch:startIndex>           0-based index of this page
      <opensearch:itemsPerPage>10</opensearch:itemsPerPage>
      <entry>
        <id>http://arxiv.org/abs/1611.09520v2</id>       abs URL, normally with the version
        <published>2016-11-29T08:18:38Z</published>       when v1 was submitted
        <updated>2017-01-23T06:54:20Z</updated>           when this version was submitted
        <title>…</title> <summary>…</summary>             hard-wrapped at ~80 columns
        <author><name>…</name><arxiv:affiliation>…</arxiv:affiliation>*</author>*
        <link rel="alternate" href="…/abs/1611.09520v2"/>, <link title="pdf"/>, <link title="doi"/>
        <arxiv:primary_category term="q-bio.NC"/>
        <category term="…"/>*       arXiv categories, and also ACM ("I.2.6") and MSC classes
                                    ("14C20, 14M99"), which become acm_class / msc_class here
        <arxiv:comment/> <arxiv:journal_ref/> <arxiv:doi/>     when the authors gave them
      </entry>
    </feed>

A failed query is a feed with one entry whose id is ``http://arxiv.org/api/errors#…``; its
summary is the message. Such an entry becomes a RecordError.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from xml.etree.ElementTree import Element
from zoneinfo import ZoneInfo

import httpx

from papertide.catalog.ids import ArxivId, parse_arxiv_id
from papertide.catalog.records import Author, PaperRecord, RecordError, Version, is_category
from papertide.errors import InvalidInput
from papertide.ingest.polite_http import PoliteGetter, Sleep, parse_fetched
from papertide.ingest.xmltext import (
    BadDocument,
    BadRecord,
    Item,
    find_text,
    head_root,
    head_text,
    optional_date,
    parse_xml,
    records_from_file,
    text_of,
    unique,
)

FORMAT = "arxiv-atom"

ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"

_API_ERROR = re.compile(r"^https?://(?:export\.)?arxiv\.org/api/errors", re.IGNORECASE)
_API_MARKERS = ("http://a9.com/-/spec/opensearch/1.1/", "arxiv.org/api/")
_MSC = re.compile(r"^\d\d(?:[A-Z](?:\d\d|xx|XX)|-(?:\d\d|xx|XX))?$")
_ACM = re.compile(r"^[A-K]\.(?:\d+|m)(?:\.(?:\d+|m))?(?:\.\d+)?$")
_CLASS_NOISE = re.compile(r"\([^)]*\)|\b(?:primary|secondary)\b:?", re.IGNORECASE)
_DOI_URL = re.compile(r"^https?://(?:dx\.)?doi\.org/", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PageInfo:
    """The opensearch paging numbers of one result page (None when absent)."""

    total_results: int | None = None
    start_index: int | None = None
    items_per_page: int | None = None


@dataclass(slots=True)
class AtomPage:
    """One page of a live query: its records and errors, paging numbers and request start."""

    records: list[Item]
    info: PageInfo
    start: int
    url: str = ""


def sniff(head: bytes) -> bool:
    """An Atom feed carrying the API's opensearch paging or api ids."""
    text = head_text(head)
    return (
        head_root(head) == "feed"
        and "http://www.w3.org/2005/Atom" in text
        and any(marker in text for marker in _API_MARKERS)
    )


def parse(path: Path, tz: ZoneInfo) -> Iterator[Item]:
    """Records of a saved API response. ``tz`` is unused: the API gives UTC instants."""
    yield from records_from_file(path, lambda data, origin: parse_feed(data, origin)[0])


def parse_feed(data: bytes, origin: str) -> tuple[list[Item], PageInfo]:
    """Records (and RecordErrors) of one API response, with its paging numbers."""
    root = parse_xml(data)
    if root.tag != f"{ATOM}feed":
        raise BadDocument(f"root element is <{root.tag}>, not an Atom <feed>")
    items = [
        _entry(entry, f"{origin} entry {number}")
        for number, entry in enumerate(root.iterfind(f"{ATOM}entry"), start=1)
    ]
    return items, _page_info(root)


def fetch_query(
    client: httpx.Client,
    url: str,
    search_query: str,
    *,
    start: int = 0,
    max_results_total: int | None = None,
    page_size: int = 100,
    interval: float = 3.0,
    sleep: Sleep = time.sleep,
    max_retries: int = 5,
    sort_by: str | None = None,
    sort_order: str | None = None,
) -> Iterator[AtomPage]:
    """Page through ``search_query`` from ``start``, one request every ``interval`` seconds.

    Stops after ``max_results_total`` entries, when ``totalResults`` is reached, or at the
    first empty page. ``sort_by`` / ``sort_order`` are the API's ``sortBy`` / ``sortOrder``.
    """
    getter = PoliteGetter(client, interval=interval, sleep=sleep, max_retries=max_retries)
    position, fetched = start, 0
    while max_results_total is None or fetched < max_results_total:
        want = (
            page_size if max_results_total is None else min(page_size, max_results_total - fetched)
        )
        params = _query_params(search_query, position, want, sort_by, sort_order)
        response = getter.get(url, params)
        origin = f"{url}?start={position}"
        items, info = parse_fetched(parse_feed, response, origin)
        yield AtomPage(items, info, position, origin)
        if not items:
            return
        position += len(items)
        fetched += len(items)
        if info.total_results is not None and position >= info.total_results:
            return


def fetch_ids(
    client: httpx.Client,
    url: str,
    ids: Sequence[str],
    *,
    interval: float = 3.0,
    sleep: Sleep = time.sleep,
    max_retries: int = 5,
    batch_size: int = 100,
) -> list[Item]:
    """The entries of the papers ``ids`` (``id_list=``), ``batch_size`` ids per request.

    An id arXiv does not know is simply missing from the result (or comes back as an API error
    entry, a RecordError); the caller decides what that means.
    """
    getter = PoliteGetter(client, interval=interval, sleep=sleep, max_retries=max_retries)
    items: list[Item] = []
    for first in range(0, len(ids), batch_size):
        chunk = list(ids[first : first + batch_size])
        params: dict[str, str | int] = {
            "id_list": ",".join(chunk),
            "start": 0,
            "max_results": len(chunk),
        }
        response = getter.get(url, params)
        origin = f"{url}?id_list={params['id_list']}"
        items.extend(parse_fetched(parse_feed, response, origin)[0])
    return items


def _query_params(
    search_query: str, start: int, max_results: int, sort_by: str | None, sort_order: str | None
) -> dict[str, str | int]:
    params: dict[str, str | int] = {
        "search_query": search_query,
        "start": start,
        "max_results": max_results,
    }
    if sort_by:
        params["sortBy"] = sort_by
    if sort_order:
        params["sortOrder"] = sort_order
    return params


def _page_info(root: Element) -> PageInfo:
    def number(name: str) -> int | None:
        text = find_text(root, f"{OPENSEARCH}{name}")
        return int(text) if text is not None and text.isdigit() else None

    return PageInfo(number("totalResults"), number("startIndex"), number("itemsPerPage"))


def _entry(entry: Element, position: str) -> Item:
    raw_id = find_text(entry, f"{ATOM}id")
    if raw_id is None:
        return RecordError(position, "entry has no <id>")
    if _API_ERROR.match(raw_id):
        message = find_text(entry, f"{ATOM}summary") or raw_id
        return RecordError(position, f"arXiv API error: {message}")
    try:
        ident = parse_arxiv_id(raw_id)
    except InvalidInput as exc:
        return RecordError(f"{position} ({raw_id})", exc.message)
    where = f"{position} ({ident.id})"
    try:
        return _record(entry, ident, where)
    except BadRecord as exc:
        return RecordError(where, str(exc))


def _record(entry: Element, ident: ArxivId, where: str) -> PaperRecord:
    published = optional_date(find_text(entry, f"{ATOM}published"))
    updated = optional_date(find_text(entry, f"{ATOM}updated"))
    version = ident.version or _alternate_version(entry)
    primary = _primary_category(entry)
    categories, msc, acm = _classify(entry)
    return PaperRecord(
        arxiv_id=ident.id,
        source=FORMAT,
        position=where,
        version=version,
        title=find_text(entry, f"{ATOM}title"),
        abstract=find_text(entry, f"{ATOM}summary"),
        authors=[_author(element) for element in entry.iterfind(f"{ATOM}author")],
        categories=unique(([primary] if primary else []) + categories),
        primary_category=primary,
        published_at=published,
        updated_at=updated,
        versions=_versions(version, published, updated),
        comments=find_text(entry, f"{ARXIV}comment"),
        journal_ref=find_text(entry, f"{ARXIV}journal_ref"),
        doi=find_text(entry, f"{ARXIV}doi") or _doi_link(entry),
        msc_class=msc,
        acm_class=acm,
    )


def _author(element: Element) -> Author:
    affiliations = [text_of(a) for a in element.iterfind(f"{ARXIV}affiliation")]
    affiliation = "; ".join(a for a in affiliations if a) or None
    name = find_text(element, f"{ATOM}name")
    if name is None:
        raise BadRecord("an <author> has no <name>")
    return Author(name, affiliation)


def _primary_category(entry: Element) -> str | None:
    element = entry.find(f"{ARXIV}primary_category")
    term = (element.get("term") or "").strip() if element is not None else ""
    if term and not is_category(term):
        raise BadRecord(f"primary category {term[:80]!r} is not an arXiv category")
    return term or None


def _classify(entry: Element) -> tuple[list[str], str | None, str | None]:
    """Category terms split into arXiv categories, MSC classes and ACM classes."""
    categories: list[str] = []
    msc: list[str] = []
    acm: list[str] = []
    for element in entry.iterfind(f"{ATOM}category"):
        term = (element.get("term") or "").strip()
        if is_category(term):
            categories.append(term)
        elif _all_match(_MSC, term):
            msc.append(term)
        elif _all_match(_ACM, term):
            acm.append(term)
    return categories, "; ".join(msc) or None, "; ".join(acm) or None


def _all_match(pattern: re.Pattern[str], term: str) -> bool:
    codes = [code.strip() for code in re.split(r"[,;]", _CLASS_NOISE.sub("", term))]
    codes = [code for code in codes if code]
    return bool(codes) and all(pattern.match(code) for code in codes)


def _alternate_version(entry: Element) -> int | None:
    for link in entry.iterfind(f"{ATOM}link"):
        if link.get("rel") == "alternate":
            try:
                return parse_arxiv_id(link.get("href") or "").version
            except InvalidInput:
                return None
    return None


def _doi_link(entry: Element) -> str | None:
    for link in entry.iterfind(f"{ATOM}link"):
        if link.get("title") == "doi" and link.get("href"):
            return _DOI_URL.sub("", link.get("href") or "") or None
    return None


def _versions(
    version: int | None, published: datetime | None, updated: datetime | None
) -> list[Version]:
    """v1 was submitted at ``published``; the described version ``vN`` at ``updated``."""
    if version is None:
        return []
    if version == 1:
        return [Version(1, published or updated)]
    return [Version(1, published), Version(version, updated)]
