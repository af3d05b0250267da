"""The search box's query syntax: words, phrases, exclusions, field filters, ids; clear refusals."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from papertide.errors import InvalidInput
from papertide.search.query import MAX_QUERY_LENGTH, SearchQuery, parse_query, plain_terms


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Plain words, order kept, case kept, deduplicated case-insensitively (first spelling).
        ("sparse attention", {"terms": ("sparse", "attention")}),
        ("Foo foo FOO bar", {"terms": ("Foo", "bar")}),
        ("  padded\t\nquery  ", {"raw": "padded\t\nquery", "terms": ("padded", "query")}),
        # Phrases: the text inside the quotes, whitespace collapsed; unclosed runs to the end.
        (
            '"large  language\tmodel" rlhf',
            {"terms": ("rlhf",), "phrases": ("large language model",)},
        ),
        ('rlhf "reward model', {"terms": ("rlhf",), "phrases": ("reward model",)}),
        ("\u201csmart quotes\u201d", {"phrases": ("smart quotes",)}),
        ('"A B" "a  b"', {"phrases": ("A B",)}),
        ('"" " " "..."', {}),
        ('word"phrase here"', {"terms": ("word",), "phrases": ("phrase here",)}),
        # Exclusions: words and phrases; a lone minus is ignored; inner hyphens are not minus.
        ("llm -bert", {"terms": ("llm",), "excluded": ("bert",)}),
        ('llm -"kv cache"', {"terms": ("llm",), "excluded": ("kv cache",)}),
        ("llm - bert", {"terms": ("llm", "bert")}),
        ("-", {}),
        ("self-attention", {"terms": ("self-attention",)}),
        ("-kv-cache, -foo:bar", {"excluded": ("kv-cache", "foo", "bar")}),
        # Authors: word or quoted name, case-insensitive prefix, surrounding punctuation trimmed.
        ("author:vaswani", {"authors": ("vaswani",)}),
        (
            'AUTHOR:"Ashish  Vaswani" attention',
            {"terms": ("attention",), "authors": ("Ashish Vaswani",)},
        ),
        ('author:"J. Smith"', {"authors": ("J. Smith",)}),
        ("author:smith, author:Smith", {"authors": ("smith",)}),
        ("author:O'Brien", {"authors": ("O'Brien",)}),
        # Empty field values are ignored; a space after the colon leaves the value empty.
        ("graphs author:", {"terms": ("graphs",)}),
        ('author:"', {}),
        ("author: smith", {"terms": ("smith",)}),
        ("cat:", {}),
        # A minus before a field drops the filter: there is no exclusion by author or category.
        ("-author:smith -cat:cs..x gnn", {"terms": ("gnn",)}),
        # Categories: archive lower case; two-letter subjects upper, longer subjects lower.
        ("cat:cs.CL", {"categories": ("cs.CL",)}),
        ("cat:CS.cl", {"categories": ("cs.CL",)}),
        ("category:stat.ml Cat:hep-th", {"categories": ("stat.ML", "hep-th")}),
        (
            "cat:math.ag cat:q-bio.nc cat:eess.as",
            {"categories": ("math.AG", "q-bio.NC", "eess.AS")},
        ),
        ("cat:astro-ph.ga cat:nlin.ao", {"categories": ("astro-ph.GA", "nlin.AO")}),
        (
            "cat:cond-mat.Str-El cat:physics.optics",
            {"categories": ("cond-mat.str-el", "physics.optics")},
        ),
        ('cat:"cs.LG"', {"categories": ("cs.LG",)}),
        ("cat:cs.CL, cat:cs.cl rag", {"terms": ("rag",), "categories": ("cs.CL",)}),
        # Other word:word tokens are plain words; punctuation around words is dropped.
        ("http://example.org foo:bar RE:", {"terms": ("http", "example.org", "foo", "bar", "RE")}),
        ("kv-cache, gpt-4? (3.5) [cs.CL]", {"terms": ("kv-cache", "gpt-4", "3.5", "cs.CL")}),
        ("a--b x..y e.g. U.S.A.", {"terms": ("a", "b", "x", "y", "e.g", "U.S.A")}),
        ("?! ... -- ()", {}),
        ("naïve Bayes für Graphen", {"terms": ("naïve", "Bayes", "für", "Graphen")}),
        ("snake_case", {"terms": ("snake_case",)}),
        # Control characters are removed (tab and newline are whitespace); NUL never crashes.
        ("ke\x00rnel \x07trick\x1b", {"raw": "kernel trick", "terms": ("kernel", "trick")}),
        ("\x00", {"raw": ""}),
        # A whole query that is an arXiv id or paper URL: the id without version, also a term.
        ("2505.01234", {"arxiv_id": "2505.01234", "terms": ("2505.01234",)}),
        ("2505.01234v3", {"arxiv_id": "2505.01234", "terms": ("2505.01234",)}),
        ("arXiv:hep-th/9901001v2", {"arxiv_id": "hep-th/9901001", "terms": ("hep-th/9901001",)}),
        (
            "https://arxiv.org/abs/2505.01234v2",
            {"arxiv_id": "2505.01234", "terms": ("2505.01234",)},
        ),
        (
            "http://arxiv.org/pdf/2505.01234v2.pdf",
            {"arxiv_id": "2505.01234", "terms": ("2505.01234",)},
        ),
        ("arxiv.org/html/2505.01234v1", {"arxiv_id": "2505.01234", "terms": ("2505.01234",)}),
        (
            "https://huggingface.co/papers/2505.01234",
            {"arxiv_id": "2505.01234", "terms": ("2505.01234",)},
        ),
        ("https://hf.co/papers/2505.01234", {"arxiv_id": "2505.01234", "terms": ("2505.01234",)}),
        ("hf.co/papers/2505.01234", {"arxiv_id": "2505.01234", "terms": ("2505.01234",)}),
        (
            "https://arxiv.org/abs/2505.01234?context=cs",
            {"arxiv_id": "2505.01234", "terms": ("2505.01234",)},
        ),
        # Not a whole-query id: more words, or not a valid number.
        ("2505.01234 attention", {"terms": ("2505.01234", "attention")}),
        ("2513.01234", {"terms": ("2513.01234",)}),
    ],
)
def test_parse(raw: str, expected: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"raw": raw.strip(), **expected}
    assert parse_query(raw) == SearchQuery(**fields)


@pytest.mark.parametrize(
    ("raw", "quoted"),
    [
        ("cat:cs..x", "'cs..x' in cat:cs..x"),
        ("llm category:cs.", "'cs.' in category:cs."),
        ("cat:cs-", "'cs-'"),
        ("cat:42", "'42'"),
        ("cat:cs.C1", "'cs.C1'"),
        ('cat:"cs CL"', "'cs CL' in cat:\"cs CL\""),
        ("cat:cs.ßx", "'cs.ßx'"),
        ("cat:cs.*", "'cs.*'"),
    ],
)
def test_bad_category_is_refused_quoting_it(raw: str, quoted: str) -> None:
    with pytest.raises(InvalidInput, match="unknown category syntax") as caught:
        parse_query(raw)
    assert quoted in caught.value.message


def test_too_long_is_refused_naming_the_limit() -> None:
    assert parse_query("a" * MAX_QUERY_LENGTH).terms == ("a" * MAX_QUERY_LENGTH,)
    with pytest.raises(InvalidInput, match=str(MAX_QUERY_LENGTH)):
        parse_query("a" * (MAX_QUERY_LENGTH + 1))


def test_length_is_counted_after_cleaning() -> None:
    padded = "  " + "a" * MAX_QUERY_LENGTH + "\n\n" + "\x00" * 10
    assert parse_query(padded).raw == "a" * MAX_QUERY_LENGTH


def test_non_text_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        parse_query(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "text", "has_text", "is_empty"),
    [
        ("", "", False, True),
        ("   ", "", False, True),
        ('"!!"', "", False, True),
        ('graph "neural network" -cnn author:lecun cat:cs.LG', "graph neural network", True, False),
        ("-cnn", "", False, False),
        ("author:lecun", "", False, False),
        ("cat:cs.LG", "", False, False),
        ("2505.01234", "2505.01234", True, False),
    ],
)
def test_text_and_emptiness(raw: str, text: str, has_text: bool, is_empty: bool) -> None:
    query = parse_query(raw)
    assert (query.text, query.has_text, query.is_empty) == (text, has_text, is_empty)


def test_query_is_hashable_and_frozen() -> None:
    query = parse_query("a b")
    assert hash(query) == hash(parse_query("a b"))
    with pytest.raises(AttributeError):
        query.raw = "c"  # type: ignore[misc]


def test_plain_terms_ignore_query_syntax() -> None:
    title = 'Category:1-morphisms -and "Author:Us" on kv-cache, KV-Cache \x00'
    assert plain_terms(title) == (
        "Category",
        "1-morphisms",
        "and",
        "Author",
        "Us",
        "on",
        "kv-cache",
    )
    assert plain_terms("word " * 400) == ("word",)


_syntax = st.sampled_from(['"', "-", ":", "author:", "cat:", "category:", " ", "\x00", ".", "$"])


@given(st.lists(st.one_of(st.text(max_size=20), _syntax), max_size=30).map("".join))
def test_any_text_parses_or_is_refused(raw: str) -> None:
    try:
        query = parse_query(raw)
    except InvalidInput:
        return
    assert isinstance(query, SearchQuery)
    for term in query.terms:
        assert term
        assert not any(char.isspace() for char in term)
    for value in (*query.phrases, *query.excluded, *query.authors, *query.categories):
        assert value == value.strip()
        assert value
    filters = (query.excluded, query.authors, query.categories, query.arxiv_id)
    assert query.is_empty == (not query.has_text and not any(filters))
