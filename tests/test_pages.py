"""The web pages, on both engines: content, errors, escaping, security headers, static files."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from factories import listed, make_record, write_records
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from papertide import daily
from papertide.catalog.records import Author, OrganizationRef, Version
from papertide.config import Settings
from papertide.db.engine import make_engine
from papertide.db.migrate import migrate
from papertide.errors import NotReady
from papertide.web import create_app
from papertide.web.rendering import STATIC_DIR, TEMPLATES_DIR

MAY_1, MAY_2 = date(2025, 5, 1), date(2025, 5, 2)
HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)>"><svg/onload=alert(3)>'


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    # No scheduler: its trending job would recompute the scores the catalog fixed for a date.
    with TestClient(create_app(settings.replace(scheduler=False))) as test_client:
        yield test_client


@pytest.fixture
def catalog(engine: Engine, settings: Settings) -> None:
    """Three papers on May 1, one on May 2, with trending computed a day later."""
    write_records(
        engine,
        make_record(
            "2505.00001",
            title="Sparse attention with $O(n \\log n)$ cost",
            abstract="We show that $a<b$ & more.\n\nA second paragraph.",
            authors=[Author("Ada Lovelace", "Analytical Engines"), *map(Author, "BCD")],
            upvotes=42,
            listing=listed(MAY_1, 1),
            organization=OrganizationRef("acme", "Acme Labs"),
            code_url="https://github.com/acme/sparse",
            project_url="https://acme.github.io/sparse",
            comments="12 pages, 3 figures",
            journal_ref="J. Sparse 1 (2025)",
            doi="10.1000/sparse.1",
            ai_summary="Attention, but sparse.",
            ai_summary_model="summarizer-7b",
            versions=[
                Version(1, datetime(2025, 4, 29, 17, tzinfo=UTC)),
                Version(2, datetime(2025, 4, 30, 9, tzinfo=UTC)),
            ],
        ),
        make_record("2505.00002", title="Dense baselines", upvotes=7, listing=listed(MAY_1, 0)),
        make_record("2505.00003", title="Quiet results", upvotes=0, listing=listed(MAY_1, 2)),
        make_record("2505.00004", title="Next day paper", upvotes=3, listing=listed(MAY_2, 0)),
        make_record("hep-th/9901001", title="Old style id", upvotes=1, listing=listed(MAY_2, 1)),
    )
    daily.compute_trending(engine, settings, now=datetime(2025, 5, 3, 16, tzinfo=UTC))


def main_text(html: str) -> str:
    return html.split('<main id="content"', 1)[1].split("</main>", 1)[0]


# --- every route ---------------------------------------------------------------------------


@pytest.mark.usefixtures("catalog")
def test_day_page_lists_cards_by_upvotes_with_their_details(client: TestClient) -> None:
    response = client.get("/papers/date/2025-05-01")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = main_text(response.text)
    titles = re.findall(
        r'<a class="math" data-math="inline" href="/papers/[^"]+">([^<]+)</a>', html
    )
    assert titles == [
        "Sparse attention with $O(n \\log n)$ cost",
        "Dense baselines",
        "Quiet results",
    ]
    assert re.findall(r'<span class="votes-count">(\d+)</span>', html) == ["42", "7", "0"]
    assert "4 authors" in html and "2 authors" in html
    assert "Ada Lovelace, B, C, et al." in html
    assert '<a class="pill" href="https://github.com/acme/sparse"' in html
    assert '<a class="pill" href="https://acme.github.io/sparse"' in html
    assert 'href="https://arxiv.org/abs/2505.00001"' in html
    assert "Acme Labs" in html
    assert "We show that $a&lt;b$ &amp; more. A second paragraph." in html
    assert 'href="/papers/date/2025-05-02"' in html  # next day with papers
    assert 'value="2025-05-01"' in html  # the date picker
    assert "3 papers" in html


@pytest.mark.usefixtures("catalog")
def test_front_page_falls_back_to_the_latest_day_and_says_so(client: TestClient) -> None:
    html = main_text(client.get("/").text)
    assert "No papers yet for today" in html
    assert "showing the latest list, from May 2, 2025" in html
    assert "Next day paper" in html and "Sparse attention" not in html
    assert 'href="/papers/date/2025-05-01"' in html


def test_front_page_shows_today_when_today_has_papers(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    today = daily.today(settings)
    write_records(
        engine,
        make_record("2505.00009", title="Fresh today", listing=listed(today, 0)),
        make_record("2505.00008", title="Yesterday", listing=listed(today - timedelta(days=1))),
    )
    html = main_text(client.get("/").text)
    assert "Fresh today" in html and "Yesterday" not in html
    assert "No papers yet" not in html


@pytest.mark.usefixtures("catalog")
def test_week_and_month_pages_list_each_paper_with_its_day(client: TestClient) -> None:
    week = client.get("/papers/week/2025-W18")
    assert week.status_code == 200
    html = main_text(week.text)
    assert "Week 18 of 2025: Apr 28, 2025 to May 4, 2025" in html
    assert re.findall(r'<span class="votes-count">(\d+)</span>', html) == ["42", "7", "3", "1", "0"]
    assert 'href="/papers/week/2025-W17"' in html and 'href="/papers/week/2025-W19"' in html
    assert 'href="/papers/date/2025-05-02"' in html  # "Listed May 2"
    month = main_text(client.get("/papers/month/2025-05").text)
    assert "May 2025" in month and "5 papers" in month
    assert 'href="/papers/month/2025-04"' in month and 'href="/papers/month/2025-06"' in month
    december = main_text(client.get("/papers/month/2024-12").text)
    assert 'href="/papers/month/2025-01"' in december
    assert "No papers in December 2024." in december


@pytest.mark.usefixtures("catalog")
def test_weekly_and_monthly_links_go_to_the_latest_list(client: TestClient) -> None:
    week = client.get("/papers/week", follow_redirects=False)
    assert week.status_code == 307 and week.headers["location"] == "/papers/week/2025-W18"
    month = client.get("/papers/month", follow_redirects=False)
    assert month.headers["location"] == "/papers/month/2025-05"
    picked = client.get("/papers/date?date=2025-05-01", follow_redirects=False)
    assert picked.status_code == 303 and picked.headers["location"] == "/papers/date/2025-05-01"


@pytest.mark.usefixtures("catalog")
def test_pagination(engine: Engine, settings: Settings) -> None:
    with TestClient(create_app(settings.replace(page_size=2))) as small:
        first = main_text(small.get("/papers/month/2025-05").text)
        assert "Page 1 of 3" in first and 'href="/papers/month/2025-05?page=2"' in first
        third = main_text(small.get("/papers/month/2025-05?page=3").text)
        assert third.count('class="card"') == 1 and '<ol class="cards" start="5">' in third
        beyond = small.get("/papers/month/2025-05?page=4")
        assert beyond.status_code == 404 and "it has 3" in beyond.text


@pytest.mark.usefixtures("catalog")
def test_trending_page_shows_the_reason_for_each_card(client: TestClient) -> None:
    html = main_text(client.get("/papers/trending").text)
    assert "(upvotes + 1) / (hours since listed + 2)^1.5" in html
    assert "42 upvotes, listed 2 days ago, #1 on the list" in html
    assert html.index("Sparse attention") < html.index("Dense baselines")


@pytest.mark.usefixtures("catalog")
def test_paper_page_shows_everything(client: TestClient) -> None:
    response = client.get("/papers/2505.00001")
    assert response.status_code == 200
    html = response.text
    assert "<title>Sparse attention with $O(n \\log n)$ cost · Papertide</title>" in html
    html = main_text(html)
    assert '<span class="author-name">Ada Lovelace</span>' in html
    assert '<span class="affiliation">Analytical Engines</span>' in html
    assert '<p class="math">We show that $a&lt;b$ &amp; more.</p>' in html
    assert '<p class="math">A second paragraph.</p>' in html
    assert "Attention, but sparse." in html and "Generated by summarizer-7b" in html
    assert 'href="https://arxiv.org/abs/2505.00001"' in html
    assert 'href="https://arxiv.org/pdf/2505.00001"' in html
    assert 'href="https://arxiv.org/abs/2505.00001v2"' in html
    assert 'href="https://doi.org/10.1000/sparse.1"' in html
    assert 'href="https://github.com/acme/sparse"' in html
    assert 'href="https://acme.github.io/sparse"' in html
    assert "Tue, 29 Apr 2025 17:00 UTC" in html and "Wed, 30 Apr 2025 09:00 UTC" in html
    assert "12 pages, 3 figures" in html and "J. Sparse 1 (2025)" in html
    assert '<li class="tag tag-primary">cs.CL</li>' in html
    assert '<span class="votes-count">42</span>' in html
    assert "Acme Labs" in html
    assert '<a href="/papers/date/2025-05-01"><time datetime="2025-05-01">' in html


@pytest.mark.usefixtures("catalog")
def test_paper_addresses_are_canonical(client: TestClient) -> None:
    versioned = client.get("/papers/2505.00001v2", follow_redirects=False)
    assert versioned.status_code == 301 and versioned.headers["location"] == "/papers/2505.00001"
    old_style = client.get("/papers/hep-th/9901001")
    assert old_style.status_code == 200 and "Old style id" in old_style.text


# --- errors --------------------------------------------------------------------------------


def test_unknown_paper_is_404_naming_the_id(client: TestClient) -> None:
    response = client.get("/papers/2505.09999")
    assert response.status_code == 404
    assert "no paper 2505.09999 in this catalog" in response.text
    assert '<h1 id="error-title">Not found</h1>' in response.text
    as_json = client.get("/papers/2505.09999", headers={"Accept": "application/json"})
    assert as_json.status_code == 404
    assert as_json.json() == {
        "error": {"code": "not_found", "message": "no paper 2505.09999 in this catalog"}
    }


def test_unknown_route_is_404_with_the_same_page(client: TestClient) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert '<h1 id="error-title">Not found</h1>' in response.text
    assert "there is no page at /no/such/page" in response.text
    assert client.get("/nope", headers={"Accept": "application/json"}).json()["error"]["code"] == (
        "not_found"
    )


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/papers/date/2025-13-45", "&#39;2025-13-45&#39; is not a date"),
        ("/papers/date/2025-02-30", "day is out of range"),
        ("/papers/date/yesterday", "expected YYYY-MM-DD"),
        ("/papers/date?date=5/1/2025", "expected YYYY-MM-DD"),
        ("/papers/week/2025-W54", "2025-W54 is not an ISO week"),
        ("/papers/week/2021-W53", "2021-W53 is not an ISO week"),
        ("/papers/week/2025-18", "expected YYYY-Www"),
        ("/papers/month/2025-13", "2025-13 is not a month"),
        ("/papers/month/May", "expected YYYY-MM"),
        ("/papers/trending?page=0", "page"),
        ("/papers/trending?page=abc", "page"),
    ],
)
def test_bad_dates_weeks_months_and_pages_are_400(
    client: TestClient, path: str, message: str
) -> None:
    response = client.get(path)
    assert response.status_code == 400
    assert message in response.text
    assert "Bad request" in response.text
    as_json = client.get(path, headers={"Accept": "application/json"})
    assert as_json.json()["error"]["code"] == "invalid_input"


def test_empty_catalog_says_how_to_load_papers(client: TestClient) -> None:
    html = main_text(client.get("/papers/date/2025-05-03").text)
    assert "No papers on 2025-05-03." in html
    assert "<code>papertide demo</code>" in html and "<code>papertide ingest PATH</code>" in html
    trending = main_text(client.get("/papers/trending").text)
    assert "Nothing is trending yet." in trending


def test_app_refuses_to_start_with_a_pending_migration(empty_db_url: str) -> None:
    from papertide.config import load_settings

    settings = load_settings(env={"PAPERTIDE_DATABASE_URL": empty_db_url})
    with pytest.raises(NotReady, match="papertide db migrate"):
        create_app(settings)
    engine = make_engine(empty_db_url)
    migrate(engine)
    engine.dispose()
    assert create_app(settings) is not None


# --- security ------------------------------------------------------------------------------


def test_hostile_input_is_escaped_everywhere(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    write_records(
        engine,
        make_record(
            "2505.00666",
            title=f"Title {HOSTILE}",
            abstract=f"Abstract {HOSTILE} with $a<b$ and \\(x > y\\)",
            authors=[Author(f"Author {HOSTILE}", f"Affiliation {HOSTILE}")],
            comments=f"Comments {HOSTILE}",
            journal_ref=f"Journal {HOSTILE}",
            organization=OrganizationRef("evil", f"Org {HOSTILE}"),
            code_url="javascript:alert(1)",
            project_url="JaVaScRiPt:alert(2)",
            upvotes=1,
            listing=listed(MAY_1, 0),
        ),
    )
    daily.compute_trending(engine, settings, now=datetime(2025, 5, 2, tzinfo=UTC))
    for path in ("/papers/date/2025-05-01", "/papers/2505.00666", "/papers/trending", "/"):
        html = client.get(path).text
        assert "<script>alert" not in html and "<img src=x" not in html, path
        assert "<svg/onload" not in html and "onerror=alert(2)>" not in html, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
        assert "javascript:" not in html.lower(), path
    page = client.get("/papers/2505.00666").text
    assert "Author &lt;script&gt;" in page and "Affiliation &lt;script&gt;" in page
    assert "Comments &lt;script&gt;" in page and "Org &lt;script&gt;" in page
    assert "Journal &lt;script&gt;" in page
    assert "$a&lt;b$ and \\(x &gt; y\\)" in page
    assert "&#34;&gt;&lt;svg/onload=alert(3)&gt;" in page


def test_templates_never_mark_data_safe_and_have_no_inline_scripts() -> None:
    for template in TEMPLATES_DIR.glob("*.html"):
        text = template.read_text()
        assert "|safe" not in text.replace(" ", ""), template.name
        assert "Markup(" not in text, template.name
        for script in re.findall(r"<script[^>]*>.*?</script>", text, re.S):
            assert "src=" in script and re.search(r">\s*</script>", script), template.name


@pytest.mark.usefixtures("catalog")
@pytest.mark.parametrize("path", ["/", "/papers/2505.00001", "/nope", "/static/papertide.css"])
def test_security_headers_on_every_response(client: TestClient, path: str) -> None:
    headers = client.get(path).headers
    csp = headers["content-security-policy"]
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
    ):
        assert directive in csp
    script_src = next(d for d in csp.split("; ") if d.startswith("script-src"))
    assert "unsafe-inline" not in script_src and "unsafe-eval" not in script_src
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/static/katex/katex.min.js", "javascript"),
        ("/static/katex/katex.min.css", "text/css"),
        ("/static/papertide.js", "javascript"),
        ("/static/katex/fonts/KaTeX_Main-Regular.woff2", "font/woff2"),
        ("/static/papertide.js", "javascript"),
        ("/static/papertide.css", "text/css"),
    ],
)
def test_static_files_are_served(client: TestClient, path: str, content_type: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert content_type in response.headers["content-type"]
    assert len(response.content) > 100


def test_katex_is_vendored_with_its_licence() -> None:
    katex = STATIC_DIR / "katex"
    assert "MIT License" in (katex / "LICENSE").read_text()
    fonts = {p.suffix for p in Path(katex, "fonts").iterdir()}
    assert fonts == {".woff2"}
    css = (katex / "katex.min.css").read_text()
    assert "fonts/KaTeX_Main-Regular.woff2" in css


def test_unexpected_errors_get_the_same_error_page(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(daily, "day_view", broken)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.get("/papers/date/2025-05-01")
        assert response.status_code == 500
        assert "Server error" in response.text and "boom" not in response.text
        as_json = client.get("/", headers={"Accept": "application/json"})
        assert as_json.status_code == 500
        assert as_json.json()["error"]["code"] == "internal_error"


def test_paper_page_with_only_a_title(client: TestClient, engine: Engine) -> None:
    write_records(
        engine,
        make_record(
            "2505.00042", title="Bare", abstract="", authors=[], categories=[], versions=[]
        ),
    )
    html = main_text(client.get("/papers/2505.00042").text)
    assert "Bare" in html and "No abstract." in html and "Not on any daily list yet." in html
