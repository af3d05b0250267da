"""Feeds on both engines: every list in Atom, RSS 2.0 and JSON Feed 1.1, parsed back with
feedparser (no bozo) and checked against JSON Feed's required fields; entries' content and
order; escaping; the private "for you" feed's token; the pages' feed links; query counts."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import feedparser
import pytest
from factories import listed, make_record, write_records
from fastapi import FastAPI
from fastapi.testclient import TestClient
from jsonfeed import VERSION, check_json_feed
from people import SECRET, add_user, client_as
from sqlalchemy import Engine, event

from papertide import daily
from papertide.accounts.users import User
from papertide.catalog.records import Author, OrganizationRef, Version
from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.personal import saves
from papertide.search.models import shared_embedder
from papertide.search.pipeline import embed_missing
from papertide.web.app import create_app

BASE = "https://papers.example.org"
DAY = date(2025, 5, 2)
ABSTRACT = "We prove a < b & $x^{2} > 0$ for <script>alert(1)</script> all <b>inputs</b>."
FORMATS = ("atom", "rss", "json")
MEDIA = {
    "atom": "application/atom+xml",
    "rss": "application/rss+xml",
    "json": "application/feed+json",
}
# arXiv id -> (title, upvotes, list position, authors); listed on DAY, shown most upvoted first.
PAPERS = {
    "2505.00001": ("Sparse attention for long documents", 5, 0, 2),
    "2505.00002": ("Bounds for $(k,\\ell)$-sparse graphs & <trees>", 9, 1, 25),
    "2505.00003": ("Speculative decoding with draft models", 1, 2, 1),
}
DAILY_ORDER = ["2505.00002", "2505.00001", "2505.00003"]
ALTERNATE = re.compile(r'<link rel="alternate" type="([^"]+)" title="[^"]*" href="([^"]+)">')


def paper(arxiv_id: str, title: str, upvotes: int, position: int, authors: int, day: date) -> Any:
    return make_record(
        arxiv_id,
        title=title,
        abstract=ABSTRACT if arxiv_id.endswith("2") else f"{title}. We study it.",
        authors=[Author(f"Author {arxiv_id[-2:]}-{n}") for n in range(authors)],
        categories=["cs.CL", "cs.LG"] if position % 2 == 0 else ["math.CO"],
        versions=[Version(1, datetime(2025, 4, 30, 17, tzinfo=UTC) + timedelta(hours=position))],
        upvotes=upvotes,
        code_url="https://github.com/lab/code" if position == 0 else None,
        organization=OrganizationRef("acme", "Acme Labs")
        if position in (0, 1) or position >= 10
        else None,
        listing=listed(day, position),
    )


@pytest.fixture
def catalog(engine: Engine, settings: Settings) -> None:
    write_records(engine, *[paper(a, *values, day=DAY) for a, values in PAPERS.items()])
    daily.compute_trending(engine, settings, now=datetime(2025, 5, 3, 12, tzinfo=UTC))


@pytest.fixture
def app(settings: Settings, catalog: None) -> Iterator[FastAPI]:
    app = create_app(
        settings.replace(
            secret_key=SECRET, embed_in_background=False, scheduler=False, base_url=BASE
        )
    )
    yield app
    app.state.engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app, follow_redirects=False)


@pytest.fixture
def alice(engine: Engine, catalog: None) -> User:
    return add_user(engine, "alice")


@pytest.fixture
def public_folder(engine: Engine, alice: User) -> str:
    with write_transaction(engine) as connection:
        slug = saves.create_folder(connection, alice, "Reading list", public=True)
        for arxiv_id in ("2505.00003", "2505.00001"):  # newest save first: 00001, 00003
            saves.save_paper(connection, alice, arxiv_id, slug)
    return f"/users/alice/folders/{slug}"


# --- checking what comes back ---------------------------------------------------------------


def fetch(client: TestClient, url: str, fmt: str, status: int = 200) -> Any:
    """The feed at ``url``, checked and parsed: feedparser's result, or the JSON document."""
    answer = client.get(url)
    assert answer.status_code == status, (url, answer.text[:300])
    if status != 200:
        return answer
    assert answer.headers["content-type"].startswith(MEDIA[fmt])
    if fmt == "json":
        doc = answer.json()
        check_json_feed(doc)
        return doc
    parsed = feedparser.parse(answer.content)
    assert parsed.bozo == 0, (url, parsed.get("bozo_exception"))
    assert parsed.version == ("atom10" if fmt == "atom" else "rss20")
    return parsed


def entry_ids(parsed: Any, fmt: str) -> list[str]:
    items = parsed["items"] if fmt == "json" else parsed.entries
    return [str(item["id"]).rsplit("/", 1)[-1] for item in items]


def feed_urls(public_folder: str) -> dict[str, list[str]]:
    """Each kind of feed (its URL without the extension, and a query) -> the expected order."""
    return {
        "/feeds/daily.{}": DAILY_ORDER,
        "/feeds/daily.{}?date=2025-05-02": DAILY_ORDER,
        "/feeds/weekly.{}": DAILY_ORDER,
        "/feeds/monthly.{}?month=2025-05": DAILY_ORDER,
        "/feeds/trending.{}": ["2505.00002", "2505.00001", "2505.00003"],
        "/search/feed.{}?q=sparse&mode=keyword&sort=upvotes": ["2505.00002", "2505.00001"],
        "/orgs/acme/feed.{}": ["2505.00002", "2505.00001"],
        public_folder + "/feed.{}": ["2505.00001", "2505.00003"],
    }


# --- every feed, every format ---------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_feed_parses_in_order(client: TestClient, public_folder: str, fmt: str) -> None:
    for template, order in feed_urls(public_folder).items():
        url = template.format(fmt)
        parsed = fetch(client, url, fmt)
        assert entry_ids(parsed, fmt) == order, url
        self_url = parsed["feed_url"] if fmt == "json" else _self_link(parsed)
        assert self_url == BASE + url


def _self_link(parsed: Any) -> str:
    return next(link.href for link in parsed.feed.links if link.rel == "self")


def test_atom_entries_carry_the_paper(client: TestClient) -> None:
    parsed = fetch(client, "/feeds/daily.atom", "atom")
    assert parsed.feed.title == "Daily papers · Papertide"
    assert next(x.href for x in parsed.feed.links if x.rel == "alternate") == BASE + "/"
    first, second, third = parsed.entries
    assert [e.title for e in parsed.entries] == [PAPERS[a][0] for a in DAILY_ORDER]
    assert second.id == second.link == BASE + "/papers/2505.00001"
    related = {link.title: link.href for link in second.links if link.rel == "related"}
    assert related == {
        "arXiv": "https://arxiv.org/abs/2505.00001",
        "Code": "https://github.com/lab/code",
    }
    assert [a.name for a in second.authors] == ["Author 01-0", "Author 01-1"]
    assert [t.term for t in second.tags] == ["cs.CL", "cs.LG"]
    assert [t.term for t in first.tags] == ["math.CO"]
    assert "▲ 5 upvotes" in second.content[0].value and "▲ 1 upvote ·" in third.content[0].value
    assert second.summary == "Sparse attention for long documents. We study it."
    assert second.published_parsed[:4] == (2025, 4, 30, 17)
    assert "Acme Labs" in second.content[0].value


def test_rss_and_json_entries_carry_the_paper(client: TestClient) -> None:
    rss = fetch(client, "/feeds/daily.rss", "rss")
    second = rss.entries[1]
    assert second.link == second.id == BASE + "/papers/2505.00001"
    assert [a.name for a in second.authors] == ["Author 01-0", "Author 01-1"]
    assert [t.term for t in second.tags] == ["cs.CL", "cs.LG"]
    assert "▲ 5 upvotes" in second.summary and "https://github.com/lab/code" in second.summary
    doc = fetch(client, "/feeds/daily.json", "json")
    item = doc["items"][1]
    assert item["url"] == BASE + "/papers/2505.00001"
    assert item["external_url"] == "https://arxiv.org/abs/2505.00001"
    assert item["tags"] == ["cs.CL", "cs.LG"] and item["authors"][1] == {"name": "Author 01-1"}
    assert item["_papertide"]["upvotes"] == 5
    assert item["_papertide"]["code_url"] == "https://github.com/lab/code"
    assert [i["_papertide"]["upvotes"] for i in doc["items"]] == [9, 5, 1]
    assert item["date_published"] == "2025-04-30T17:00:00+00:00"


def test_long_author_lists_end_with_et_al(client: TestClient) -> None:
    atom = fetch(client, "/feeds/daily.atom", "atom").entries[0]
    names = [a.name for a in atom.authors]
    assert len(names) == 21 and names[:2] == ["Author 02-0", "Author 02-1"]
    assert names[-1] == "et al."
    rss = fetch(client, "/feeds/daily.rss", "rss").entries[0]
    assert [a.name for a in rss.authors] == names
    item = fetch(client, "/feeds/daily.json", "json")["items"][0]
    assert [a["name"] for a in item["authors"]] == names
    assert item["content_text"].startswith("By Author 02-0, Author 02-1, ")


def test_markup_and_latex_in_abstracts_come_through_as_text(client: TestClient) -> None:
    title = PAPERS["2505.00002"][0]
    atom = fetch(client, "/feeds/daily.atom", "atom").entries[0]
    assert atom.title == title and atom.summary == ABSTRACT
    assert atom.summary_detail.type == "text/plain"
    assert html.escape(ABSTRACT, quote=False) in atom.content[0].value
    assert "<script>" not in atom.content[0].value
    raw = client.get("/feeds/daily.rss").content
    description = ElementTree.fromstring(raw).findtext("channel/item/description") or ""
    assert "<script>" not in description and html.escape(ABSTRACT, quote=False) in description
    rss = fetch(client, "/feeds/daily.rss", "rss").entries[0]
    assert rss.title == title
    assert ABSTRACT in html.unescape(re.sub(r"</?(p|em|a)\b[^>]*>", "", rss.summary))
    item = fetch(client, "/feeds/daily.json", "json")["items"][0]
    assert item["title"] == title and ABSTRACT in item["content_text"]
    assert html.escape(ABSTRACT, quote=False) in item["content_html"]
    assert "<script>" not in item["content_html"] and item["summary"] == ABSTRACT


def test_the_json_feed_validator_rejects_what_the_spec_forbids() -> None:
    good = {"version": VERSION, "title": "t", "items": [{"id": "1", "content_text": "x"}]}
    check_json_feed(good)
    for broken in (
        {**good, "version": "https://jsonfeed.org/version/1"},
        {key: value for key, value in good.items() if key != "title"},
        {**good, "items": [{"content_text": "x"}]},
        {**good, "items": [{"id": "1", "title": "no content"}]},
        {**good, "items": [{"id": "1", "content_text": "x", "upvotes": 3}]},
        {**good, "items": [{"id": "1", "content_text": "x", "date_published": "2025-05-01"}]},
        {**good, "items": [{"id": "1", "content_text": "x"}, {"id": "1", "content_text": "y"}]},
    ):
        with pytest.raises(AssertionError):
            check_json_feed(broken)


# --- errors and caching ---------------------------------------------------------------------


def test_bad_parameters_and_unknown_formats(client: TestClient) -> None:
    assert client.get("/feeds/daily.xml").status_code == 404
    assert client.get("/orgs/acme/feed.html").status_code == 404
    assert client.get("/orgs/nobody/feed.atom").status_code == 404
    assert client.get("/feeds/for-you/ft_nothing.atom").status_code == 404
    for url in (
        "/feeds/daily.atom?date=2025-02-31",
        "/feeds/weekly.rss?week=2025-W60",
        "/feeds/monthly.json?month=2025-13",
        "/search/feed.atom",
        "/search/feed.atom?q=x&sort=sideways",
        "/search/feed.atom?q=x&from=yesterday",
    ):
        answer = client.get(url, headers={"Accept": "application/json"})
        assert answer.status_code == 400, url
        assert answer.json()["error"]["code"] == "invalid_input"
    assert (
        client.get("/feeds/daily.atom?date=2025-02-31")
        .headers["content-type"]
        .startswith("text/html")
    )
    assert fetch(client, "/feeds/daily.atom?date=2024-01-01", "atom").entries == []


def test_etag_and_cache_headers(client: TestClient) -> None:
    first = client.get("/feeds/trending.atom")
    assert first.headers["cache-control"] == "public, max-age=300"
    again = client.get("/feeds/trending.atom", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and not again.content


def test_search_feed_takes_the_page_parameters(client: TestClient) -> None:
    doc = fetch(client, "/search/feed.json?q=sparse&mode=keyword&cat=cs.CL&code=true", "json")
    assert entry_ids(doc, "json") == ["2505.00001"]
    assert doc["home_page_url"] == BASE + "/search?q=sparse&mode=keyword&cat=cs.CL&code=true"
    doc = fetch(client, "/search/feed.json?org=acme&sort=upvotes", "json")
    assert entry_ids(doc, "json") == ["2505.00002", "2505.00001"]


def test_private_folders_have_no_feed(app: FastAPI, engine: Engine, alice: User) -> None:
    with write_transaction(engine) as connection:
        slug = saves.create_folder(connection, alice, "Secret picks")
        saves.save_paper(connection, alice, "2505.00002", slug)
    owner, csrf = client_as(app, engine, alice)
    feed = f"/users/alice/folders/{slug}/feed.atom"
    assert owner.get(feed).status_code == 404  # even to its owner: a feed has no session
    assert '<link rel="alternate"' not in owner.get(f"/users/alice/folders/{slug}").text
    owner.post(f"/users/alice/folders/{slug}/publish", data={"csrf_token": csrf})
    assert entry_ids(fetch(owner, feed, "atom"), "atom") == ["2505.00002"]
    owner.post(f"/users/alice/folders/{slug}/unpublish", data={"csrf_token": csrf})
    assert TestClient(app).get(feed).status_code == 404


# --- the private "for you" feed -------------------------------------------------------------


def _new_feed_url(page: str) -> str:
    match = re.search(r'<code class="token-value">([^<]+\.atom)</code>', page)
    assert match, page
    return match.group(1)


def test_private_feed_token_lifecycle(app: FastAPI, engine: Engine, alice: User) -> None:
    now = datetime.now(UTC)
    write_records(
        engine,
        *[
            make_record(
                f"2611.0000{n}",
                title=title,
                abstract=f"{title}. We report results.",
                versions=[Version(1, now - timedelta(days=1))],
                upvotes=upvotes,
            )
            for n, (title, upvotes) in enumerate(
                [("Protein folding with diffusion", 4), ("Robot grasping from pixels", 12)]
            )
        ],
    )
    embed_missing(engine, shared_embedder("all-MiniLM-L6-v2", "auto", 0))
    owner, csrf = client_as(app, engine, alice)
    assert 'action="/for-you/feed"' in owner.get("/for-you").text
    assert owner.post("/for-you/feed", data={"csrf_token": "forged"}).status_code == 403
    made = owner.post("/for-you/feed", data={"csrf_token": csrf})
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    url = _new_feed_url(made.text)
    assert url.startswith(BASE + "/feeds/for-you/ft_")
    path = url.removeprefix(BASE)
    assert f'type="application/atom+xml" title="For you (Atom)" href="{url}"' in made.text
    token = path.removeprefix("/feeds/for-you/").removesuffix(".atom")
    assert token not in owner.get("/for-you").text and token not in owner.get("/for-you/feed").text

    reader = TestClient(app)  # a feed reader: no session
    for fmt in FORMATS:
        answer = reader.get(path.replace(".atom", f".{fmt}"))
        assert answer.headers["cache-control"].startswith("private")
        parsed = fetch(reader, path.replace(".atom", f".{fmt}"), fmt)
        assert entry_ids(parsed, fmt) == ["2611.00001", "2611.00000"]  # cold start: trending
    item = fetch(reader, path.replace(".atom", ".json"), "json")["items"][0]
    assert item["_papertide"]["reason"] == "Trending: 12 upvotes"
    # Fetching the feed marks nothing seen: the "for you" page still has both papers.
    assert "Robot grasping from pixels" in owner.get("/for-you").text

    bob = add_user(engine, "bob")
    other, other_csrf = client_as(app, engine, bob)
    assert token[:10] not in other.get("/for-you/feed").text
    assert "No live link" in other.get("/for-you/feed").text
    other.post("/for-you/feed/revoke", data={"csrf_token": other_csrf})
    assert reader.get(path).status_code == 200  # bob's revoke is about bob's link only

    state = owner.get("/for-you/feed").text
    assert token[:10] in state and "Revoke the link" in state
    replaced = _new_feed_url(owner.post("/for-you/feed", data={"csrf_token": csrf}).text)
    assert reader.get(path).status_code == 404  # a new link stops the old one
    assert reader.get(replaced.removeprefix(BASE)).status_code == 200
    revoked = owner.post("/for-you/feed/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 303
    assert 'id="feed-revoked"' in owner.get(revoked.headers["location"]).text
    assert reader.get(replaced.removeprefix(BASE)).status_code == 404
    assert TestClient(app).get("/for-you/feed", follow_redirects=False).status_code == 303


# --- the pages link their feeds -------------------------------------------------------------


def test_list_pages_link_their_feeds(client: TestClient, public_folder: str) -> None:
    pages = (
        "/",
        "/papers/date/2025-05-02",
        "/papers/week/2025-W18",
        "/papers/month/2025-05",
        "/papers/trending",
        "/search?q=sparse&mode=keyword&cat=cs.CL+cs.LG&code=true",
        "/orgs/acme",
        public_folder,
    )
    for page in pages:
        text = client.get(page).text
        head = text.split("</head>", 1)[0]
        links = dict(ALTERNATE.findall(head))
        assert set(links) == set(MEDIA.values()), page
        assert "Atom feed</a>" in text, page
        for fmt, media in MEDIA.items():
            url = html.unescape(links[media])
            fetch(client, url, fmt)
    search_head = client.get("/search?q=sparse&code=true").text.split("</head>", 1)[0]
    assert 'href="/search/feed.atom?q=sparse&amp;code=true"' in search_head
    assert "application/atom+xml" not in client.get("/search").text.split("</head>", 1)[0]


# --- cost -----------------------------------------------------------------------------------


def _statements(app: FastAPI, client: TestClient, url: str) -> int:
    count = 0

    def counter(*_args: Any) -> None:
        nonlocal count
        count += 1

    client.get(url)  # warm: connections opened, caches filled
    event.listen(app.state.engine, "before_cursor_execute", counter)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(app.state.engine, "before_cursor_execute", counter)
    return count


def test_feed_queries_do_not_grow_with_entries(
    app: FastAPI,
    client: TestClient,
    engine: Engine,
    settings: Settings,
    alice: User,
    public_folder: str,
) -> None:
    urls = ["/feeds/daily.atom", "/feeds/trending.rss", "/orgs/acme/feed.json"]
    urls += [public_folder + "/feed.atom", "/search/feed.atom?org=acme&mode=keyword"]
    before = {url: _statements(app, client, url) for url in urls}
    more = [paper(f"2505.{n:05d}", f"More paper {n}", n % 7, n, 3, day=DAY) for n in range(10, 60)]
    write_records(engine, *more)
    daily.compute_trending(engine, settings, now=datetime(2025, 5, 3, 12, tzinfo=UTC))
    with write_transaction(engine) as connection:
        for record in more:
            saves.save_paper(connection, alice, record.arxiv_id, "reading-list")
    after = {url: _statements(app, client, url) for url in urls}
    assert after == before, (before, after)
    assert all(count > 3 for count in before.values()), before
    for url in urls:  # every list now holds more than a feed does
        fmt = re.findall(r"\.(atom|rss|json)\b", url)[0]
        assert len(entry_ids(fetch(client, url, fmt), fmt)) == 50, url
