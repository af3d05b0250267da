"""arXiv's daily listing feeds: ``rss.arxiv.org/rss/<cats>`` (RSS 2.0) and ``/atom/<cats>``.

The format since January 2024 (arXiv help pages "RSS feed Specifications" and "ATOM feed
Specifications"; generator: github.com/arXiv/arxiv-feed)::

    <rss version="2.0"><channel>
      <title>cs.CL updates on arXiv.org</title>
      <pubDate>Mon, 22 Sep 2025 00:00:00 -0400</pubDate>   the announcement (listing) day
      <item>
        <title>…</title> <link>https://arxiv.org/abs/2509.15237</link>
        <description>arXiv:2509.15237v1 Announce Type: new \nAbstract: …</description>
        <guid isPermaLink="false">oai:arXiv.org:2509.15237v1</guid>
        <category>cs.CL</category>*                 the paper's categories, primary first
        <pubDate>…</pubDate> <arxiv:announce_type>new|cross|replace|replace-cross</…>
        <dc:rights>licence URL</dc:rights> [<arxiv:DOI/> <arxiv:journal_reference/>]
        <dc:creator>First Last (Affiliation), Other Author</dc:creator>
      </item>
    </channel></rss>

The Atom flavour carries the same data: ``<entry>`` with ``<id>oai:arXiv.org:…vN</id>``,
``<summary>`` (same text as description), ``<category term=…/>``, ``<published>`` (the
announcement day) and the same arxiv/dc elements; ``<author><name>`` is read when there is
no ``dc:creator``. A feed that could not be built is titled "Feed error for query: …".

Records carry the version from the guid, title, abstract, authors, categories and licence;
the listing date is not a submission date, so published_at/updated_at stay None. The announce
type of each paper and the announcement instant come back separately in :class:`FeedInfo`,
so the runner decides what a "new" paper means for the day's list.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from xml.etree.ElementTree import Element
from zoneinfo import ZoneInfo

import httpx

from papertide.catalog.ids import ArxivId, parse_arxiv_id
from papertide.catalog.records import Author, PaperRecord, RecordError, arxiv_categories
from papertide.errors import InvalidInput
from papertide.ingest.polite_http import PoliteGetter, Sleep, parse_fetched
from papertide.ingest.xmltext import (
    BadDocument,
    BadRecord,
    Item,
    find_text,
    head_root,
    head_text,
    parse_iso,
    parse_rfc822,
    parse_xml,
    records_from_file,
    squash,
    text_of,
)

FORMAT = "arxiv-rss"
RSS_BASE_URL = "https://rss.arxiv.org/rss/"

ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
DC = "{http://purl.org/dc/elements/1.1/}"

_MARKERS = ("http://arxiv.org/schemas/atom", "rss.arxiv.org", "Announce Type:")
_DESCRIPTION = re.compile(
    r"^\s*arXiv:(?P<id>\S+)\s+Announce Type:\s*(?P<type>[\w-]+)\s*"
    r"(?:Abstract:\s*)?(?P<abstract>.*)$",
    re.DOTALL,
)
_NAME_AND_AFFILIATION = re.compile(r"^(?P<name>[^()]+?)\s*\((?P<affiliation>.*)\)$", re.DOTALL)
_FEED_ERROR = "Feed error for query"


@dataclass(slots=True)
class FeedInfo:
    """What a listing feed says besides the papers.

    ``announced_at``: the announcement instant (channel pubDate, else the first item's date),
    UTC; convert it to the installation's time zone for the listing day. ``announce_types``:
    arXiv id (no version) -> "new", "cross", "replace" or "replace-cross".
    """

    title: str | None = None
    announced_at: datetime | None = None
    announce_types: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Extras:
    """The arxiv: and dc: elements both flavours share."""

    announce_type: str | None
    rights: str | None
    doi: str | None
    journal_ref: str | None
    creators: str | None


@dataclass(frozen=True, slots=True)
class _Raw:
    """One item or entry as text, whichever flavour it came from."""

    ident: str | None
    link: str | None
    title: str | None
    description: str | None
    categories: list[str]
    announced: str | None
    extras: _Extras
    author_names: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Header:
    title: str | None
    description: str | None
    announced: str | None


@dataclass(frozen=True, slots=True)
class _Flavour:
    label: str
    parts: Callable[[Element], tuple[_Header, list[Element]]]
    read: Callable[[Element], _Raw]
    parse_date: Callable[[str], datetime]


def sniff(head: bytes) -> bool:
    """An RSS 2.0 or Atom feed from rss.arxiv.org (arxiv namespace, feed URL or description)."""
    root = head_root(head)
    text = head_text(head)
    if root == "rss":
        return any(marker in text for marker in _MARKERS)
    return root == "feed" and ("rss.arxiv.org" in text or "announce_type" in text)


def parse(path: Path, tz: ZoneInfo) -> Iterator[Item]:
    """Records of a saved listing feed (announce types need :func:`parse_feed`); ``tz`` unused."""
    yield from records_from_file(path, lambda data, origin: parse_feed(data, origin)[0])


def parse_feed(data: bytes, origin: str) -> tuple[list[Item], FeedInfo]:
    """Records (and RecordErrors) of one listing feed, with its announce types and day."""
    root = parse_xml(data)
    flavour = _flavour_of(root)
    header, elements = flavour.parts(root)
    if header.title and header.title.startswith(_FEED_ERROR):
        raise BadDocument(f"arXiv feed error: {header.description or header.title}")
    info = FeedInfo(header.title, _lenient_date(header.announced, flavour.parse_date))
    items: list[Item] = []
    for number, element in enumerate(elements, start=1):
        raw = flavour.read(element)
        item = _record(raw, f"{origin} {flavour.label} {number}")
        items.append(item)
        if isinstance(item, PaperRecord):
            _note(info, item.arxiv_id, raw, flavour.parse_date)
    return items, info


def listing_url(categories: Sequence[str], base_url: str = RSS_BASE_URL) -> str:
    """The feed URL for ``categories`` (joined with '+', as rss.arxiv.org expects)."""
    if not categories:
        raise InvalidInput("a listing feed needs at least one category, e.g. cs.CL")
    return base_url.rstrip("/") + "/" + "+".join(categories)


def fetch_listing(
    client: httpx.Client,
    categories: Sequence[str],
    *,
    base_url: str = RSS_BASE_URL,
    interval: float = 3.0,
    sleep: Sleep = time.sleep,
    max_retries: int = 5,
) -> tuple[list[Item], FeedInfo]:
    """Today's listing for ``categories``: one request, retried politely when arXiv is busy."""
    url = listing_url(categories, base_url)
    getter = PoliteGetter(client, interval=interval, sleep=sleep, max_retries=max_retries)
    response = getter.get(url, {})
    return parse_fetched(parse_feed, response, url)


# --- the two flavours ----------------------------------------------------------------------


def _flavour_of(root: Element) -> _Flavour:
    if root.tag == "rss":
        return _RSS
    if root.tag == f"{ATOM}feed":
        return _ATOM
    raise BadDocument(f"root element is <{root.tag}>, not <rss> or an Atom <feed>")


def _rss_parts(root: Element) -> tuple[_Header, list[Element]]:
    channel = root.find("channel")
    if channel is None:
        raise BadDocument("RSS feed without <channel>")
    header = _Header(
        find_text(channel, "title"),
        find_text(channel, "description"),
        find_text(channel, "pubDate"),
    )
    return header, channel.findall("item")


def _atom_parts(root: Element) -> tuple[_Header, list[Element]]:
    # <updated> is when the feed was generated, not the announcement: the entries carry that.
    header = _Header(find_text(root, f"{ATOM}title"), find_text(root, f"{ATOM}subtitle"), None)
    return header, root.findall(f"{ATOM}entry")


def _rss_item(item: Element) -> _Raw:
    return _Raw(
        ident=find_text(item, "guid"),
        link=find_text(item, "link"),
        title=find_text(item, "title"),
        description=find_text(item, "description"),
        categories=_texts(text_of(e) for e in item.iterfind("category")),
        announced=find_text(item, "pubDate"),
        extras=_extras(item, rights=None),
    )


def _atom_item(entry: Element) -> _Raw:
    links = [
        link for link in entry.iterfind(f"{ATOM}link") if link.get("rel") in (None, "alternate")
    ]
    return _Raw(
        ident=find_text(entry, f"{ATOM}id"),
        link=links[0].get("href") if links else None,
        title=find_text(entry, f"{ATOM}title"),
        description=find_text(entry, f"{ATOM}summary"),
        categories=_texts(c.get("term") for c in entry.iterfind(f"{ATOM}category")),
        announced=find_text(entry, f"{ATOM}published"),
        extras=_extras(entry, rights=find_text(entry, f"{ATOM}rights")),
        author_names=_texts(find_text(a, f"{ATOM}name") for a in entry.iterfind(f"{ATOM}author")),
    )


def _extras(element: Element, rights: str | None) -> _Extras:
    return _Extras(
        announce_type=find_text(element, f"{ARXIV}announce_type"),
        rights=find_text(element, f"{DC}rights") or rights,
        doi=find_text(element, f"{ARXIV}DOI"),
        journal_ref=find_text(element, f"{ARXIV}journal_reference"),
        creators=find_text(element, f"{DC}creator"),
    )


def _texts(values: Iterable[str | None]) -> list[str]:
    return [value.strip() for value in values if value and value.strip()]


_RSS = _Flavour("item", _rss_parts, _rss_item, parse_rfc822)
_ATOM = _Flavour("entry", _atom_parts, _atom_item, parse_iso)


# --- one item ------------------------------------------------------------------------------


def _record(raw: _Raw, position: str) -> Item:
    ident = _identify(raw)
    if ident is None:
        found = raw.ident or raw.link or "nothing"
        return RecordError(position, f"no arXiv id in guid, description or link (found {found!r})")
    where = f"{position} ({ident.id})"
    described = _DESCRIPTION.match(raw.description or "")
    abstract = described.group("abstract") if described else raw.description
    try:
        categories = arxiv_categories(raw.categories)
    except ValueError as exc:
        return RecordError(where, str(exc))
    return PaperRecord(
        arxiv_id=ident.id,
        source=FORMAT,
        position=where,
        version=ident.version,
        title=raw.title,
        abstract=squash(abstract),
        authors=_authors(raw),
        categories=categories,
        primary_category=categories[0] if categories else None,
        license=raw.extras.rights,
        doi=raw.extras.doi,
        journal_ref=raw.extras.journal_ref,
    )


def _identify(raw: _Raw) -> ArxivId | None:
    """The id from the guid, else the description's ``arXiv:…vN``, else the abs link."""
    described = _DESCRIPTION.match(raw.description or "")
    candidates = [raw.ident, described.group("id") if described else None, raw.link]
    for candidate in candidates:
        if candidate:
            try:
                return parse_arxiv_id(candidate)
            except InvalidInput:
                continue
    return None


def _announce_type(raw: _Raw) -> str | None:
    if raw.extras.announce_type:
        return raw.extras.announce_type.lower()
    described = _DESCRIPTION.match(raw.description or "")
    return described.group("type").lower() if described else None


def _note(info: FeedInfo, arxiv_id: str, raw: _Raw, parse_date: Callable[[str], datetime]) -> None:
    announce_type = _announce_type(raw)
    if announce_type:
        info.announce_types[arxiv_id] = announce_type
    if info.announced_at is None:
        info.announced_at = _lenient_date(raw.announced, parse_date)


def _lenient_date(text: str | None, parse_date: Callable[[str], datetime]) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_date(text)
    except BadRecord:
        return None


def _authors(raw: _Raw) -> list[Author]:
    if raw.extras.creators is None:
        return [Author(name) for name in raw.author_names]
    return [_author(part) for part in _split_top_level(raw.extras.creators) if part.strip()]


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses: affiliations may contain commas."""
    parts: list[str] = []
    depth = 0
    start = 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def _author(text: str) -> Author:
    """``First Last (Affiliation)`` -> Author(name, affiliation)."""
    match = _NAME_AND_AFFILIATION.match(text.strip())
    if match is None:
        return Author(squash(text) or text)
    return Author(squash(match.group("name")) or "", squash(match.group("affiliation")))
