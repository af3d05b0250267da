"""Mark the words of a search query in titles and abstracts, without breaking their math.

``highlight`` HTML-escapes the text and wraps in ``<mark>`` each word whose English stem equals
the stem of a query term ("transformers" marks "Transformer" and "transforming"), and each
occurrence of a quoted phrase as a whole (any case, any run of whitespace between its words).
Excluded words, author names and category filters are not marked.

Math. Titles and abstracts hold LaTeX that papertide.js typesets with KaTeX, one text node at a
time, so a ``<mark>`` inside a formula would split it and break it. The delimiters here follow
papertide.js's own rules (pandoc's), so what is protected is what the browser may typeset:

* ``\\(...\\)``, ``\\[...\\]`` and ``$$...$$`` run to the next closing delimiter;
* ``$...$`` opens at a ``$`` not after a backslash and not followed by whitespace, and closes at
  the next ``$`` not after a backslash; that ``$`` must not follow whitespace nor precede a digit,
  else the opening ``$`` is not math. So in "$5 and $10" nothing is math and "and" is marked;
* a span whose TeX is over 400 characters is not typeset (papertide.js's MAX_LENGTH), so words in
  it may be marked.

Every delimiter position is tried, not only those after the previous span, and the protected
region is the union: papertide.js additionally skips spans that read like prose and then
rescans from the next character, and the union covers every span it could end up typesetting.
When in doubt, a word is left unmarked. A phrase match that touches math is dropped whole.

Cost: per query one regex for the phrases and one set of term stems (cached); per text one scan
for delimiters and one pass over its words, with stems memoised across calls.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import snowballstemmer
from markupsafe import Markup, escape

from papertide.search.query import SearchQuery

# The same word shape as query terms: runs of word characters joined by single "-" or ".".
_WORD = re.compile(r"\w+(?:[-.]\w+)*")
_DELIMITER = re.compile(r"\\[(\[]|\$")
_MAX_TEX = 400  # papertide.js MAX_LENGTH; a Python length never exceeds the JS (UTF-16) one
# JavaScript's \s, which papertide.js tests with; Python's isspace() differs (\x1c-\x1f, \x85).
_JS_SPACE = frozenset(
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_DIGITS = frozenset("0123456789")  # JavaScript's [0-9]; a frozenset, as "" in "0123456789" holds
_PHRASE_EDGES = re.compile(r"^[\s\\$]+|[\s\\$]+$")
_local = threading.local()

Span = tuple[int, int]


def highlight(text: str, query: SearchQuery) -> Markup:
    """``text`` HTML-escaped, with the words and phrases of ``query`` wrapped in ``<mark>``."""
    text = str(text)  # plain text: a Markup argument would otherwise skip escaping
    matcher = _matcher(query)
    if not text or (matcher.phrases is None and not matcher.stems):
        return escape(text)
    math = math_spans(text)
    marks: list[Span] = []
    if matcher.phrases is not None:
        in_math = _Spans(math)
        marks = [m.span() for m in matcher.phrases.finditer(text) if not in_math.hit(*m.span())]
    if matcher.stems:
        taken = _Spans(_merge(sorted(math + marks)))
        for word in _WORD.finditer(text):
            if not taken.hit(*word.span()):
                marks.extend(_word_marks(word.group(), word.start(), matcher.stems))
    return _render(text, sorted(marks))


@lru_cache(maxsize=65536)
def term_stem(word: str) -> str:
    """The Snowball English (Porter2) stem of ``word`` lower-cased, the key words match by."""
    return str(_stemmer().stemWord(word.lower()))


def _stemmer() -> Any:
    """This thread's stemmer: a Snowball stemmer keeps per-call state, so threads can't share."""
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = snowballstemmer.stemmer("english")
    return stemmer


@dataclass(frozen=True, slots=True)
class _Matcher:
    """What one query looks for: a regex of its phrases, the stems of its terms."""

    phrases: re.Pattern[str] | None
    stems: frozenset[str]


@lru_cache(maxsize=256)
def _matcher(query: SearchQuery) -> _Matcher:
    excluded = {term_stem(word) for word in query.excluded}
    stems = frozenset(term_stem(term) for term in query.terms) - excluded
    patterns = []
    # Longest first, so that of two phrases starting at one place the longer one is marked.
    for phrase in sorted({_PHRASE_EDGES.sub("", p) for p in query.phrases}, key=len, reverse=True):
        words = phrase.split()
        if not words:
            continue
        pattern = r"\s+".join(re.escape(word) for word in words)
        # Whole words only, but only where the phrase itself starts or ends with a word character.
        if re.match(r"\w", phrase):
            pattern = rf"(?<!\w){pattern}"
        if re.search(r"\w$", phrase):
            pattern = rf"{pattern}(?!\w)"
        patterns.append(pattern)
    regex = re.compile("|".join(patterns), re.IGNORECASE) if patterns else None
    return _Matcher(regex, stems)


def _word_marks(word: str, offset: int, stems: frozenset[str]) -> list[Span]:
    """Marks for one word of the text: the whole word, else its ``-`` parts, else ``.`` parts.

    So "kv-cache" marks whole for the term kv-cache, and "self-attention" marks "attention" for
    the term attention.
    """
    if term_stem(word) in stems:
        return [(offset, offset + len(word))]
    marks: list[Span] = []
    if "-" not in word and "." not in word:
        return marks
    start = offset
    for part in word.split("-"):
        if term_stem(part) in stems:
            marks.append((start, start + len(part)))
        elif "." in part:
            sub_start = start
            for sub in part.split("."):
                if term_stem(sub) in stems:
                    marks.append((sub_start, sub_start + len(sub)))
                sub_start += len(sub) + 1
        start += len(part) + 1
    return marks


def math_spans(text: str) -> list[Span]:
    """The merged regions of ``text`` that papertide.js may typeset (module docstring)."""
    spans: list[Span] = []
    found: dict[str, int] = {}
    for delimiter in _DELIMITER.finditer(text):
        span = _math_at(text, delimiter.start(), found)
        if span is not None:
            spans.append(span)
    return _merge(spans)


def _math_at(text: str, i: int, found: dict[str, int]) -> Span | None:
    """The math span opening at ``i``, or None: papertide.js's matchAt, plus the length limit."""
    if text[i] == "\\":
        close = "\\)" if text[i + 1] == "(" else "\\]"
        return _closed(i, i + 2, _find(text, close, i + 2, found), len(close))
    if i > 0 and text[i - 1] == "\\":
        return None
    if text.startswith("$", i + 1):
        return _closed(i, i + 2, _find(text, "$$", i + 2, found), 2)
    if i + 1 == len(text) or text[i + 1] in _JS_SPACE:
        return None
    end = text.find("$", i + 1)
    while end > 0 and text[end - 1] == "\\":
        end = text.find("$", end + 1)
    if end < 0 or text[end - 1] in _JS_SPACE or text[end + 1 : end + 2] in _DIGITS:
        return None
    return _closed(i, i + 1, end, 1)


def _closed(start: int, tex_start: int, close: int, close_length: int) -> Span | None:
    if close < 0 or close - tex_start > _MAX_TEX:
        return None
    return (start, close + close_length)


def _find(text: str, needle: str, start: int, found: dict[str, int]) -> int:
    """``text.find(needle, start)``, remembering answers: starts only grow within one text.

    Without the memo, many unclosed ``\\(`` would each scan to the end of the text.
    """
    known = found.get(needle)
    if known is not None and (known < 0 or known >= start):
        return known
    found[needle] = position = text.find(needle, start)
    return position


def _merge(spans: list[Span]) -> list[Span]:
    """Sorted spans to disjoint sorted spans."""
    merged: list[Span] = []
    for start, end in spans:
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


class _Spans:
    """Disjoint sorted spans, asked about ranges in increasing order: one pass in all."""

    def __init__(self, spans: list[Span]) -> None:
        self._spans = spans
        self._next = 0

    def hit(self, start: int, end: int) -> bool:
        """Whether ``[start, end)`` overlaps a span; ``start`` must not decrease between calls."""
        while self._next < len(self._spans) and self._spans[self._next][1] <= start:
            self._next += 1
        return self._next < len(self._spans) and self._spans[self._next][0] < end


def _render(text: str, marks: list[Span]) -> Markup:
    parts: list[str] = []
    position = 0
    for start, end in marks:
        parts += (escape(text[position:start]), "<mark>", escape(text[start:end]), "</mark>")
        position = end
    parts.append(escape(text[position:]))
    return Markup("".join(parts))
