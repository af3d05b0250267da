"""Pages in a real browser: math typeset by KaTeX, prose between dollar signs left alone, and
hostile titles and abstracts inert (no script runs, no dialog opens)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from browser import live_server, needs_chromium
from factories import listed, make_record, write_records
from sqlalchemy import Engine

from papertide.catalog.records import Author
from papertide.config import Settings

pytestmark = needs_chromium

DAY = date(2025, 5, 2)
HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script>"><svg/onload=alert(3)>'


@pytest.fixture
def site(engine: Engine, settings: Settings) -> Iterator[str]:
    write_records(
        engine,
        make_record(
            "2505.00001",
            title="Bounds for $(k,\\ell)$-sparse graphs",
            abstract="We show $\\sum_{i=1}^n x_i \\le n^2$ and $$E = mc^2.$$ It costs $5 and $10.",
            listing=listed(DAY, 0),
        ),
        make_record(
            "2505.00002",
            title="Stripped math",
            abstract="A test, $boldsymbol{inftyBench+}, and other public test sets including "
            "long survey generation within the window$. Done.",
            listing=listed(DAY, 1),
        ),
        make_record(
            "2505.00003",
            title=f"Hostile {HOSTILE}",
            abstract=f"Abstract {HOSTILE} with a < b & c > d",
            authors=[Author(f"Mallory {HOSTILE}")],
            comments=HOSTILE,
            listing=listed(DAY, 2),
        ),
    )
    with live_server(settings) as url:
        yield url


def test_math_is_typeset_and_prices_stay_text(site: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{site}/papers/2505.00001")
    abstract = page.locator(".abstract").first
    assert page.locator("h1 .katex").count() == 1
    assert abstract.locator(".katex").count() == 2  # the inline formula and the display one
    assert abstract.locator(".katex-display").count() == 1
    assert "It costs $5 and $10." in abstract.inner_text()


def test_prose_between_dollar_signs_is_not_typeset(site: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{site}/papers/2505.00002")
    # The paper's own text (the side column's similar papers may well hold real math).
    assert page.locator(".paper-main .katex, #paper-title .katex").count() == 0
    assert "$boldsymbol{inftyBench+}, and other public" in page.content()


def test_hostile_text_is_inert(site: str, page) -> None:  # type: ignore[no-untyped-def]
    for path in ("/papers/2505.00003", f"/papers/date/{DAY.isoformat()}"):
        page.goto(site + path)
        page.wait_for_load_state("load")
        assert page.dialogs == []
        assert page.locator("img[src=x]").count() == 0
        assert page.locator("svg[onload]").count() == 0
        assert 'onerror="alert(1)"' in page.inner_text("body")
