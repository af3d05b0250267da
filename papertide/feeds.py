"""Feeds of any list of papers: Atom and RSS 2.0 (written by feedgen) and JSON Feed 1.1.

A :class:`Feed` is a title, the HTML page it mirrors, its own URL and its entries;
:func:`feed_entries` turns list cards into entries, adding what a card lacks (the whole abstract,
up to :data:`MAX_AUTHORS` authors, the categories, the latest version's date) in three queries
whatever the number of cards. :func:`render_feed` writes one format.

Each entry carries: the paper page URL as its id and main link (absolute, from
``settings.base_url``), the arXiv abstract page and the code and project pages as further links,
the authors (the first :data:`MAX_AUTHORS`, then "et al."), the whole abstract as plain text
(Atom ``summary``, JSON ``content_text``), an HTML version with the byline, upvotes, categories,
links and the list's reason for the paper (Atom ``content``, RSS ``description``, JSON
``content_html``; every piece of data in it is escaped, so an abstract's ``<``, ``&`` and LaTeX
come through as text, never as markup), the arXiv categories, and the first and latest version
dates. JSON Feed items also carry a ``_papertide`` extension object with the upvotes, arXiv id,
links, organization, list day and reason.

Text that XML cannot hold (control characters some abstracts contain) is dropped from every
format alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any
from urllib.parse import quote

import orjson
from feedgen.feed import FeedGenerator
from lxml import etree
from markupsafe import Markup
from sqlalchemy import Connection, select

from papertide.cards import PaperCard
from papertide.catalog.links import http_url
from papertide.db.schema import paper_authors, paper_categories, papers
from papertide.errors import NotFound

MAX_ENTRIES = 50
MAX_AUTHORS = 20
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
ATOM_NS = "http://www.w3.org/2005/Atom"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


class FeedFormat(StrEnum):
    """The formats, by the extension in their URL (``feed.atom``)."""

    ATOM = "atom"
    RSS = "rss"
    JSON = "json"

    @classmethod
    def parse(cls, value: str) -> FeedFormat:
        """The format named by a URL's extension; NotFound for any other."""
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(f.value for f in cls)
            raise NotFound(f"no feed format {value!r}: there are {choices}") from None

    @property
    def media_type(self) -> str:
        return {
            FeedFormat.ATOM: "application/atom+xml",
            FeedFormat.RSS: "application/rss+xml",
            FeedFormat.JSON: "application/feed+json",
        }[self]


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One paper in a feed."""

    arxiv_id: str
    title: str
    abstract: str
    authors: tuple[str, ...]  # the first MAX_AUTHORS names, in order
    author_count: int
    categories: tuple[str, ...]  # arXiv categories, primary first
    upvotes: int
    code_url: str | None  # http(s) only
    project_url: str | None
    organization: str | None
    published: datetime  # first version (else the list day)
    updated: datetime  # latest version (else ``published``)
    listed_on: date | None
    reason: str | None  # why the list ranks it where it does (trending, "for you", search)

    @property
    def arxiv_url(self) -> str:
        return "https://arxiv.org/abs/" + quote(self.arxiv_id, safe="/.")

    @property
    def author_names(self) -> list[str]:
        """The names, with "et al." standing for the rest of a long list."""
        names = list(self.authors)
        return [*names, "et al."] if self.author_count > len(names) else names


@dataclass(frozen=True)
class Feed:
    """A feed: absolute URLs, and its entries in the list's order."""

    title: str
    description: str
    page_url: str  # the HTML page the feed mirrors
    feed_url: str  # this feed, in the format being written
    base_url: str  # the site, for paper page URLs
    site_name: str
    entries: list[FeedEntry]
    built_at: datetime  # when an empty feed says it was updated

    @property
    def updated(self) -> datetime:
        return max((e.updated for e in self.entries), default=self.built_at)

    def paper_url(self, entry: FeedEntry) -> str:
        return self.base_url.rstrip("/") + "/papers/" + quote(entry.arxiv_id, safe="/.")


def clean(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold."""
    return _NOT_XML.sub("", text)


def _paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, each on one line (arXiv abstracts are hard-wrapped)."""
    return [" ".join(p.split()) for p in _PARAGRAPH_BREAK.split(clean(text)) if p.strip()]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


# --- entries from cards ---------------------------------------------------------------------


def feed_entries(connection: Connection, cards: list[PaperCard], now: datetime) -> list[FeedEntry]:
    """Entries for ``cards`` (in their order), in three queries whatever their number: the
    abstracts and version dates, the authors, the categories."""
    ids = [card.paper_id for card in cards]
    if not ids:
        return []
    details = {
        row.id: row
        for row in connection.execute(
            select(papers.c.id, papers.c.abstract, papers.c.updated_at).where(papers.c.id.in_(ids))
        )
    }
    authors: dict[int, list[str]] = {i: [] for i in ids}
    for paper_id, name in connection.execute(
        select(paper_authors.c.paper_id, paper_authors.c.name)
        .where(paper_authors.c.paper_id.in_(ids), paper_authors.c.position < MAX_AUTHORS)
        .order_by(paper_authors.c.paper_id, paper_authors.c.position)
    ):
        authors[paper_id].append(clean(name))
    categories: dict[int, list[str]] = {i: [] for i in ids}
    for paper_id, category in connection.execute(
        select(paper_categories.c.paper_id, paper_categories.c.category)
        .where(paper_categories.c.paper_id.in_(ids))
        .order_by(paper_categories.c.paper_id, paper_categories.c.position)
    ):
        categories[paper_id].append(clean(category))
    entries = []
    for card in cards:
        row = details.get(card.paper_id)
        published = card.published_at or (
            _midnight(card.listed_on) if card.listed_on is not None else now
        )
        updated = row.updated_at if row is not None and row.updated_at is not None else None
        entries.append(
            FeedEntry(
                arxiv_id=card.arxiv_id,
                title=clean(" ".join(card.title.split())),
                abstract="\n\n".join(_paragraphs(row.abstract if row is not None else "")),
                authors=tuple(authors[card.paper_id]),
                author_count=max(card.author_count, len(authors[card.paper_id])),
                categories=tuple(categories[card.paper_id]),
                upvotes=card.upvotes,
                code_url=http_url(card.code_url),
                project_url=http_url(card.project_url),
                organization=clean(card.organization_name) if card.organization_name else None,
                published=published,
                updated=max(updated, published) if updated is not None else published,
                listed_on=card.listed_on,
                reason=clean(card.reason) if card.reason else None,
            )
        )
    return entries


# --- content --------------------------------------------------------------------------------


def _facts(entry: FeedEntry) -> list[str]:
    facts = [f"▲ {entry.upvotes} upvote{'' if entry.upvotes == 1 else 's'}"]
    if entry.listed_on is not None:
        facts.append(f"listed {entry.listed_on.isoformat()}")
    if entry.categories:
        facts.append(", ".join(entry.categories))
    if entry.organization:
        facts.append(entry.organization)
    return facts


def _links(feed: Feed, entry: FeedEntry) -> list[tuple[str, str]]:
    links = [("Paper page", feed.paper_url(entry)), ("arXiv", entry.arxiv_url)]
    if entry.code_url:
        links.append(("Code", entry.code_url))
    if entry.project_url:
        links.append(("Project page", entry.project_url))
    return links


def content_html(feed: Feed, entry: FeedEntry) -> str:
    """The entry as escaped HTML: byline, abstract, facts, links, reason."""
    parts: list[Markup] = []
    if entry.authors:
        parts.append(Markup("<p>By {}</p>").format(", ".join(entry.author_names)))
    parts.extend(Markup("<p>{}</p>").format(p) for p in entry.abstract.split("\n\n") if p)
    parts.append(Markup("<p>{}</p>").format(Markup(" · ").join(_facts(entry))))
    anchors = [
        Markup('<a href="{}">{}</a>').format(url, label) for label, url in _links(feed, entry)
    ]
    parts.append(Markup("<p>{}</p>").format(Markup(" · ").join(anchors)))
    if entry.reason:
        parts.append(Markup("<p><em>{}</em></p>").format(entry.reason))
    return str(Markup("\n").join(parts))


def content_text(feed: Feed, entry: FeedEntry) -> str:
    """The entry as plain text: the same as :func:`content_html`, unmarked."""
    lines = []
    if entry.authors:
        lines.append("By " + ", ".join(entry.author_names))
    lines.extend([entry.abstract, " · ".join(_facts(entry))])
    lines.extend(f"{label}: {url}" for label, url in _links(feed, entry))
    if entry.reason:
        lines.append(entry.reason)
    return "\n\n".join(line for line in lines if line)


# --- Atom and RSS ---------------------------------------------------------------------------


def _generator(feed: Feed, fmt: FeedFormat) -> FeedGenerator:
    generator = FeedGenerator()
    if fmt is FeedFormat.RSS:
        generator.load_extension("dc", atom=False, rss=True)
    generator.id(feed.feed_url)
    generator.title(clean(feed.title))
    generator.description(clean(feed.description) or clean(feed.title))
    generator.author({"name": clean(feed.site_name)})
    # RSS keeps the last link as the channel's <link>: the HTML page comes last.
    generator.link(href=feed.feed_url, rel="self", type=fmt.media_type)
    generator.link(href=feed.page_url, rel="alternate", type="text/html")
    generator.generator("Papertide")
    generator.language("en")
    generator.updated(feed.updated)
    generator.lastBuildDate(feed.updated)
    for entry in feed.entries:
        _add_entry(generator, feed, entry, fmt)
    return generator


def _entry_links(feed: Feed, entry: FeedEntry) -> list[dict[str, str]]:
    """An entry's Atom links: arXiv, code and project as ``related``, then its page."""
    related = [
        {"href": url, "rel": "related", "type": "text/html", "title": label}
        for label, url in _links(feed, entry)[1:]
    ]
    return [*related, {"href": feed.paper_url(entry), "rel": "alternate", "type": "text/html"}]


def _fix_atom_links(xml: bytes, feed: Feed) -> bytes:
    """Put back the entry links' attributes, which feedgen 1.0 drops (its writer reads them
    from the element it has just made instead of from the link): without ``rel``, every link
    would be an ``alternate`` one, which Atom allows once per type."""
    root = etree.fromstring(xml)
    for element, entry in zip(root.iterfind(f"{{{ATOM_NS}}}entry"), feed.entries, strict=True):
        links = element.findall(f"{{{ATOM_NS}}}link")
        for link, wanted in zip(links, _entry_links(feed, entry), strict=True):
            link.attrib.update(wanted)
    fixed: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return fixed


def _add_entry(generator: FeedGenerator, feed: Feed, entry: FeedEntry, fmt: FeedFormat) -> None:
    item: Any = generator.add_entry(order="append")
    page = feed.paper_url(entry)
    item.id(page)
    item.guid(page, permalink=True)
    item.title(entry.title)
    for link in _entry_links(feed, entry):  # the page comes last: it is RSS's <link>
        item.link(**link)
    item.published(entry.published)
    item.updated(entry.updated)
    for category in entry.categories:
        item.category(term=category)
    if fmt is FeedFormat.RSS:
        # RSS's own <author> must be an email address; Dublin Core's creator is a name.
        item.dc.dc_creator(entry.author_names)
        item.description(content_html(feed, entry))
    else:
        for name in entry.author_names:
            item.author({"name": name})
        item.summary(entry.abstract or entry.title, type="text")
        item.content(content_html(feed, entry), type="html")


# --- JSON Feed ------------------------------------------------------------------------------


def json_feed(feed: Feed) -> dict[str, Any]:
    """The feed as a JSON Feed 1.1 document."""
    items = []
    for entry in feed.entries:
        links = dict(_links(feed, entry))
        item: dict[str, Any] = {
            "id": feed.paper_url(entry),
            "url": feed.paper_url(entry),
            "external_url": entry.arxiv_url,
            "title": entry.title,
            "content_html": content_html(feed, entry),
            "content_text": content_text(feed, entry),
            "summary": entry.abstract.split("\n\n")[0] if entry.abstract else entry.title,
            "date_published": entry.published.isoformat(),
            "date_modified": entry.updated.isoformat(),
            "authors": [{"name": name} for name in entry.author_names],
            "tags": list(entry.categories),
            "_papertide": {
                "arxiv_id": entry.arxiv_id,
                "upvotes": entry.upvotes,
                "arxiv_url": entry.arxiv_url,
                "code_url": links.get("Code"),
                "project_url": links.get("Project page"),
                "organization": entry.organization,
                "listed_on": entry.listed_on.isoformat() if entry.listed_on else None,
                "reason": entry.reason,
            },
        }
        if not item["authors"]:
            del item["authors"]
        items.append(item)
    return {
        "version": JSON_FEED_VERSION,
        "title": feed.title,
        "home_page_url": feed.page_url,
        "feed_url": feed.feed_url,
        "description": feed.description,
        "language": "en",
        "authors": [{"name": feed.site_name}],
        "items": items,
    }


def render_feed(feed: Feed, fmt: FeedFormat) -> bytes:
    """The feed written in ``fmt``, as UTF-8 bytes."""
    if fmt is FeedFormat.JSON:
        return orjson.dumps(json_feed(feed))
    generator = _generator(feed, fmt)
    if fmt is FeedFormat.ATOM:
        return _fix_atom_links(generator.atom_str(), feed)
    xml: bytes = generator.rss_str()
    return xml
