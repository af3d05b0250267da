"""The .abs parser, on real files from arXiv's arxiv-browse test data.

Fixtures (tests/fixtures/abs/, licence in LICENSE.arxiv-browse.txt next to them):
ftp/arxiv/papers/0704/0704.0001-0200.abs (the papers of the Kaggle sample), old-style ids
(hep-th/9901001 with three versions, math/0202001, cs/0011004 with an ACM class,
math-ph/0509022 with an affiliation and a Proxy line, math-ph/0509037 which is empty), earlier
versions under orig/ (0704.0001v1, hep-th/9901001v1 and v2, 2101.04061v1), withdrawn papers
(0704.0156, 2101.10016 with eight versions), a Latin-1 file (1607.08199) and UTF-8 text
(1611.08171).
"""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from papertide.catalog.records import Author, PaperRecord, RecordError, Version
from papertide.ingest import abs as abs_format
from papertide.ingest.abs import parse_arxiv_date
from papertide.ingest.arxiv_names import split_authors, submitter_name, tex_to_unicode
from papertide.ingest.files import read_head

ROOT = Path(__file__).parent / "fixtures" / "abs"
NEW = ROOT / "ftp" / "arxiv" / "papers"
UTC_ZONE = ZoneInfo("UTC")


def _parse(path: Path) -> PaperRecord | RecordError:
    items = list(abs_format.parse(path, UTC_ZONE))
    assert len(items) == 1
    return items[0]


def _record(path: Path) -> PaperRecord:
    item = _parse(path)
    assert isinstance(item, PaperRecord), item
    return item


def _error(path: Path) -> RecordError:
    item = _parse(path)
    assert isinstance(item, RecordError), item
    assert item.position == str(path)
    return item


def test_every_fixture_file_gives_one_item() -> None:
    files = sorted(ROOT.rglob("*.abs"))
    assert len(files) == 200 + 13
    items = [_parse(path) for path in files]
    errors = [item for item in items if isinstance(item, RecordError)]
    assert [error.position for error in errors] == [
        str(ROOT / "ftp" / "math-ph" / "papers" / "0509" / "0509037.abs")
    ]
    assert errors[0].reason == "empty file"


def test_first_paper_real_values() -> None:
    path = NEW / "0704" / "0704.0001.abs"
    record = _record(path)
    assert record.arxiv_id == "0704.0001"
    assert record.source == "abs"
    assert record.position == str(path)
    assert record.title == (
        "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    )
    assert record.abstract is not None
    assert record.abstract.startswith("A fully differential calculation in perturbative quantum")
    assert record.abstract.endswith("can be obtained with judicious selection of events.")
    assert [author.name for author in record.authors] == [
        "C. Balázs",
        "E. L. Berger",
        "P. M. Nadolsky",
        "C.-P. Yuan",
    ]
    v1 = datetime(2007, 4, 2, 19, 18, 42, tzinfo=UTC)
    v2 = datetime(2007, 7, 24, 20, 10, 27, tzinfo=UTC)
    assert record.versions == [Version(1, v1, "443kb"), Version(2, v2, "370kb")]
    assert (record.version, record.published_at, record.updated_at) == (2, v1, v2)
    assert record.categories == ["hep-ph"]
    assert record.primary_category == "hep-ph"
    assert record.comments == "37 pages, 15 figures; published version"
    assert record.report_no == "ANL-HEP-PR-07-12"
    assert record.journal_ref == "Phys.Rev.D76:013009,2007"
    assert record.doi == "10.1103/PhysRevD.76.013009"
    assert record.license is None
    assert record.submitter == "Pavel Nadolsky"  # the obfuscated address is dropped
    assert record.withdrawn is False


def test_msc_class_license_and_size_flags() -> None:
    record = _record(NEW / "0704" / "0704.0002.abs")
    assert record.msc_class == "05C85; 05C70; 68R10; 05B35"
    assert record.license == "http://arxiv.org/licenses/nonexclusive-distrib/1.0/"
    assert [version.size for version in record.versions] == ["377kb", "136kb"]  # "(377kb,D)"
    assert [author.name for author in record.authors] == ["Ileana Streinu", "Louis Theran"]


def test_orig_file_is_the_earlier_version() -> None:
    latest = _record(NEW / "0704" / "0704.0001.abs")
    first = _record(ROOT / "orig" / "arxiv" / "papers" / "0704" / "0704.0001v1.abs")
    assert first.arxiv_id == latest.arxiv_id == "0704.0001"
    assert first.version == 1
    assert first.versions == latest.versions[:1]
    assert first.updated_at == first.published_at == latest.published_at
    assert first.comments == "47 pages, 14 figures"
    assert first.journal_ref is None and first.doi is None


def test_old_style_id_with_three_versions() -> None:
    record = _record(ROOT / "ftp" / "hep-th" / "papers" / "9901" / "9901001.abs")
    assert record.arxiv_id == "hep-th/9901001"
    assert record.version == 3
    assert [(version.number, version.submitted_at) for version in record.versions] == [
        (1, datetime(1999, 1, 1, 1, 1, 10, tzinfo=UTC)),
        (2, datetime(1999, 1, 5, 21, 36, 42, tzinfo=UTC)),
        (3, datetime(1999, 5, 10, 4, 45, 54, tzinfo=UTC)),
    ]
    assert record.title == "String Junctions and Their Duals in Heterotic String Theory"
    assert record.authors == [Author("Yosuke Imamura")]
    assert record.journal_ref == "Prog.Theor.Phys.101:1155-1164,1999"
    assert record.doi == "10.1143/PTP.101.1155"


def test_old_orig_file_without_categories_and_quoted_sender() -> None:
    record = _record(ROOT / "orig" / "hep-th" / "papers" / "9901" / "9901001v1.abs")
    assert record.version == 1
    assert record.categories == [] and record.primary_category is None
    assert record.submitter == "Yosuke Imamura"  # From: "Yosuke Imamura" <...>
    assert record.comments == "12 pages + 4 eps figures, LaTeX"
    second = _record(ROOT / "orig" / "hep-th" / "papers" / "9901" / "9901001v2.abs")
    assert second.version == 2
    assert second.comments is not None and "K3 in the last section are corrected" in second.comments


def test_withdrawn_papers() -> None:
    record = _record(NEW / "0704" / "0704.0156.abs")
    assert record.withdrawn is True  # "(0kb,I)" on the latest version
    assert record.versions[-1] == Version(2, datetime(2008, 3, 5, 4, 28, 27, tzinfo=UTC), "0kb")
    assert record.abstract == "This paper has been withdrawn by the authors."
    admin = _record(NEW / "2101" / "2101.10016.abs")
    assert admin.withdrawn is True
    assert admin.version == 8 and len(admin.versions) == 8
    assert admin.submitter == "arXiv Admin"
    assert admin.categories == ["math.QA", "hep-th", "math-ph", "math.MP", "math.OA"]
    assert admin.primary_category == "math.QA"
    earlier = _record(NEW / "2101" / "2101.04061.abs")
    assert earlier.withdrawn is False
    assert _record(ROOT / "orig" / "arxiv" / "papers" / "2101" / "2101.04061v1.abs").version == 1


def test_latin1_file() -> None:
    record = _record(NEW / "1607" / "1607.08199.abs")
    assert record.journal_ref == (
        "Épijournal de Géométrie Algébrique, Volume 1 (September 1, 2017) epiga:3255"
    )
    assert [author.name for author in record.authors][1] == "Emanuele Macrì"
    assert record.msc_class == "14F05 (Primary), 14J30, 18E30 (Secondary)"
    assert record.license == "http://creativecommons.org/licenses/by-sa/4.0/"
    assert record.version == 5


def test_utf8_and_tex_names() -> None:
    record = _record(NEW / "1611" / "1611.08171.abs")
    assert [author.name for author in record.authors] == ["H. Nesse Tyssøy", "J. Stadsnes"]
    assert record.submitter == "Nilde Nisse Tyssøy"
    assert record.doi == "10.1002/2014JA020508"


def test_affiliation_after_a_name_and_proxy_line() -> None:
    record = _record(ROOT / "ftp" / "math-ph" / "papers" / "0509" / "0509022.abs")
    assert record.arxiv_id == "math-ph/0509022"
    assert record.authors == [Author("Frédéric Klopp", "LAGA"), Author("Georgi Raikov")]
    assert record.msc_class == "82B44, 47B80, 47N55, 81Q10"


def test_acm_class_and_continued_comment() -> None:
    record = _record(ROOT / "ftp" / "cs" / "papers" / "0011" / "0011004.abs")
    assert record.arxiv_id == "cs/0011004"
    assert record.acm_class == "C.2.0"
    assert record.comments == (
        "6 pages, some things clearified, especially that a broadcast channel is not necessary"
    )
    assert [author.name for author in record.authors] == ["J. Mueller-Quade", "H. Imai"]


def test_continued_authors_and_journal_ref() -> None:
    record = _record(ROOT / "ftp" / "math" / "papers" / "0202" / "0202001.abs")
    assert [author.name for author in record.authors] == [
        "Laurent Bartholdi",
        "Rostislav I. Grigorchuk",
        "Volodymyr V. Nekrashevych",
    ]
    assert record.journal_ref == (
        "Fractals in Graz 2001, 25--118, Trends Math., Birkhauser, Basel, 2003"
    )


def test_doi_prefix_and_collaboration() -> None:
    record = _record(NEW / "0704" / "0704.0020.abs")
    assert record.doi == "10.1103/PhysRevD.76.052005"  # the file says "doi:10.1103/..."
    assert [author.name for author in record.authors] == ["The BABAR Collaboration", "B. Aubert"]
    assert record.report_no == "BABAR-PUB-07/015, SLAC-PUB-12417"


def test_numbered_affiliations() -> None:
    authors = _record(NEW / "0704" / "0704.0025.abs").authors
    assert authors == [
        Author(
            "A. S. Mishchenko",
            "CREST, Japan Science and Technology Agency; "
            "Russian Research Centre ``Kurchatov Institute''",
        ),
        Author("N. Nagaosa", "CREST, Japan Science and Technology Agency; The University of Tokyo"),
    ]


def test_gzip_abs(tmp_path: Path) -> None:
    source = NEW / "0704" / "0704.0001.abs"
    packed = tmp_path / "0704.0001.abs.gz"
    packed.write_bytes(gzip.compress(source.read_bytes()))
    record = _record(packed)
    assert record.position == str(packed)
    record.position = str(source)
    assert record == _record(source)
    assert abs_format.sniff(read_head(packed))


HEAD = "-" * 78 + "\n\\\\\n"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("Title: no dashes\n", "not an .abs file"),
        (HEAD + "From: A <a@b.c>\nTitle: T\n\\\\\n  text\n\\\\\n", "no arXiv: line"),
        (HEAD + "arXiv:0704.00x1\nTitle: T\n\\\\\n", "is not an arXiv id"),
        (HEAD + "arXiv:0704.0001\nAuthors: A\n\\\\\n  text\n\\\\\n", "0704.0001: no title"),
        (HEAD + "arXiv:0704.0001\nDate: yesterday (1kb)\nTitle: T\n\\\\\n", "not an arXiv date"),
        (
            HEAD + "arXiv:0704.0001\nDate (amended): Mon, 2 Apr 2007 19:18:42 GMT\nTitle: T\n",
            "date",
        ),
    ],
)
def test_malformed_files(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "bad.abs"
    path.write_text(content)
    assert reason in _error(path).reason


def test_minimal_file_without_dates_or_closing_line(tmp_path: Path) -> None:
    path = tmp_path / "min.abs"
    path.write_text(HEAD + "arXiv:2505.01234v3\nTitle:  A\n  title\n\\\\\n  The abstract.\n")
    record = _record(path)
    assert (record.arxiv_id, record.version, record.title) == ("2505.01234", 3, "A title")
    assert record.abstract == "The abstract."
    assert record.versions == [] and record.withdrawn is None and record.authors == []


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        list(abs_format.parse(tmp_path / "missing.abs", UTC_ZONE))


def test_sniff() -> None:
    assert abs_format.sniff(read_head(NEW / "0704" / "0704.0001.abs"))
    assert abs_format.sniff(read_head(NEW / "1607" / "1607.08199.abs"))
    assert abs_format.sniff(
        read_head(ROOT / "orig" / "hep-th" / "papers" / "9901" / "9901001v1.abs")
    )
    assert abs_format.sniff((HEAD + "Paper: hep-th/9201001\n").encode())
    assert not abs_format.sniff(b"")
    assert not abs_format.sniff(b"------ a markdown rule\nnothing else\n")
    assert not abs_format.sniff(b'{"id": "0704.0001", "authors_parsed": []}\n')


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "A. Smith, B. Jones and C. Brown",
            [("A. Smith", None), ("B. Jones", None), ("C. Brown", None)],
        ),
        ("A. Smith & B. Jones", [("A. Smith", None), ("B. Jones", None)]),
        ("A. Smith (MIT), B. Jones", [("A. Smith", "MIT"), ("B. Jones", None)]),
        ("A. Smith, B. Jones (MIT)", [("A. Smith", "MIT"), ("B. Jones", "MIT")]),
        (
            "A. Smith (Univ. (Dept. X)), B. Jones",
            [("A. Smith", "Univ. (Dept. X)"), ("B. Jones", None)],
        ),
        (
            "A. Smith (1,2), B. Jones (2) ((1) MIT, (2) CERN.)",
            [("A. Smith", "MIT; CERN"), ("B. Jones", "CERN")],
        ),
        ("A. Smith (1), B. Jones (3) ((1) MIT)", [("A. Smith", "MIT"), ("B. Jones", None)]),
        ("John Smith, Jr., Ann Lee", [("John Smith, Jr.", None), ("Ann Lee", None)]),
        (
            "ATLAS Collaboration: A. Smith, B. Jones et al.",
            [("ATLAS Collaboration", None), ("A. Smith", None), ("B. Jones", None)],
        ),
        (
            "ATLAS Collaboration: A. Smith (CERN)",
            [("ATLAS Collaboration", None), ("A. Smith", "CERN")],
        ),
        (
            "G\\\"unter Z\\'{e}ller and Ji\\v{r}\\'\\i{} Novak",
            [("Günter Zéller", None), ("Jiří Novak", None)],
        ),
        (
            "Zhe (Rita) Liang, Matei I.\n  Radulescu",
            [("Zhe (Rita) Liang", None), ("Matei I. Radulescu", None)],
        ),
        ("A. Smith (MIT) B. Jones", [("A. Smith", "MIT"), ("B. Jones", None)]),
        ("M. Finger,\\, Jr., F. Fleuret", [("M. Finger, Jr.", None), ("F. Fleuret", None)]),
        ("A. Smith (6); (1 - Swarthmore; 6 - Caltech)", [("A. Smith", None)]),
        ("A. Smith; B. Jones", [("A. Smith", None), ("B. Jones", None)]),
        ("", []),
    ],
)
def test_split_authors(line: str, expected: list[tuple[str, str | None]]) -> None:
    assert [(author.name, author.affiliation) for author in split_authors(line)] == expected


@pytest.mark.parametrize(
    ("tex", "text"),
    [
        ("Bal\\'azs", "Balázs"),
        ("\\v{S}r\\'amek", "Šrámek"),
        ("{\\O}bro", "Øbro"),
        ("Stra\\ss e", "Straße"),
        ("I\\~naki", "Iñaki"),
        ('Gr\\"{u}bel', "Grübel"),
        ('Sz\\"oll\\H{o}si', "Szöllősi"),
        ("Tyss{\\o}y", "Tyssøy"),
        ("Macr\\`i", "Macrì"),
        ("$\\alpha$-decay", "$\\alpha$-decay"),
    ],
)
def test_tex_to_unicode(tex: str, text: str) -> None:
    assert tex_to_unicode(tex) == text


def test_submitter_name() -> None:
    assert submitter_name("Pavel Nadolsky <ImX8IKaf@KGV.pXn.tVb>") == "Pavel Nadolsky"
    assert submitter_name('"Yosuke Imamura" <ne4dglT@FWY4vx.HYbSX-W.AE.zs>') == "Yosuke Imamura"
    assert submitter_name("someone@example.org (Jane Doe)") == "Jane Doe"
    assert submitter_name("<noname@example.org>") is None
    assert submitter_name("someone@example.org") is None
    assert submitter_name('Veit Schw\\"ammle <x@y.z>') == "Veit Schwämmle"
    assert submitter_name(None) is None


def test_parse_arxiv_date() -> None:
    expected = datetime(2007, 4, 2, 19, 18, 42, tzinfo=UTC)
    assert parse_arxiv_date("Mon, 2 Apr 2007 19:18:42 GMT") == expected
    assert parse_arxiv_date("2 Apr 2007 19:18:42 GMT") == expected
    for bad in ("2007-04-02", "Mon, 2 Foo 2007 19:18:42 GMT", "Mon, 2 Apr 2007 19:18 GMT", ""):
        with pytest.raises(ValueError):
            parse_arxiv_date(bad)
