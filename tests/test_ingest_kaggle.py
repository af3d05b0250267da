"""The Kaggle arXiv snapshot parser, on the real 200-line sample (0704.0001-0704.0200).

Fixtures: tests/fixtures/kaggle/arxiv-metadata-oai-snapshot.json is the first 200 lines of the
snapshot (see LICENSE.arxivSpider_mnbvc.txt next to it); malformed.jsonl is built from its lines:

    1 ok (0704.0001)            6 ok (0704.0005)
    2 truncated JSON            7 a JSON array, not an object
    3 bad id "0704.00x3"        8 a version date that is not an arXiv date
    4 blank (skipped)           9 ok (0704.0007) without authors_parsed: authors split from the line
    5 no title (0704.0004)     10 ok (0704.0008)
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from papertide.catalog.records import Author, PaperRecord, RecordError, Version
from papertide.ingest import abs as abs_format
from papertide.ingest import kaggle
from papertide.ingest.files import read_head

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE = FIXTURES / "kaggle" / "arxiv-metadata-oai-snapshot.json"
MALFORMED = FIXTURES / "kaggle" / "malformed.jsonl"
UTC_ZONE = ZoneInfo("UTC")


def _records(path: Path) -> list[PaperRecord]:
    items = list(kaggle.parse(path, UTC_ZONE))
    assert all(isinstance(item, PaperRecord) for item in items), [
        item for item in items if isinstance(item, RecordError)
    ]
    return [item for item in items if isinstance(item, PaperRecord)]


@pytest.fixture(scope="module")
def sample() -> dict[str, PaperRecord]:
    return {record.arxiv_id: record for record in _records(SAMPLE)}


def test_parses_all_200_in_order() -> None:
    records = _records(SAMPLE)
    assert [record.arxiv_id for record in records] == [f"0704.{n:04d}" for n in range(1, 201)]
    assert {record.source for record in records} == {"kaggle"}
    assert records[0].position == f"{SAMPLE}:1"
    assert records[199].position == f"{SAMPLE}:200"
    assert all(record.title and record.abstract and record.authors for record in records)


def test_first_record_real_values(sample: dict[str, PaperRecord]) -> None:
    record = sample["0704.0001"]
    assert record.title == (
        "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    )
    assert record.abstract is not None
    assert record.abstract.startswith("A fully differential calculation in perturbative quantum")
    assert record.abstract.endswith("can be obtained with judicious selection of events.")
    assert "\n" not in record.abstract and "  " not in record.abstract
    assert [author.name for author in record.authors] == [
        "C. Balázs",
        "E. L. Berger",
        "P. M. Nadolsky",
        "C.-P. Yuan",  # authors_parsed says "C. -P."; both formats normalise it back
    ]
    assert all(author.affiliation is None for author in record.authors)
    assert record.categories == ["hep-ph"]
    assert record.primary_category == "hep-ph"
    assert record.version == 2
    v1 = datetime(2007, 4, 2, 19, 18, 42, tzinfo=UTC)
    v2 = datetime(2007, 7, 24, 20, 10, 27, tzinfo=UTC)
    assert record.versions == [Version(1, v1), Version(2, v2)]  # no sizes in the snapshot
    assert record.published_at == v1
    assert record.updated_at == v2
    assert record.comments == "37 pages, 15 figures; published version"
    assert record.journal_ref == "Phys.Rev.D76:013009,2007"
    assert record.doi == "10.1103/PhysRevD.76.013009"
    assert record.report_no == "ANL-HEP-PR-07-12"
    assert record.license is None  # null in the snapshot
    assert record.submitter == "Pavel Nadolsky"
    assert record.msc_class is None and record.acm_class is None and record.withdrawn is None


def test_multiple_categories_and_license(sample: dict[str, PaperRecord]) -> None:
    record = sample["0704.0002"]
    assert record.categories == ["math.CO", "cs.CG"]
    assert record.primary_category == "math.CO"
    assert record.license == "http://arxiv.org/licenses/nonexclusive-distrib/1.0/"
    assert [author.name for author in record.authors] == ["Ileana Streinu", "Louis Theran"]
    assert record.journal_ref is None and record.doi is None and record.report_no is None


def test_author_names_in_unicode_with_arxiv_spacing(sample: dict[str, PaperRecord]) -> None:
    def names(arxiv_id: str) -> list[str]:
        return [author.name for author in sample[arxiv_id].authors]

    assert names("0704.0062") == ["Rastislav Šrámek", "Broňa Brejová", "Tomáš Vinař"]
    assert names("0704.0049") == ["Mikkel Øbro"]
    assert names("0704.0030") == ["J. P. Hague", "N. d'Ambrumenil"]  # from "J.P.Hague"
    assert names("0704.0027")[1] == "J.-N. Fuchs"
    assert names("0704.0020") == ["The BABAR Collaboration", "B. Aubert"]  # "et al" dropped
    assert names("0704.0155")[0] == "Floris van der Tak"


def test_affiliations(sample: dict[str, PaperRecord]) -> None:
    # "..., David Jansen and Ewine van Dishoeck (Leiden)": the affiliation covers Jansen too
    assert [(a.name, a.affiliation) for a in sample["0704.0155"].authors] == [
        ("Floris van der Tak", "SRON Groningen"),
        ("John Black", "Onsala"),
        ("Fredrik Schoeier", "Stockholm"),
        ("David Jansen", "Leiden"),
        ("Ewine van Dishoeck", "Leiden"),
    ]
    assert sample["0704.0163"].authors[1] == Author(
        "Franz Gähler", "Institut für Theoretische und Angewandte Physik, Universität Stuttgart"
    )
    # Numbered affiliations, lost in authors_parsed, come from the authors line.
    evans = sample["0704.0128"].authors
    assert evans[0] == Author("P. A. Evans", "University of Leicester")
    assert evans[-1] == Author(
        "P. Romano", "INAF-Osservatorio Astronomico di Brera; Universita' degli Studi di Milano"
    )
    assert sample["0704.0025"].authors[1] == Author(
        "N. Nagaosa", "CREST, Japan Science and Technology Agency; The University of Tokyo"
    )
    # "(1 Dip. Astro., Bologna; 2 INAF...)" is no table we can read: no affiliations at all
    assert all(author.affiliation is None for author in sample["0704.0139"].authors)


def test_lines_with_parentheses_are_split_again(tmp_path: Path) -> None:
    line = SAMPLE.read_bytes().splitlines()[1]  # 0704.0002
    data = orjson.loads(line)
    data["authors"] = "Zhe (Rita) Liang and Louis Theran"
    data["authors_parsed"] = [["Zhe", "", "", "Rita"], ["Liang", "", ""], ["Theran", "Louis", ""]]
    path = tmp_path / "nickname.jsonl"
    path.write_bytes(orjson.dumps(data) + b"\n")
    (record,) = _records(path)
    assert record.authors == [Author("Zhe (Rita) Liang"), Author("Louis Theran")]


def test_submitter_tex_becomes_unicode(sample: dict[str, PaperRecord]) -> None:
    assert sample["0704.0028"].submitter == "Péter E. Frenkel"
    assert sample["0704.0049"].submitter == "Mikkel Øbro"


def test_three_versions(sample: dict[str, PaperRecord]) -> None:
    record = sample["0704.0189"]
    assert [version.number for version in record.versions] == [1, 2, 3]
    assert record.version == 3
    assert record.published_at == datetime(2007, 4, 2, 13, 34, 2, tzinfo=UTC)
    assert record.updated_at == datetime(2016, 1, 26, 14, 5, 55, tzinfo=UTC)


def test_malformed_lines_give_errors_and_the_rest_parses() -> None:
    items = list(kaggle.parse(MALFORMED, UTC_ZONE))
    errors = {
        item.position.rsplit(":", 1)[1]: item.reason
        for item in items
        if isinstance(item, RecordError)
    }
    records = [item for item in items if isinstance(item, PaperRecord)]
    assert sorted(errors, key=int) == ["2", "3", "5", "7", "8"]
    assert errors["2"].startswith("not JSON")
    assert "0704.00x3" in errors["3"]
    assert errors["5"] == "0704.0004: no title"
    assert errors["7"] == "not a JSON object but list"
    assert "2007-04-02" in errors["8"]
    assert [(record.arxiv_id, record.position) for record in records] == [
        ("0704.0001", f"{MALFORMED}:1"),
        ("0704.0005", f"{MALFORMED}:6"),
        ("0704.0007", f"{MALFORMED}:9"),
        ("0704.0008", f"{MALFORMED}:10"),
    ]
    # line 9 has no authors_parsed: the authors line is split instead, with the same result
    assert [author.name for author in records[2].authors] == [
        "Alejandro Corichi",
        "Tatjana Vukasinac",
        "Jose A. Zapata",
    ]


def test_gzip_input(tmp_path: Path) -> None:
    packed = tmp_path / "snapshot.jsonl.gz"
    packed.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    plain = _records(SAMPLE)
    unpacked = _records(packed)
    assert len(unpacked) == 200
    assert unpacked[0].position == f"{packed}:1"
    for left, right in zip(plain, unpacked, strict=True):
        right.position = left.position
        assert left == right


def test_truncated_gzip_keeps_what_was_read(tmp_path: Path) -> None:
    data = SAMPLE.read_bytes()
    packed = tmp_path / "cut.json.gz"
    packed.write_bytes(gzip.compress(data)[: len(gzip.compress(data)) // 2])
    items = list(kaggle.parse(packed, UTC_ZONE))
    assert isinstance(items[-1], RecordError)
    assert "truncated" in items[-1].reason
    assert 0 < len(items) - 1 < 200
    assert all(isinstance(item, PaperRecord) for item in items[:-1])


def test_parse_streams(tmp_path: Path) -> None:
    path = tmp_path / "head.jsonl"
    path.write_bytes(SAMPLE.read_bytes() + b"{not json\n")
    stream = kaggle.parse(path, UTC_ZONE)
    assert isinstance(stream, Iterator)
    first = next(stream)
    assert isinstance(first, PaperRecord) and first.arxiv_id == "0704.0001"


def test_empty_file_and_missing_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    assert list(kaggle.parse(empty, UTC_ZONE)) == []
    with pytest.raises(OSError):
        list(kaggle.parse(tmp_path / "missing.json", UTC_ZONE))


def test_sniff(tmp_path: Path) -> None:
    assert kaggle.sniff(read_head(SAMPLE))
    packed = tmp_path / "snapshot.json.gz"
    packed.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    assert kaggle.sniff(read_head(packed))
    abs_file = FIXTURES / "abs" / "ftp" / "arxiv" / "papers" / "0704" / "0704.0001.abs"
    assert not kaggle.sniff(read_head(abs_file))
    assert not abs_format.sniff(read_head(SAMPLE))
    assert not kaggle.sniff(b"")
    assert not kaggle.sniff(b'{"id": "2505.01234", "title": "Some other JSON lines"}\n')
    assert not kaggle.sniff(b'<?xml version="1.0"?>\n<feed xmlns="http://www.w3.org/2005/Atom">')
