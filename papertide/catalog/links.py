"""Code and project links found in a paper's abstract and comments.

Code: the first GitHub, GitLab, Hugging Face (models, datasets, spaces), Bitbucket or Codeberg
repository URL. Project page: a URL introduced by "project page", "homepage", "website" or
"demo", else a ``*.github.io`` page. URLs are trimmed of trailing punctuation that the sentence
around them added (``.``, ``)``, ``,``) and of LaTeX ``\\url{...}`` wrappers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

_URL = r"https?://[^\s<>\"'{}\\]+"
_URL_RE = re.compile(_URL, re.IGNORECASE)
_CODE_RE = re.compile(
    r"https?://(?:www\.)?(?:"
    r"github\.com/[\w.-]+/[\w.-]+"
    r"|gitlab\.com/[\w.-]+(?:/[\w.-]+)+"
    r"|huggingface\.co/(?:spaces/|datasets/)?[\w.-]+/[\w.-]+"
    r"|bitbucket\.org/[\w.-]+/[\w.-]+"
    r"|codeberg\.org/[\w.-]+/[\w.-]+"
    r")",
    re.IGNORECASE,
)
# A URL counts as a project page when one of these words stands shortly before it.
_PROJECT_CUE_RE = re.compile(
    r"(?:project\s*page|project\s*website|homepage|home\s*page|website|webpage|demo)"
    r"[^.;\n]{0,30}$",
    re.IGNORECASE,
)
_GITHUB_IO_RE = re.compile(r"https?://[\w.-]+\.github\.io(?:/[^\s<>\"'{}\\]*)?", re.IGNORECASE)
_TRAILING = ".,;:)]}>'\"!?"
# Path segments that name a GitHub page, not a repository.
_NOT_REPOS = {"github.com/orgs", "github.com/sponsors", "github.com/features", "github.com/topics"}


@dataclass(frozen=True, slots=True)
class PaperLinks:
    code_url: str | None
    project_url: str | None


def _clean(url: str) -> str:
    url = url.rstrip(_TRAILING)
    # Balanced parentheses belong to the URL (Wikipedia-style); unbalanced ones to the text.
    while url.endswith(")") and url.count("(") < url.count(")"):
        url = url[:-1]
    return url.removesuffix(".git")


def find_code_url(text: str) -> str | None:
    for match in _CODE_RE.finditer(text):
        url = _clean(match.group(0))
        prefix = "/".join(url.split("://", 1)[1].split("/")[:2]).lower().removeprefix("www.")
        if prefix not in _NOT_REPOS:
            return url
    return None


def find_project_url(text: str, code_url: str | None = None) -> str | None:
    for match in _URL_RE.finditer(text):
        before = text[max(0, match.start() - 45) : match.start()]
        if _PROJECT_CUE_RE.search(before.removesuffix("\\url{")):
            url = _clean(match.group(0))
            if url != code_url:
                return url
    page = _GITHUB_IO_RE.search(text)
    return _clean(page.group(0)) if page else None


def extract_links(*texts: str | None) -> PaperLinks:
    """Code and project links from the given texts (abstract, comments), first found wins."""
    joined = "\n".join(t for t in texts if t)
    if "http" not in joined:
        return PaperLinks(None, None)
    code = find_code_url(joined)
    return PaperLinks(code, find_project_url(joined, code))


def http_url(url: str | None) -> str | None:
    """``url`` if it is an absolute http(s) URL with a host, else None (never linked)."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        return None
    return url
