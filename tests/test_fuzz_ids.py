"""Hostile input for the arXiv id rules (papertide.catalog.ids): any text, and ids that look
almost valid, either normalise to an ASCII id that reads back as itself or are refused with
InvalidInput quoting the value; nothing else is ever raised."""

from __future__ import annotations

import re

from fuzz_strategies import ID_PREFIXES, NORMAL_ID, almost_ids, fuzz_settings, valid_ids
from hypothesis import example, given
from hypothesis import strategies as st

from papertide.catalog.ids import ArxivId, is_arxiv_id, parse_arxiv_id
from papertide.errors import InvalidInput
from papertide.web.routes_api_common import ARXIV_ID_PATTERN, ARXIV_REF_PATTERN


def accepted_or_refused(value: object) -> ArxivId | None:
    """The property: a normalised id, or InvalidInput with the value quoted."""
    try:
        ident = parse_arxiv_id(value)  # type: ignore[arg-type]
    except InvalidInput as exc:
        assert repr(value) in exc.message, exc.message
        assert is_arxiv_id(value) is False  # type: ignore[arg-type]
        return None
    assert isinstance(ident, ArxivId)
    assert NORMAL_ID.fullmatch(ident.id), ident
    assert ident.version is None or 1 <= ident.version <= 9999
    assert parse_arxiv_id(str(ident)) == ident
    assert parse_arxiv_id(ident.id) == ArxivId(ident.id)
    assert re.fullmatch(ARXIV_ID_PATTERN, str(ident)), ident  # what the API's paths accept
    return ident


@fuzz_settings(300)
@given(st.text(max_size=60))
@example("٢٥٠٥.٠١٢٣٤")  # Arabic-Indic digits: \d matched them
@example("２５０５.０１２３４v２")  # full-width digits
@example("hep-th/٩٩٠١٠٠١")
def test_any_text(value: str) -> None:
    accepted_or_refused(value)


@fuzz_settings(300)
@given(almost_ids())
def test_almost_valid_ids(value: str) -> None:
    ident = accepted_or_refused(value)
    if ident is not None:
        # Accepted only when it still is the same id, with at most a prefix, a URL tail or a
        # version changed: never another script's digits or look-alike letters.
        assert value.isascii() or value.startswith(ID_PREFIXES), value


@fuzz_settings(200)
@given(valid_ids(), st.sampled_from(("", *ID_PREFIXES)), st.sampled_from(["", " ", "\n"]))
def test_valid_ids_with_any_prefix(value: str, prefix: str, space: str) -> None:
    ident = accepted_or_refused(f"{space}{prefix}{value}{space}")
    assert ident is not None and str(ident) == value


@given(st.one_of(st.none(), st.integers(), st.binary(max_size=10), st.lists(st.text())))
def test_values_that_are_not_text(value: object) -> None:
    assert accepted_or_refused(value) is None


LOOKALIKE_PREFIXES = ("arxıv:", "ARXİV:", "httpſ://arxiv.org/abs/", "arXiv：", "arXiv:/")


@fuzz_settings(300)
@given(st.from_regex(ARXIV_REF_PATTERN, fullmatch=True))
def test_what_the_schema_documents_is_accepted(value: str) -> None:
    """The pattern the OpenAPI schema gives for ids (Hugging Face-compatible routes) names
    only what the parser accepts..."""
    assert accepted_or_refused(value) is not None, value


@fuzz_settings(300)
@given(
    st.one_of(
        almost_ids(),
        st.text(max_size=30),
        st.tuples(st.sampled_from(ID_PREFIXES + LOOKALIKE_PREFIXES), valid_ids()).map("".join),
    )
)
@example("arxıv:2502.00001")  # Unicode case folding took the dotless i for an i
def test_what_is_accepted_is_documented(value: str) -> None:
    """...and everything the parser accepts fits the pattern."""
    accepted = accepted_or_refused(value) is not None
    assert accepted == bool(re.fullmatch(ARXIV_REF_PATTERN, value)), value
