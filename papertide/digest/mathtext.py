"""Math that reads well in email: LaTeX formulas in abstracts turned into Unicode text.

Mail clients run no KaTeX, so ``$\\alpha$-stable $\\mathcal{O}(n \\log n)$`` would arrive as raw
TeX. Only the spans the site itself would typeset (the same delimiter rules as the search
highlighter, :func:`papertide.search.highlight.math_spans`) are converted, with pylatexenc;
the prose around them is left exactly as written (a "50%" in prose is not a TeX comment).
A formula pylatexenc cannot read is kept as written.
"""

from __future__ import annotations

from functools import lru_cache

from pylatexenc.latex2text import LatexNodes2Text

from papertide.search.highlight import math_spans

_converter = LatexNodes2Text(math_mode="text")


@lru_cache(maxsize=20_000)
def _formula(tex: str) -> str:
    try:
        text = str(_converter.latex_to_text(tex))
    except Exception:  # pylatexenc raises assorted errors on malformed TeX
        return tex
    return " ".join(text.split()) or tex


def unicode_math(text: str) -> str:
    """``text`` with each formula replaced by its Unicode reading."""
    spans = math_spans(text)
    if not spans:
        return text
    parts: list[str] = []
    done = 0
    for start, end in spans:
        parts.append(text[done:start])
        parts.append(_formula(text[start:end]))
        done = end
    parts.append(text[done:])
    return "".join(parts)
