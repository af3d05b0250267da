"""The same 200 papers (0704.0001-0704.0200) from the Kaggle snapshot and from .abs files must
give the same PaperRecord, field by field, except where the upstream data differ.

Compared: everything but ``source`` and ``position``, and the fields only .abs files carry:
version sizes (``Version.size``), ``msc_class``, ``acm_class`` and ``withdrawn`` (the ``I`` flag
on a version's size). Both parsers share their normalisation rules (papertide.ingest.abs):
whitespace collapsed in every text field, TeX accents in person names turned into Unicode
(Kaggle's authors_parsed already is; .abs Authors lines are raw TeX), arXiv's spacing after
initials ("J.P.Hague" → "J. P. Hague") but "C.-P." kept whole (authors_parsed has "C. -P."),
"doi:" prefixes dropped (0704.0020's .abs file has one), and affiliations split the same way
(numbered ones, which Kaggle's authors_parsed lost, are read from the authors line).
Titles and abstracts keep their TeX as both sources give it.

Upstream differences (KNOWN_DIFFERENCES): the .abs files are an older capture than the Kaggle
snapshot. Kaggle has DOIs and journal references added to the metadata later, and newer
versions of three papers: 0704.0033 and 0704.0038 got a v2 in 2022 (erratum; new comments,
journal-ref, second DOI, CC licence), 0704.0189 a v3 in 2016 (new abstract, comments,
journal-ref, licence, and the author name "J. C. Birget" instead of "Jean-Camille Birget").
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from papertide.catalog.records import PaperRecord
from papertide.ingest import abs as abs_format
from papertide.ingest import kaggle
from papertide.ingest.arxiv_names import split_authors

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE = FIXTURES / "kaggle" / "arxiv-metadata-oai-snapshot.json"
ABS_DIR = FIXTURES / "abs" / "ftp" / "arxiv" / "papers" / "0704"
UTC_ZONE = ZoneInfo("UTC")

NOT_COMPARED = {"source", "position", "msc_class", "acm_class", "withdrawn"}
COMPARED = [f.name for f in fields(PaperRecord) if f.name not in NOT_COMPARED]

_NEW_VERSION = ("version", "versions", "updated_at", "comments", "journal_ref", "license")
KNOWN_DIFFERENCES: dict[str, tuple[str, ...]] = {
    # DOI or journal reference added after the .abs capture (Kaggle has it, .abs has None)
    "0704.0005": ("journal_ref",),
    "0704.0006": ("doi",),
    "0704.0025": ("doi",),
    "0704.0028": ("journal_ref",),
    "0704.0030": ("doi",),
    "0704.0044": ("doi",),
    "0704.0054": ("journal_ref",),
    "0704.0058": ("doi",),
    "0704.0105": ("doi",),
    "0704.0107": ("doi",),
    "0704.0146": ("doi",),
    "0704.0155": ("doi",),
    "0704.0156": ("doi",),
    # a newer version in the Kaggle snapshot
    "0704.0033": (*_NEW_VERSION, "doi"),
    "0704.0038": (*_NEW_VERSION, "doi"),
    "0704.0189": (*_NEW_VERSION, "abstract", "authors"),
}
# authors_parsed lost the numbered affiliations of these lines ("Smith (1) ... ((1) Univ)"), or
# kept the numbers ("1 and 2"); Kaggle records take them from the authors line instead.
LOST_AFFILIATIONS = {"0704.0025", "0704.0128", "0704.0177", "0704.0187", "0704.0190", "0704.0191"}


def _comparable(record: PaperRecord, name: str) -> Any:
    value = getattr(record, name)
    if name == "versions":
        return [(version.number, version.submitted_at) for version in value]
    return value


def _pairs() -> list[tuple[PaperRecord, PaperRecord]]:
    pairs = []
    for item in kaggle.parse(SAMPLE, UTC_ZONE):
        assert isinstance(item, PaperRecord), item
        (other,) = abs_format.parse(ABS_DIR / f"{item.arxiv_id}.abs", UTC_ZONE)
        assert isinstance(other, PaperRecord), other
        pairs.append((item, other))
    return pairs


@pytest.fixture(scope="module")
def pairs() -> list[tuple[PaperRecord, PaperRecord]]:
    return _pairs()


def test_200_pairs(pairs: list[tuple[PaperRecord, PaperRecord]]) -> None:
    assert len(pairs) == 200
    assert [k.arxiv_id for k, _ in pairs] == [a.arxiv_id for _, a in pairs]
    assert {(k.source, a.source) for k, a in pairs} == {("kaggle", "abs")}


def test_records_agree_field_by_field(pairs: list[tuple[PaperRecord, PaperRecord]]) -> None:
    differences: dict[str, list[str]] = {}
    for from_kaggle, from_abs in pairs:
        for name in COMPARED:
            if _comparable(from_kaggle, name) != _comparable(from_abs, name):
                differences.setdefault(from_kaggle.arxiv_id, []).append(name)
    expected = {key: sorted(names) for key, names in KNOWN_DIFFERENCES.items()}
    assert {key: sorted(names) for key, names in differences.items()} == expected


@pytest.mark.parametrize("name", COMPARED)
def test_each_field_agrees_outside_known_differences(
    pairs: list[tuple[PaperRecord, PaperRecord]], name: str
) -> None:
    for from_kaggle, from_abs in pairs:
        if name in KNOWN_DIFFERENCES.get(from_kaggle.arxiv_id, ()):
            continue
        assert _comparable(from_kaggle, name) == _comparable(from_abs, name), from_kaggle.arxiv_id


def test_known_differences_are_the_newer_kaggle_capture(
    pairs: list[tuple[PaperRecord, PaperRecord]],
) -> None:
    for from_kaggle, from_abs in pairs:
        changed = KNOWN_DIFFERENCES.get(from_kaggle.arxiv_id, ())
        if "versions" in changed:
            older = _comparable(from_abs, "versions")
            newer = _comparable(from_kaggle, "versions")
            assert newer[: len(older)] == older and len(newer) == len(older) + 1
            assert from_kaggle.published_at == from_abs.published_at
        else:
            for name in changed:  # only added: .abs had nothing there
                assert getattr(from_abs, name) is None
                assert getattr(from_kaggle, name) is not None
    pair = {k.arxiv_id: (k, a) for k, a in pairs}
    kaggle_0189, abs_0189 = pair["0704.0189"]
    assert [author.name for author in kaggle_0189.authors] == ["J. C. Birget"]
    assert [author.name for author in abs_0189.authors] == ["Jean-Camille Birget"]
    assert pair["0704.0033"][0].doi == "10.1364/JOSAA.23.002578 10.1364/JOSAA.32.002407"
    assert pair["0704.0033"][1].doi == "10.1364/JOSAA.23.002578"


def test_abs_only_fields(pairs: list[tuple[PaperRecord, PaperRecord]]) -> None:
    for from_kaggle, from_abs in pairs:
        assert all(version.size is None for version in from_kaggle.versions)
        assert all(version.size for version in from_abs.versions)
        assert from_kaggle.withdrawn is None and from_abs.withdrawn is not None
        assert from_kaggle.msc_class is None and from_kaggle.acm_class is None
    withdrawn = sorted(a.arxiv_id for _, a in pairs if a.withdrawn)
    assert withdrawn == ["0704.0156"]


def test_authors_parsed_and_authors_line_agree() -> None:
    """The two routes to a Kaggle author list: arXiv's authors_parsed, and the authors line
    split with the .abs rules. Same names everywhere; the same affiliations except where
    authors_parsed lost numbered ones."""
    lost = set()
    for line in SAMPLE.read_bytes().splitlines():
        data = orjson.loads(line)
        parsed = [kaggle._author(entry) for entry in data["authors_parsed"]]
        split = split_authors(data["authors"])
        assert [a.name for a in parsed] == [a.name for a in split], data["id"]
        if parsed != split:
            lost.add(data["id"])
            assert all(a.affiliation is None or a.affiliation[0].isdigit() for a in parsed)
    assert lost == LOST_AFFILIATIONS
