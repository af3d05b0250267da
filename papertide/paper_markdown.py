"""A paper page as Markdown (``/papers/{id}.md``, what ``HfApi.read_paper`` returns).

The metadata the paper page shows, as text: the title, the authors, dates, upvotes, links to
arXiv, the code and the project page, the AI summary and the abstract. Hugging Face's version
carries the paper's full text when arXiv has an HTML rendering; this catalog has only the
metadata. Texts keep their LaTeX; anything that could open an HTML tag is escaped, and only
http(s) links are written, so a Markdown renderer shows the text and nothing else.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from papertide.cards import PaperPage

_TAG_OPENER = re.compile(r"<(?=[A-Za-z/!?])")
_SAFE_URL = re.compile(r"https?://[^\s<>()\[\]]+")


def _text(value: str) -> str:
    """One line of plain text: runs of whitespace as one space, no HTML tags."""
    return _TAG_OPENER.sub("&lt;", " ".join(value.split()))


def _link(label: str, url: str | None) -> str | None:
    if url is None or _SAFE_URL.fullmatch(url.strip()) is None:
        return None
    return f"[{label}]({url.strip()})"


def arxiv_url(kind: str, arxiv_id: str) -> str:
    return f"https://arxiv.org/{kind}/" + quote(arxiv_id, safe="/.")


def paper_markdown(page: PaperPage, site_url: str | None = None) -> str:
    """The page of ``page`` as Markdown; ``site_url`` (the public address) adds a link to it."""
    lines = [f"# {_text(page.title)}", ""]
    if page.withdrawn:
        lines += ["> This paper was withdrawn by its authors.", ""]
    facts: list[str] = []
    if page.authors:
        names = [
            _text(a.name) + (f" ({_text(a.affiliation)})" if a.affiliation else "")
            for a in page.authors
        ]
        facts.append("**Authors:** " + ", ".join(names))
    if page.published_at is not None:
        facts.append(f"**Published on arXiv:** {page.published_at:%Y-%m-%d}")
    if page.days_listed:
        facts.append(f"**On the daily list:** {page.days_listed[0].isoformat()}")
    facts.append(f"**Upvotes:** {page.upvotes}")
    if page.organization_name:
        facts.append(f"**Organization:** {_text(page.organization_name)}")
    if page.categories:
        facts.append("**Categories:** " + ", ".join(_text(c) for c in page.categories))
    for label, value in (
        ("arXiv comments", page.comments),
        ("Journal reference", page.journal_ref),
        ("DOI", page.doi),
    ):
        if value:
            facts.append(f"**{label}:** {_text(value)}")
    links = [
        _link(f"arXiv:{page.arxiv_id}", arxiv_url("abs", page.arxiv_id)),
        _link("PDF", arxiv_url("pdf", page.arxiv_id)),
        _link("Code", page.code_url),
        _link("Project page", page.project_url),
    ]
    if site_url:
        page_url = site_url.rstrip("/") + "/papers/" + quote(page.arxiv_id, safe="/.")
        links.append(_link("Paper page", page_url))
    facts.append("**Links:** " + " · ".join(link for link in links if link))
    # Two trailing spaces: a line break between the facts, one paragraph in Markdown.
    lines += [fact + "  " for fact in facts[:-1]] + [facts[-1], ""]
    if page.ai_summary:
        lines += ["## AI summary", "", _text(page.ai_summary), ""]
    lines += ["## Abstract", "", _text(page.abstract) if page.abstract else "(no abstract)", ""]
    return "\n".join(lines)
