"""Templates and the small helpers they use: URLs, dates, safe links.

Every template is autoescaped; data is never marked safe. Links to outside sites go through
:func:`http_url`, which keeps only ``http``/``https`` URLs, so a ``javascript:`` URL in the data
can never become a clickable link.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from papertide import __version__ as _package_version
from papertide.catalog.links import http_url
from papertide.config import Settings

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def link_label(url: str) -> str:
    """A URL without its scheme and ``www.``, for display: ``github.com/org/repo``."""
    parts = urlsplit(url)
    host = (parts.hostname or "").removeprefix("www.")
    return (host + parts.path).rstrip("/")


def human_date(value: date | datetime | None) -> str:
    """``May 1, 2025`` (datetimes in UTC, as arXiv gives them)."""
    if value is None:
        return ""
    day = value.date() if isinstance(value, datetime) else value
    return f"{day:%b} {day.day}, {day.year}"


def iso_date(value: date | datetime | None) -> str:
    if value is None:
        return ""
    return (value.date() if isinstance(value, datetime) else value).isoformat()


def utc_time(value: datetime | None) -> str:
    """``Thu, 1 May 2025 17:00 UTC``."""
    if value is None:
        return ""
    return f"{value:%a}, {value.day} {value:%b %Y %H:%M} UTC"


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def paragraphs(text: str | None) -> list[str]:
    """Blank-line separated paragraphs, each on one line (arXiv abstracts are hard-wrapped)."""
    if not text:
        return []
    return [" ".join(p.split()) for p in _PARAGRAPH_BREAK.split(text) if p.strip()]


def paper_url(arxiv_id: str) -> str:
    return "/papers/" + quote(arxiv_id, safe="/.")


def day_url(day: date) -> str:
    return f"/papers/date/{day.isoformat()}"


def week_label(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_url(day: date) -> str:
    return f"/papers/week/{week_label(day)}"


def month_url(day: date) -> str:
    return f"/papers/month/{day.year:04d}-{day.month:02d}"


def arxiv_abs_url(arxiv_id: str) -> str:
    return "https://arxiv.org/abs/" + quote(arxiv_id, safe="/.")


def arxiv_pdf_url(arxiv_id: str) -> str:
    return "https://arxiv.org/pdf/" + quote(arxiv_id, safe="/.")


def doi_url(doi: str) -> str:
    return "https://doi.org/" + quote(doi.strip(), safe="/:;()._-")


def make_environment(settings: Settings) -> Environment:
    """The Jinja environment: autoescaped, strict about undefined names, with our helpers."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    version = quote(_package_version)
    env.globals.update(
        site_name=settings.site_name,
        static_url=lambda path: f"/static/{path}?v={version}",
        paper_url=paper_url,
        day_url=day_url,
        week_url=week_url,
        week_label=week_label,
        month_url=month_url,
        arxiv_abs_url=arxiv_abs_url,
        arxiv_pdf_url=arxiv_pdf_url,
        doi_url=doi_url,
        plural=plural,
    )
    env.filters.update(
        http_url=http_url,
        link_label=link_label,
        human_date=human_date,
        iso_date=iso_date,
        utc_time=utc_time,
        paragraphs=paragraphs,
    )
    return env


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render ``template`` with ``context`` (plus ``section`` for the navigation, default none)."""
    env: Environment = request.app.state.templates
    viewer = getattr(request.state, "viewer", None)
    values = {"section": None, "viewer": viewer, "path": request.url.path, **context}
    page = env.get_template(template).render(values)
    return HTMLResponse(page, status_code=status, headers=headers)
