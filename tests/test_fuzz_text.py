"""Hostile input for the text parsers: comment markdown and the search query syntax.

Markdown: for any source (generated from markdown syntax, raw HTML, attribute and URL
injection), the rendered HTML holds only the allowed tags and attributes, no event handler,
no script and no link but http(s), mailto and the site's own user pages; rendering never
raises, and sanitising again changes nothing.

Search queries: any text parses, or is refused with InvalidInput and a message; a parsed
query reads back the same from its cleaned text and from a query written out of its parts;
and a few hundred generated queries go through the real search service on both engines, by
the /search page and /api/v1/search, without a 5xx.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import date
from html.parser import HTMLParser
from urllib.parse import urlencode

import pytest
from factories import listed, make_record, write_records
from fastapi.testclient import TestClient
from fuzz_strategies import HOSTILE_TEXT, almost_ids, fuzz_settings
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import Engine

from papertide.catalog.ids import parse_arxiv_id
from papertide.catalog.records import Author
from papertide.community.markdown import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    render_markdown,
    sanitize,
    trusted_html,
)
from papertide.config import Settings
from papertide.errors import InvalidInput
from papertide.search.filters import Sort
from papertide.search.query import _TERM, MAX_QUERY_LENGTH, SearchQuery, parse_query
from papertide.search.service import Mode, SearchRequest, SearchService
from papertide.web.app import create_app
from papertide.web.params import FIRST_YEAR, LAST_YEAR, parse_day, parse_month, parse_week

# --- markdown ----------------------------------------------------------------------------------

INJECTIONS = (
    "<script>alert(1)</script>",
    "</script><script>",
    "<img src=x onerror=alert(1)>",
    "<svg/onload=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "<iframe src=//evil.example.org>",
    "<style>*{}</style>",
    "<div style=x:expression(alert(1))>",
    '" onmouseover="alert(1)',
    "' onfocus='alert(1)",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    "java&#x09;script:alert(1)",
    "&#106;avascript:alert(1)",
    "\x01javascript:alert(1)",
    " javascript:alert(1)",
    "vbscript:msgbox(1)",
    "data:text/html;base64,PHNjcmlwdD4=",
    "//evil.example.org",
    "/logout",
    "/users/../logout",
    "https://example.org/a?b=1&c=<2>",
    "mailto:a@example.org",
    "@alice",
    "@bob-b",
    "&lt;script&gt;",
    "<!-- x -->",
    "<![CDATA[x]]>",
    "\u2028",
    "\x00",
)
MARKDOWN = (
    "[",
    "](",
    ")",
    "<",
    ">",
    "`",
    "```\n",
    "$",
    "$$",
    "\n",
    "\n\n",
    "*",
    "_",
    "~~",
    "# ",
    "| a | b |\n|---|:-:|\n| ",
    "> ",
    "- ",
    "1. ",
    "![x](",
    '"',
    " 'title'",
    "<https://",
    "\\",
    "[x]: ",
    "    ",
)
markdown_sources = st.lists(
    st.one_of(st.sampled_from(INJECTIONS), st.sampled_from(MARKDOWN), st.text(max_size=12)),
    max_size=40,
).map("".join)
SAFE_HREF = re.compile(r"(?:https?://|mailto:)[^\s]*|/users/[A-Za-z0-9_-]{3,40}", re.IGNORECASE)
KNOWN = {"alice": "alice", "bob-b": "Bob-B"}


def resolve(names: set[str]) -> Mapping[str, str]:
    return {name: KNOWN[name] for name in names if name in KNOWN}


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


def check_safe(rendered: str) -> None:
    """Only allowed tags and attributes; links only to safe places; no script anywhere."""
    parser = Elements()
    parser.feed(rendered)
    parser.close()
    for tag, attrs in parser.found:
        assert tag in ALLOWED_TAGS, (tag, rendered)
        allowed = (
            ALLOWED_ATTRIBUTES.get(tag, set()) | {"class"} | ({"rel"} if tag == "a" else set())
        )
        for name, value in attrs:
            assert name in allowed and not name.startswith("on"), (tag, name, rendered)
            if name == "href":
                assert value is not None and SAFE_HREF.fullmatch(value.strip()), (value, rendered)
            if name == "style":
                assert value is not None and re.fullmatch(r"text-align:\s*\w+;?", value), value
    assert not re.search(r"<\s*(script|iframe|img|svg|style)", rendered, re.IGNORECASE), rendered


@fuzz_settings(400)
@given(markdown_sources)
@example("[x](javascript:alert(1))")
@example('<a href="/users/alice" onclick="x">@alice</a>')
def test_rendered_markdown_is_safe(source: str) -> None:
    rendered = render_markdown(source, resolve)
    check_safe(rendered)
    assert sanitize(rendered) == rendered  # stable: sanitising what was stored changes nothing
    assert str(trusted_html(rendered)) == rendered


@fuzz_settings(300)
@given(
    st.lists(st.one_of(st.sampled_from(INJECTIONS), st.text(max_size=10)), max_size=20).map("".join)
)
def test_any_stored_html_is_sanitised(stored: str) -> None:
    """Stored comment HTML is sanitised again on the way out, whatever it holds."""
    check_safe(str(trusted_html(stored)))


# --- search query syntax -------------------------------------------------------------------------

SYNTAX = ('"', "\u201c", "\u201d", "-", ":", "author:", "cat:", "category:", "CAT:", " ", "\t")
query_texts = st.lists(
    st.one_of(
        st.text(max_size=12),
        st.sampled_from(SYNTAX),
        st.sampled_from(HOSTILE_TEXT[:-2]),
        almost_ids(),
        st.sampled_from(["cs.CL", "hep-th", "cs.cl,", "math.GT;", "x.y.z", "cs.ß"]),
    ),
    max_size=25,
).map("".join)


def parsed(raw: str) -> SearchQuery | None:
    try:
        query = parse_query(raw)
    except InvalidInput as exc:
        assert exc.message.strip()
        return None
    assert isinstance(query, SearchQuery)
    return query


def written_out(query: SearchQuery) -> str:
    """The query as one would type it: words, "phrases", -exclusions, author: and cat:."""

    def quoted(value: str) -> str:
        return value if _TERM.fullmatch(value) else f'"{value}"'

    parts = [*query.terms, *(f'"{p}"' for p in query.phrases)]
    parts += [f"-{quoted(value)}" for value in query.excluded]
    parts += [f'author:"{name}"' for name in query.authors]
    parts += [f"cat:{category}" for category in query.categories]
    return " ".join(parts)


def parts(query: SearchQuery) -> tuple[tuple[str, ...], ...]:
    return query.terms, query.phrases, query.excluded, query.authors, query.categories


@fuzz_settings(300)
@given(query_texts)
@example('author:"-" cat:cs.CL')
def test_queries_parse_the_same_again(raw: str) -> None:
    query = parsed(raw)
    if query is None:
        return
    again = parse_query(query.raw)
    assert again == query  # the cleaned text reads the same
    text = written_out(query)
    if len(text) > MAX_QUERY_LENGTH:
        return
    written = parse_query(text)
    if written.arxiv_id is not None and query.arxiv_id is None:
        # "2502.00001v2 -" has the term 2502.00001v2; written out alone it is an id query
        assert written.terms == (parse_arxiv_id(query.terms[0]).id,), text
    else:
        assert parts(written) == parts(query), text


# --- dates, weeks and months in URLs ------------------------------------------------------------

periods = st.one_of(
    st.text(max_size=14),
    st.dates().map(str),
    st.builds(lambda y, w: f"{y:04d}-W{w:02d}", st.integers(0, 10_000), st.integers(0, 60)),
    st.builds(lambda y, m: f"{y:04d}-{m:02d}", st.integers(0, 10_000), st.integers(0, 14)),
    st.sampled_from(
        ["٢٠٢٥-٠٥", "٢٠٢٥-٠٥-٠١", "２０２５-W０６", " 2025-05 ", "2025-w6", "0000-01-01"]
    ),
)


@fuzz_settings(300)
@given(periods)
def test_url_periods(text: str) -> None:
    """The date, week and month of list URLs (/papers/date/..., ?week=): a value in range, or
    InvalidInput quoting what was given."""
    for parse in (parse_day, parse_week, parse_month):
        try:
            value = parse(text)
        except InvalidInput as exc:
            assert repr(text) in exc.message or text.strip() in exc.message, exc.message
            continue
        assert text.strip().isascii(), (parse.__name__, text, value)
        if parse is parse_day:
            assert isinstance(value, date) and FIRST_YEAR <= value.year <= LAST_YEAR
        else:
            year, number = value  # type: ignore[misc]
            assert FIRST_YEAR <= year <= LAST_YEAR and 1 <= number <= 53


# --- through the search service ------------------------------------------------------------------

PAPERS = [
    ("2502.00001", "Speculative decoding with small draft models", "Drafts propose, all verify."),
    ("2502.00002", "KV cache eviction for long prompts", "Evict key-value entries by score."),
    ("2502.00003", "Transformers for <script>alert(1)</script> parsing", "Tags & entities."),
    ("2502.00004", "Bounds for $(k,\\ell)$-sparse graphs", "Graph sparsity bounds via decoding."),
    ("hep-th/9901001", "String junctions and their duals", "Heterotic string theory on $T^2$."),
]
WORDS = ("decoding", "cache", "kv-cache", "string", "graphs", "2502.00001", "hep-th/9901001")


@pytest.fixture
def client(engine: Engine, settings: Settings) -> Iterator[TestClient]:
    authors = [Author("Ada Lovelace"), Author("Grace O'Hopper")]
    records = [
        make_record(
            ident,
            title=title,
            abstract=abstract,
            authors=authors,
            listing=listed(date(2025, 2, 3), n) if n < 3 else None,
        )
        for n, (ident, title, abstract) in enumerate(PAPERS)
    ]
    write_records(engine, *records)
    served = settings.replace(
        embed_in_background=False, scheduler=False, api_ip_rate_limit=1_000_000
    )
    app = create_app(served)
    yield TestClient(app)
    app.state.engine.dispose()


search_queries = st.lists(st.one_of(query_texts, st.sampled_from(WORDS)), min_size=1, max_size=3)
SORTS = ("relevance", "date", "upvotes", "bogus")


@fuzz_settings(60, deadline_ms=None)
@given(
    words=search_queries,
    sort=st.sampled_from(SORTS),
    extra=st.sampled_from([{}, {"cat": "cs.CL"}, {"from": "2025-01-01", "to": "2024-01-01"}]),
    api_turn=st.integers(0, 2),
)
def test_search_never_fails(
    client: TestClient, words: list[str], sort: str, extra: dict[str, str], api_turn: int
) -> None:
    """Each query through the service itself and the /search page (a third of them through
    /api/v1/search too). Keyword mode: the semantic half needs the model, and falls back to
    these same words while it loads (test_api_schema.py runs the default mode)."""
    q = " ".join(words)
    service: SearchService = client.app.state.search  # type: ignore[attr-defined]
    try:
        order = Sort.parse(sort)
        outcome = service.search(SearchRequest(q, sort=order, mode=Mode.KEYWORD))
    except InvalidInput as exc:
        assert exc.message.strip()
    else:
        assert outcome.total >= len(outcome.ids) and len(outcome.ids) <= 20
    # Sent as UTF-8, lone surrogates and all (they arrive as invalid UTF-8).
    sent = q.encode("utf-8", "surrogatepass")
    params = {"sort": sort, "mode": "keyword", **extra}
    page = client.get("/search?" + urlencode({"q": sent, **params}))
    assert page.status_code in (200, 400), (q, page.status_code, page.text[-500:])
    if api_turn:
        return
    answer = client.get("/api/v1/search?" + urlencode({"q": sent[:1000], **params}))
    assert answer.status_code in (200, 400), (q, answer.status_code, answer.text[-500:])
    if answer.status_code == 400:
        assert answer.json()["error"]["message"]
    else:
        assert isinstance(answer.json()["items"], list)


EDGE_DAYS = ("9999-12-31", "0001-01-01", "1900-01-01", "2999-12-31")
EDGE_WEEKS = ("9999-W52", "0001-W01", "1900-W01", "2999-W52")
EDGE_MONTHS = ("9999-12", "0001-01", "1900-01", "2999-12")


def test_the_first_and_last_days_never_fail(client: TestClient) -> None:
    """Days, weeks and months at the ends of the calendar, wherever a URL takes one: refused
    or answered, never a 5xx (year 1 and 9999 overflowed when pages linked their neighbours
    or a search its end of day)."""
    paths = [
        path
        for day in EDGE_DAYS
        for path in (
            f"/papers/date/{day}",
            f"/api/daily_papers?date={day}",
            f"/api/v1/lists/daily/{day}",
            f"/feeds/daily.atom?date={day}",
            f"/search?q=graphs&from={day}&to={day}&mode=keyword",
            f"/api/v1/papers?from={day}&to={day}",
            f"/api/v1/search?q=graphs&from={day}&to={day}&mode=keyword",
        )
    ]
    for week in EDGE_WEEKS:
        paths += [f"/papers/week/{week}", f"/api/daily_papers?week={week}"]
        paths += [f"/api/v1/lists/weekly/{week}", f"/feeds/weekly.rss?week={week}"]
    for month in EDGE_MONTHS:
        paths += [f"/papers/month/{month}", f"/api/daily_papers?month={month}"]
        paths += [f"/api/v1/lists/monthly/{month}", f"/feeds/monthly.json?month={month}"]
    failed = [(path, status) for path in paths if (status := client.get(path).status_code) >= 500]
    assert failed == []
