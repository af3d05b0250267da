"""The search box's query syntax: words, "phrases", -exclusions, author: and cat: filters.

The syntax is the one web search engines taught everybody, and it is parsed leniently: a query is
typed by a person, so an unclosed quote runs to the end, a stray ``-`` or an empty ``author:`` is
ignored, and punctuation around words is dropped. Only two things are refused, with InvalidInput:
a ``cat:`` value that cannot be an arXiv category (a silently ignored filter would show results
the user asked to exclude) and a query over MAX_QUERY_LENGTH characters.

A small hand-written scanner does the work; a grammar library would be more code than the syntax.

Rules, in the order the scanner applies them:

* The query is NFC-normalised; control characters other than tab, newline, CR, VT and FF (which
  are whitespace) are removed, as are lone surrogates; the ends are stripped. The length limit is
  measured after that, so pasted trailing newlines do not count.
* A whole query that is one arXiv id or arXiv / Hugging Face paper URL (``2505.01234v2``,
  ``arXiv:hep-th/9901001``, ``https://arxiv.org/abs/...``, ``hf.co/papers/...``) sets ``arxiv_id``
  and is also the only term, so keyword search sees the id too.
* Whitespace separates tokens. ``"..."`` is a phrase (straight or typographic quotes, as phones
  type them); an unclosed quote runs to the end.
* A leading ``-`` excludes the word or phrase after it; a lone ``-`` is ignored. A minus before a
  field filter (``-author:x``) drops that filter: there is no exclusion by author or category.
* ``author:``, ``cat:`` and ``category:`` (any case) take the value written directly after the
  colon, a word or a quoted phrase. ``author: smith`` (with a space) is an empty filter, ignored,
  followed by the plain word ``smith``.
* Any other word becomes the runs of word characters in it, where runs joined by a single ``-``
  or ``.`` stay one term (``kv-cache``, ``gpt-4``, ``cs.CL``, ``3.5``). So ``foo:bar`` and
  ``http://x`` are plain words, and ``(kv-cache),`` is ``kv-cache``.
* Terms, phrases, exclusions and authors are deduplicated case-insensitively, first spelling kept.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from papertide.catalog.ids import parse_arxiv_id
from papertide.errors import InvalidInput

MAX_QUERY_LENGTH = 500

_QUOTE = re.compile('["\u201c\u201d\u201e]')
_WORD_END = re.compile('[\\s"\u201c\u201d\u201e]')
_TERM = re.compile(r"\w+(?:[-.]\w+)*")
_HAS_WORD = re.compile(r"\w")
# C0 and C1 controls except \t \n \v \f \r, DEL, and lone surrogates (unencodable as UTF-8).
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_AUTHOR_EDGES = re.compile(r"^\W+|[^\w.]+$")
# Checked before re-casing, and ASCII only: str.upper() turns "ß" into "SS", and a Unicode
# case-insensitive [a-z] matches the Kelvin sign.
_CATEGORY = re.compile(r"[a-z]+(?:-[a-z]+)*(?:\.[a-z]+(?:-[a-z]+)*)?", re.IGNORECASE | re.ASCII)
# ids.py knows huggingface.co/papers/ but not its short host.
_HF_SHORT = re.compile(r"^(?:https?://)?(?:www\.)?hf\.co/papers/", re.IGNORECASE)
_URL_TAIL = re.compile(r"[?#].*$", re.DOTALL)
_FIELDS = {"author": "author", "cat": "cat", "category": "cat"}


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A parsed query. Hashable, so per-query work (such as highlight's regex) can be cached."""

    raw: str
    terms: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    arxiv_id: str | None = None

    @property
    def text(self) -> str:
        """The free text for semantic search: what the user wants, not what they filter by."""
        return " ".join((*self.terms, *self.phrases))

    @property
    def has_text(self) -> bool:
        """Whether there is anything to rank by relevance (terms or phrases)."""
        return bool(self.terms or self.phrases)

    @property
    def is_empty(self) -> bool:
        """Nothing to search for and no filter: the search page shows its empty state."""
        return not (
            self.terms
            or self.phrases
            or self.excluded
            or self.authors
            or self.categories
            or self.arxiv_id
        )


@dataclass(frozen=True, slots=True)
class _Token:
    """One scanned token; ``source`` is the token as typed, for error messages."""

    kind: Literal["word", "phrase", "field"]
    value: str
    negated: bool
    source: str
    field: str = ""


def parse_query(raw: str) -> SearchQuery:
    """Parse what was typed in the search box; raises only InvalidInput, for any input."""
    text = _clean(raw)
    if len(text) > MAX_QUERY_LENGTH:
        raise InvalidInput(
            f"query is too long ({len(text)} characters; the limit is {MAX_QUERY_LENGTH})"
        )
    arxiv_id = _whole_query_id(text)
    if arxiv_id is not None:
        return SearchQuery(raw=text, terms=(arxiv_id,), arxiv_id=arxiv_id)

    terms: list[str] = []
    phrases: list[str] = []
    excluded: list[str] = []
    authors: list[str] = []
    categories: list[str] = []
    for token in _scan(text):
        if token.kind == "word":
            (excluded if token.negated else terms).extend(_TERM.findall(token.value))
            continue
        value = " ".join(token.value.split())
        if token.kind == "phrase":
            if _HAS_WORD.search(value):
                (excluded if token.negated else phrases).append(value)
        elif token.negated or not value:
            continue
        elif token.field == "author":
            name = _AUTHOR_EDGES.sub("", value)
            if _HAS_WORD.search(name):
                authors.append(name)
        else:
            categories.append(_category(value, token.source))
    return SearchQuery(
        raw=text,
        terms=_dedupe(terms),
        phrases=_dedupe(phrases),
        excluded=_dedupe(excluded),
        authors=_dedupe(authors),
        categories=_dedupe(categories),
    )


def plain_terms(text: str) -> tuple[str, ...]:
    """The terms of ``text`` read as plain words, with no query syntax and no length limit.

    For queries built from stored text (a paper's title for "similar papers"): parse_query would
    read a title word like ``Category:1-morphisms`` as a filter and refuse it, and ``-`` words as
    exclusions.
    """
    return _dedupe(_TERM.findall(_CONTROL.sub("", unicodedata.normalize("NFC", str(text)))))


def _clean(raw: str) -> str:
    if not isinstance(raw, str):
        raise InvalidInput(f"query must be text, not {type(raw).__name__}")
    return unicodedata.normalize("NFC", _CONTROL.sub("", raw)).strip()


def _whole_query_id(text: str) -> str | None:
    """The normalised arXiv id (no version) when the whole query is one id or paper URL."""
    if not text or any(char.isspace() for char in text):
        return None
    candidate = _URL_TAIL.sub("", _HF_SHORT.sub("https://huggingface.co/papers/", text))
    try:
        return parse_arxiv_id(candidate).id
    except InvalidInput:
        return None


def _scan(text: str) -> list[_Token]:
    """Split the query into words, phrases and field filters (see the module docstring)."""
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        negated = text[i] == "-"
        if negated:
            i += 1
            if i == n or text[i].isspace():
                continue  # a lone minus
        if _QUOTE.match(text, i):
            body, i = _read_phrase(text, i)
            tokens.append(_Token("phrase", body, negated, text[start:i]))
            continue
        stop = _WORD_END.search(text, i)
        end = stop.start() if stop else n
        word = text[i:end]
        name, colon, value = word.partition(":")
        field = _FIELDS.get(name.lower()) if colon else None
        if field is None:
            tokens.append(_Token("word", word, negated, text[start:end]))
        else:
            if not value and _QUOTE.match(text, end):
                value, end = _read_phrase(text, end)
            tokens.append(_Token("field", value, negated, text[start:end], field))
        i = end
    return tokens


def _read_phrase(text: str, start: int) -> tuple[str, int]:
    """``text[start]`` opens a quote: the body, and where scanning resumes (past the close)."""
    close = _QUOTE.search(text, start + 1)
    if close is None:
        return text[start + 1 :], len(text)
    return text[start + 1 : close.start()], close.end()


def _category(value: str, source: str) -> str:
    """Spell ``value`` as arXiv does, or refuse it.

    The archive is lower case. Every two-letter subject on arXiv is upper case (cs.CL, stat.ML,
    math.AG, q-bio.NC, astro-ph.GA, nlin.AO) and every longer one lower case (cond-mat.str-el,
    physics.optics), so the subject's length decides. A trailing comma or semicolon, as in
    ``cat:cs.CL, transformers``, is not part of the value.
    """
    bare = value.rstrip(",;")
    if not _CATEGORY.fullmatch(bare):
        raise InvalidInput(
            f"unknown category syntax {value!r} in {source} (expected e.g. cs.CL or hep-th)"
        )
    archive, dot, subject = bare.partition(".")
    subject = subject.upper() if len(subject) == 2 else subject.lower()
    return f"{archive.lower()}{dot}{subject}"


def _dedupe(values: Iterable[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    kept: list[str] = []
    for value in values:
        key = value.casefold()
        if key not in seen:
            seen.add(key)
            kept.append(value)
    return tuple(kept)
