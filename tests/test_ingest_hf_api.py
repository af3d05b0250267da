"""The HF papers API parser: daily lists, single papers, JSON lines, and the older scrape.

Fixtures (tests/fixtures/hf/README.md): ``api/`` is HAND-MADE after the documented API shape
(invented papers and people); ``mwoedlinger/papers.excerpt.json`` is five real records of the
mwoedlinger/PaperExplorer scrape. Malformed inputs are built from them in tmp_path.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from papertide.catalog.records import Author, Listing, OrganizationRef, PaperRecord, RecordError
from papertide.ingest import hf_api, hf_jsonfeed
from papertide.ingest.files import read_head

FIXTURES = Path(__file__).parent / "fixtures" / "hf"
DAILY = FIXTURES / "api" / "daily_papers_2025-05-02.json"
SINGLE = FIXTURES / "api" / "paper_2505.01234.json"
LINES = FIXTURES / "api" / "daily_papers.jsonl"
SCRAPE = FIXTURES / "mwoedlinger" / "papers.excerpt.json"
NEW_YORK = ZoneInfo("America/New_York")

ZAI = OrganizationRef(
    slug="zai-org",
    name="Z.ai",
    avatar_url="https://cdn-avatars.huggingface.co/v1/production/uploads/zai-org.png",
)
GLIDE_ABSTRACT = (
    "Editing long documents requires locating every passage an instruction touches. We present "
    "GLiDE, a planner that retrieves candidate spans, drafts a global edit plan and applies it "
    "span by span. On a new benchmark of 1,200 instructions over documents of up to 100k tokens, "
    "GLiDE raises exact-edit accuracy from 41.2% to 63.5%."
)
KAGGLE_LINE = (
    b'{"id":"0704.0001","submitter":"Pavel Nadolsky","authors":"C. Bal\\\\\'azs, E. L. Berger",'
    b'"title":"Calculation of prompt diphoton production","journal-ref":"Phys.Rev.D76:013009,2007",'
    b'"report-no":"ANL-HEP-PR-07-12","categories":"hep-ph","abstract":"  A fully differential",'
    b'"versions":[{"version":"v1","created":"Mon, 2 Apr 2007 19:18:42 GMT"}],'
    b'"update_date":"2008-11-26","authors_parsed":[["Bal\\u00e1zs","C.",""]]}\n'
)


def _parse(path: Path) -> list[PaperRecord | RecordError]:
    return list(hf_api.parse(path, NEW_YORK))


def _records(path: Path) -> list[PaperRecord]:
    items = _parse(path)
    assert not [item for item in items if isinstance(item, RecordError)]
    return [item for item in items if isinstance(item, PaperRecord)]


# --- sniff ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [DAILY, SINGLE, LINES, SCRAPE], ids=lambda p: p.name)
def test_sniff_accepts_own_shapes(path: Path) -> None:
    assert hf_api.sniff(read_head(path))
    assert not hf_jsonfeed.sniff(read_head(path))


@pytest.mark.parametrize(
    "head",
    [
        KAGGLE_LINE,
        b'<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">',
        b"",
        b"[1, 2, 3]",
        b'{"2505.01234": 1}',
        b'{"version": "https://jsonfeed.org/version/1", "title": "Hugging Face Papers", '
        b'"items": [{"id": "https://huggingface.co/papers/2502.01341", "title": "AlignVLM"}]}',
    ],
    ids=["kaggle-json-lines", "xml", "empty", "array-of-numbers", "dict-of-numbers", "json-feed"],
)
def test_sniff_rejects_other_formats(head: bytes) -> None:
    assert not hf_api.sniff(head)


def test_sniff_rejects_the_markert_feed_and_timeline() -> None:
    markert = FIXTURES / "markert"
    assert not hf_api.sniff(read_head(markert / "history" / "2025-02-04" / "hf_papers.json"))
    assert not hf_api.sniff(read_head(markert / "history" / "2025-04-03" / "hf_papers.json"))
    assert not hf_api.sniff(read_head(markert / "derived_hf_papers_timeline.excerpt.jsonl"))


# --- GET /api/daily_papers ---------------------------------------------------------------------


def test_daily_list_maps_every_field() -> None:
    records = _records(DAILY)
    assert [r.arxiv_id for r in records] == ["2505.01234", "2505.00987", "2504.21876", "2505.00412"]
    glide = records[0]
    assert glide.source == "hf-api"
    assert glide.position == f"{DAILY} item 0 (2505.01234)"
    assert glide.title == "GLiDE: Grounded Long-Document Editing with Retrieval-Aware Planners"
    assert glide.abstract == GLIDE_ABSTRACT  # arXiv line wraps normalised
    assert glide.authors == [
        Author("Zoë Ångström"),
        Author("李明"),
        Author("Ada Lovelace"),
        Author("Wiremu Ngata"),
    ]
    assert glide.published_at == datetime(2025, 5, 1, 17, 59, 58, tzinfo=UTC)
    assert glide.upvotes == 42
    assert glide.ai_summary == (
        "GLiDE plans and applies edits across long documents by retrieving the affected spans "
        "first, improving exact-edit accuracy."
    )
    assert glide.ai_summary_model is None
    assert glide.code_url == "https://github.com/example-lab/glide"
    assert glide.project_url == "https://example-lab.github.io/glide/"
    assert glide.organization == ZAI
    assert glide.withdrawn is None
    assert glide.listing == Listing(date(2025, 5, 2), 0, submitter_name="nadia-k")


def test_withdrawn_paper_without_organization() -> None:
    note = _records(DAILY)[1]
    assert note.withdrawn is True
    assert note.organization is None and note.code_url is None and note.project_url is None
    assert [a.name for a in note.authors] == ["José Núñez", "Søren Madsen", "Ngọc Trần"]
    assert note.upvotes == 5
    assert note.listing == Listing(date(2025, 5, 2), 1, submitter_name="t-okafor")


def test_listed_after_midnight_utc_counts_for_the_previous_new_york_day() -> None:
    sorting = _records(DAILY)[2]  # publishedAt 2025-05-02T03:10:00.000Z = 23:10 on 1 May in NY
    assert sorting.listing == Listing(date(2025, 5, 1), 2, submitter_name="nadia-k")
    utc = [r for r in hf_api.parse(DAILY, ZoneInfo("UTC")) if isinstance(r, PaperRecord)]
    assert utc[2].listing is not None and utc[2].listing.day == date(2025, 5, 2)


def test_latex_and_angle_brackets_are_kept() -> None:
    sorting = _records(DAILY)[2]
    assert sorting.title == (
        r"Sorting in $\mathcal{O}(n \log n)$ Tokens: Length Generalisation for <think> Traces"
    )
    assert sorting.abstract is not None
    assert sorting.abstract.startswith(
        "We ask whether reasoning traces written between <think> and </think> tags generalise"
    )
    assert sorting.abstract.endswith(r"when the trace budget grows as $\mathcal{O}(n \log n)$.")
    assert [a.name for a in sorting.authors] == ["Марія Коваленко", "Kwame Mensah"]


def test_hidden_author_kept_and_zero_upvotes() -> None:
    tables = _records(DAILY)[3]
    assert [a.name for a in tables.authors] == ["Hiroshi Tanaka", "Élodie Fontaine"]
    assert tables.upvotes == 0
    assert tables.ai_summary is None


# --- GET /api/papers/{id} and JSON lines -------------------------------------------------------


def test_single_flat_paper_object() -> None:
    (glide,) = _records(SINGLE)
    assert glide.position == f"{SINGLE} (2505.01234)"
    assert glide.title == "GLiDE: Grounded Long-Document Editing with Retrieval-Aware Planners"
    assert glide.abstract == GLIDE_ABSTRACT
    assert glide.organization == ZAI
    assert glide.upvotes == 42
    assert glide.published_at == datetime(2025, 5, 1, 17, 59, 58, tzinfo=UTC)
    # on a daily list (submittedOnDailyAt) at an unknown place
    assert glide.listing == Listing(date(2025, 5, 2), None, submitter_name="nadia-k")


def test_json_lines_of_entries_and_flat_papers() -> None:
    records = _records(LINES)
    assert [(r.arxiv_id, r.position) for r in records] == [
        ("2504.21876", f"{LINES}:1 (2504.21876)"),
        ("2505.01234", f"{LINES}:2 (2505.01234)"),
        ("2505.00987", f"{LINES}:3 (2505.00987)"),
    ]
    assert [r.listing for r in records] == [
        Listing(date(2025, 5, 1), 0, submitter_name="nadia-k"),
        Listing(date(2025, 5, 2), 1, submitter_name="nadia-k"),
        Listing(date(2025, 5, 2), None, submitter_name="t-okafor"),
    ]
    assert records[1].organization == ZAI
    assert records[2].withdrawn is True


# --- the older scrape (mwoedlinger/PaperExplorer) -----------------------------------------------


def test_older_scrape_dict_keyed_by_arxiv_id() -> None:
    records = _records(SCRAPE)
    assert [(r.arxiv_id, r.upvotes) for r in records] == [
        ("2312.17653", 29),
        ("2401.01974", 4),
        ("2401.02839", 14),
        ("2401.04088", 145),
        ("2402.17764", 553),
    ]
    assert all(r.listing is None for r in records)  # no list day in this scrape
    bitnet = records[4]
    assert bitnet.title == "The Era of 1-bit LLMs: All Large Language Models are in 1.58 Bits"
    assert bitnet.published_at == datetime(2024, 2, 27, 18, 56, 19, tzinfo=UTC)
    assert bitnet.position == f"{SCRAPE} item 4 (2402.17764)"
    assert [a.name for a in bitnet.authors][:2] == ["Shuming Ma", "Hongyu Wang"]
    mixtral = records[3]
    assert len(mixtral.authors) == 26
    assert (mixtral.authors[0].name, mixtral.authors[-1].name) == (
        "Albert Q. Jiang",
        "William El Sayed",
    )
    assert Author("Lélio Renard Lavaud") in mixtral.authors
    assert [a.name for a in records[1].authors] == [
        "Aleksandar Stanić",
        "Sergi Caelles",
        "Michael Tschannen",
    ]
    assert [a.name for a in records[2].authors][-1] == "Ivan Vulić"
    larp = records[0]
    assert larp.abstract is not None
    assert larp.abstract.startswith(
        "Language agents have shown impressive problem-solving skills within defined settings"
    )  # "defined\nsettings" upstream
    assert larp.abstract.endswith(
        "The project page is released at https://miao-ai-lab.github.io/LARP/."
    )


# --- malformed input ---------------------------------------------------------------------------


def test_malformed_entries_are_errors_with_positions_and_the_rest_parse(tmp_path: Path) -> None:
    entries = orjson.loads(DAILY.read_bytes())
    bad_time = {**entries[3], "paper": {**entries[3]["paper"], "publishedAt": "soon"}}
    path = tmp_path / "daily.json"
    path.write_bytes(
        orjson.dumps(
            [
                entries[0],
                {"paper": {"title": "no id"}},
                {"paper": {"id": "2505.1"}},
                "text",
                bad_time,
                entries[1],
            ]
        )
    )
    items = _parse(path)
    errors = {item.position: item.reason for item in items if isinstance(item, RecordError)}
    assert set(errors) == {
        f"{path} item 1",
        f"{path} item 2",
        f"{path} item 3",
        f"{path} item 4 (2505.00412)",
    }
    assert errors[f"{path} item 1"] == "no paper id"
    assert "'2505.1' is not an arXiv id" in errors[f"{path} item 2"]
    assert errors[f"{path} item 3"] == "expected a JSON object, found str"
    assert "'soon'" in errors[f"{path} item 4 (2505.00412)"]
    records = [item for item in items if isinstance(item, PaperRecord)]
    assert [(r.arxiv_id, r.listing.position if r.listing else None) for r in records] == [
        ("2505.01234", 0),
        ("2505.00987", 5),
    ]


def test_truncated_daily_list_keeps_the_entries_before_the_cut(tmp_path: Path) -> None:
    data = DAILY.read_bytes()
    cut = data.index(b'"id":"2504.21876"') + 10  # inside entry 2
    path = tmp_path / "daily.json"
    path.write_bytes(data[:cut])
    items = _parse(path)
    assert [item.arxiv_id for item in items if isinstance(item, PaperRecord)] == [
        "2505.01234",
        "2505.00987",
    ]
    error = items[-1]
    assert isinstance(error, RecordError)
    assert error.position == f"{path} item 2"
    assert "truncated or invalid JSON" in error.reason


def test_truncated_single_paper_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "paper.json"
    path.write_bytes(SINGLE.read_bytes()[:700])
    (error,) = _parse(path)
    assert isinstance(error, RecordError)
    assert error.position == str(path)
    assert error.reason.startswith("not valid JSON")


def test_bad_json_lines_are_skipped_with_their_line_numbers(tmp_path: Path) -> None:
    lines = LINES.read_bytes().splitlines()
    path = tmp_path / "daily.jsonl"
    path.write_bytes(b"\n".join([lines[0], lines[1][:200], b"", b"null", lines[2]]) + b"\n")
    items = _parse(path)
    assert len(items) == 4
    assert [item.arxiv_id for item in items if isinstance(item, PaperRecord)] == [
        "2504.21876",
        "2505.00987",
    ]
    truncated, null = items[1], items[2]
    assert isinstance(truncated, RecordError) and isinstance(null, RecordError)
    assert truncated.position == f"{path}:2"
    assert truncated.reason.startswith("not valid JSON")
    assert str(null) == f"{path}:4: expected a JSON object, found NoneType"
    last = items[3]
    assert isinstance(last, PaperRecord) and last.position == f"{path}:5 (2505.00987)"


def test_malformed_scrape_members(tmp_path: Path) -> None:
    scrape = orjson.loads(SCRAPE.read_bytes())
    broken = {
        "2312.17653": scrape["2312.17653"],
        "not-an-id": scrape["2401.01974"],
        "2401.02839": ["not", "an", "object"],
        "2401.04088": {**scrape["2401.04088"], "publication_date": "2024-13-45"},
        "2402.17764": scrape["2402.17764"],
    }
    path = tmp_path / "papers.json"
    path.write_bytes(orjson.dumps(broken, option=orjson.OPT_INDENT_2))
    assert hf_api.sniff(read_head(path))
    items = _parse(path)
    errors = [(item.position, item.reason) for item in items if isinstance(item, RecordError)]
    assert [position for position, _ in errors] == [
        f"{path} item 1 (not-an-id)",
        f"{path} item 2 (2401.02839)",
        f"{path} item 3 (2401.04088)",
    ]
    assert errors[1][1] == "expected a JSON object, found list"
    assert "'2024-13-45'" in errors[2][1]
    assert [item.arxiv_id for item in items if isinstance(item, PaperRecord)] == [
        "2312.17653",
        "2402.17764",
    ]


def test_truncated_scrape_keeps_the_papers_before_the_cut(tmp_path: Path) -> None:
    data = SCRAPE.read_bytes()
    path = tmp_path / "papers.json"
    path.write_bytes(data[: data.index(b'"2401.04088"') + 200])
    items = _parse(path)
    assert [item.arxiv_id for item in items if isinstance(item, PaperRecord)] == [
        "2312.17653",
        "2401.01974",
        "2401.02839",
    ]
    assert isinstance(items[-1], RecordError)
    assert items[-1].position == f"{path} item 3"
