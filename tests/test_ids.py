"""arXiv id normalisation: both schemes, versions, prefixes and URLs; clear rejections."""

from __future__ import annotations

import pytest

from papertide.catalog.ids import ArxivId, parse_arxiv_id
from papertide.errors import InvalidInput


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2505.01234", ArxivId("2505.01234")),
        ("2505.01234v3", ArxivId("2505.01234", 3)),
        ("0704.0001", ArxivId("0704.0001")),
        ("1412.8544v12", ArxivId("1412.8544", 12)),
        ("hep-th/9901001v1", ArxivId("hep-th/9901001", 1)),
        ("math.GT/0309136", ArxivId("math.GT/0309136")),
        ("cond-mat/0102536v2", ArxivId("cond-mat/0102536", 2)),
        (" arXiv:2101.04061v1 ", ArxivId("2101.04061", 1)),
        ("https://arxiv.org/abs/2505.01234v2", ArxivId("2505.01234", 2)),
        ("http://arxiv.org/pdf/2505.01234v2.pdf", ArxivId("2505.01234", 2)),
        ("oai:arXiv.org:1412.8544", ArxivId("1412.8544")),
        ("https://huggingface.co/papers/2608.19880", ArxivId("2608.19880")),
    ],
)
def test_accepted(value: str, expected: ArxivId) -> None:
    assert parse_arxiv_id(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "foo",
        "2505.1234",  # 2015 onward has five digits
        "1412.12345",  # before 2015, four
        "2513.01234",  # month 13
        "2505.01234v0",
        "2505.01234v",
        "hep-th/9913001",
        "HEP-TH/9901001",
        "2505.01234 and more",
        "<script>2505.01234</script>",
    ],
)
def test_rejected_with_the_value_quoted(value: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_arxiv_id(value)
    assert repr(value) in info.value.message


def test_str_round_trips() -> None:
    assert str(parse_arxiv_id("hep-th/9901001v1")) == "hep-th/9901001v1"
    assert str(parse_arxiv_id("2505.01234")) == "2505.01234"
