"""Highlighting query words in titles and abstracts: stems, phrases, escaping, math left alone."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup, escape

from papertide.errors import InvalidInput
from papertide.search.highlight import highlight, term_stem
from papertide.search.query import parse_query


def marked(text: str, query: str) -> str:
    return str(highlight(text, parse_query(query)))


@pytest.mark.parametrize(
    ("word", "stem"),
    [
        ("Transformers", "transform"),
        ("transforming", "transform"),
        ("happiness", "happi"),
        ("happy", "happi"),
        ("kv-caches", "kv-cach"),
        ("3.5", "3.5"),
    ],
)
def test_term_stem(word: str, stem: str) -> None:
    assert term_stem(word) == stem


@pytest.mark.parametrize(
    ("text", "query", "expected"),
    [
        # Matching by stem, any case.
        ("A transformer model", "Transformers", "A <mark>transformer</mark> model"),
        (
            "Transformers transforming",
            "transformer",
            "<mark>Transformers</mark> <mark>transforming</mark>",
        ),
        ("happy happiness", "happiness", "<mark>happy</mark> <mark>happiness</mark>"),
        ("Attention.", "attention", "<mark>Attention</mark>."),
        # Whole words only.
        ("retransform transformer", "transformer", "retransform <mark>transformer</mark>"),
        # Hyphenated terms match the hyphenated text; parts of hyphenated text match terms.
        ("KV-Caches and kv cache", "kv-cache", "<mark>KV-Caches</mark> and kv cache"),
        ("self-attention", "attention", "self-<mark>attention</mark>"),
        ("GPT-3.5 on cs.CL", "3.5 CL", "GPT-<mark>3.5</mark> on cs.<mark>CL</mark>"),
        # Phrases: whole, any case, any whitespace between the words, whole words only.
        (
            "Large  Language\nModels are large",
            '"large language models"',
            "<mark>Large  Language\nModels</mark> are large",
        ),
        ("Language modelling", '"language model"', "Language modelling"),
        ("self-attention layer", '"attention layer"', "self-<mark>attention layer</mark>"),
        (
            "a language model and a model",
            '"language model" model',
            "a <mark>language model</mark> and a <mark>model</mark>",
        ),
        # Excluded words and field filters are not marked.
        ("bert and gpt", "gpt -bert", "bert and <mark>gpt</mark>"),
        ("bert and gpt", "bert -berts", "bert and gpt"),
        ("Vaswani on cs.CL", "author:vaswani cat:cs.CL", "Vaswani on cs.CL"),
        # Escaping, inside and around marks.
        (
            "<script>x</script>",
            "script",
            "&lt;<mark>script</mark>&gt;x&lt;/<mark>script</mark>&gt;",
        ),
        ("R&D & more", '"R&D"', "<mark>R&amp;D</mark> &amp; more"),
        ("<b>bold</b>", "x", "&lt;b&gt;bold&lt;/b&gt;"),
        ("", "x", ""),
        ("nothing to find", "", "nothing to find"),
    ],
)
def test_highlight(text: str, query: str, expected: str) -> None:
    assert marked(text, query) == expected


@pytest.mark.parametrize(
    ("text", "query", "expected"),
    [
        ("where $x^2 + y$ is x", "x y", "where $x^2 + y$ is <mark>x</mark>"),
        ("if \\(a<b\\) then b", "a b", "if \\(a&lt;b\\) then <mark>b</mark>"),
        ("see \\[x = y\\] and $$y$$ y", "y", "see \\[x = y\\] and $$y$$ <mark>y</mark>"),
        ("$\\mathcal{O}(n)$ time", "mathcal n time", "$\\mathcal{O}(n)$ <mark>time</mark>"),
        # Prices are not math: the "$" after "$5 and" follows a space, so it does not close, and
        # "$5-$10" closes before a digit; the words between are marked.
        (
            "costs $5 and $10 a month",
            "and month",
            "costs $5 <mark>and</mark> $10 a <mark>month</mark>",
        ),
        ("from $5-$10 to x", "to", "from $5-$10 <mark>to</mark> x"),
        ("a $ b $ c", "b", "a $ <mark>b</mark> $ c"),
        # An escaped dollar neither opens nor closes.
        ("\\$x and y\\$", "x y", "\\$<mark>x</mark> and <mark>y</mark>\\$"),
        ("$a \\$ b$ b", "b", "$a \\$ b$ <mark>b</mark>"),
        # Unclosed delimiters are not math.
        ("\\(open x", "x", "\\(open <mark>x</mark>"),
        ("$$open x", "x", "$$open <mark>x</mark>"),
        # A phrase touching math is dropped whole.
        ("the $x$ value", '"the x value"', "the $x$ value"),
        # A span too long for the renderer to typeset is text.
        ("$" + "a " * 250 + "b$", "b", "$" + "a " * 250 + "<mark>b</mark>$"),
    ],
)
def test_no_mark_inside_math(text: str, query: str, expected: str) -> None:
    assert marked(text, query) == expected


def test_every_delimiter_start_is_protected() -> None:
    # papertide.js skips "$a b c d$"-like prose spans and rescans from the next character, so a
    # span that starts at the closing "$" of another may be typeset: it stays unmarked too.
    text = "$foo bar baz$qux y$ y"
    assert marked(text, "qux y") == "$foo bar baz$qux y$ <mark>y</mark>"


def test_returns_markup_and_treats_markup_input_as_text() -> None:
    result = highlight(Markup("<i>x</i>"), parse_query("x"))
    assert isinstance(result, Markup)
    assert str(result) == "&lt;i&gt;<mark>x</mark>&lt;/i&gt;"


def test_many_unclosed_delimiters_stay_fast() -> None:
    text = "\\( $$ " * 20_000 + "needle"
    assert str(highlight(text, parse_query("needle"))).endswith("<mark>needle</mark>")


_pieces = st.sampled_from(
    ["$", "$$", "\\(", "\\)", "\\[", "\\]", "\\", " ", "\n", "<", ">", "&", "-", ".", "5"]
)
_words = st.sampled_from(["model", "Models", "kv-cache", "attention", "self", "x", "a", "<mark>"])
_texts = st.lists(st.one_of(_pieces, _words, st.text(max_size=8)), max_size=40).map("".join)
_queries = st.lists(
    st.one_of(_words, st.sampled_from(['"', "-", " ", "a model", "x"]), st.text(max_size=6)),
    max_size=8,
).map("".join)


@given(_texts, _queries)
def test_removing_marks_gives_the_escaped_text(text: str, raw: str) -> None:
    try:
        query = parse_query(raw)
    except InvalidInput:
        return
    result = str(highlight(text, query))
    assert result.replace("<mark>", "").replace("</mark>", "") == str(escape(text))
    assert "<mark></mark>" not in result
