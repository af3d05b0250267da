"""The HF Daily Papers JSON Feed parser, on real snapshots of huggingface.co/papers.

Fixtures (tests/fixtures/hf/README.md): ten days of MichaelMarkert/rss history snapshots, one
per ``content_text`` shape and oddity found across all 562 days, and eight real lines of the
derived timeline. Malformed inputs are built from those real files in tmp_path.
"""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from papertide.catalog.records import PaperRecord, RecordError
from papertide.demo import DEMO_PATH
from papertide.ingest import hf_api, hf_jsonfeed
from papertide.ingest.files import read_head
from papertide.ingest.hf_jsonfeed import ContentParts, split_content

FIXTURES = Path(__file__).parent / "fixtures" / "hf"
HISTORY = FIXTURES / "markert" / "history"
TIMELINE = FIXTURES / "markert" / "derived_hf_papers_timeline.excerpt.jsonl"
NEW_YORK = ZoneInfo("America/New_York")

KAGGLE_LINE = (
    b'{"id":"0704.0001","submitter":"Pavel Nadolsky","authors":"C. Bal\\\\\'azs, E. L. Berger",'
    b'"title":"Calculation of prompt diphoton production cross sections","comments":"37 pages",'
    b'"journal-ref":"Phys.Rev.D76:013009,2007","doi":"10.1103/PhysRevD.76.013009",'
    b'"report-no":"ANL-HEP-PR-07-12","categories":"hep-ph","license":null,"abstract":"  A fully",'
    b'"versions":[{"version":"v1","created":"Mon, 2 Apr 2007 19:18:42 GMT"}],'
    b'"update_date":"2008-11-26","authors_parsed":[["Bal\\u00e1zs","C.",""]]}\n'
)
RSS_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
    b"<title>Hugging Face Papers</title><link>https://huggingface.co/</link>"
)


def _feed(day: str) -> Path:
    plain = HISTORY / day / "hf_papers.json"
    return plain if plain.exists() else plain.with_suffix(".json.gz")


def _parse(path: Path) -> list[PaperRecord | RecordError]:
    return list(hf_jsonfeed.parse(path, NEW_YORK))


def _records(path: Path) -> dict[str, PaperRecord]:
    items = _parse(path)
    assert not [item for item in items if isinstance(item, RecordError)]
    return {item.arxiv_id: item for item in items if isinstance(item, PaperRecord)}


def _listing(record: PaperRecord) -> tuple[date, int | None]:
    assert record.listing is not None
    return record.listing.day, record.listing.position


# --- sniff ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "day",
    ["2025-02-04", "2025-04-03", "2025-06-03", "2026-04-01", "2026-07-13", "2026-08-22"],
)
def test_sniff_accepts_feed_snapshots_plain_and_gzip(day: str) -> None:
    assert hf_jsonfeed.sniff(read_head(_feed(day)))
    assert not hf_api.sniff(read_head(_feed(day)))


def test_sniff_accepts_timeline_lines_and_the_demo_file() -> None:
    assert hf_jsonfeed.sniff(read_head(TIMELINE))
    assert hf_jsonfeed.sniff(read_head(DEMO_PATH))
    assert not hf_api.sniff(read_head(TIMELINE))


@pytest.mark.parametrize(
    "head",
    [
        KAGGLE_LINE,
        RSS_HEAD,
        b"",
        b'{"version": "https://jsonfeed.org/version/1", "title": "Hugging Face Blog", '
        b'"home_page_url": "https://example.org/", "items": []}',
    ],
    ids=["kaggle-json-lines", "rss-xml", "empty", "other-json-feed"],
)
def test_sniff_rejects_other_formats(head: bytes) -> None:
    assert not hf_jsonfeed.sniff(head)


def test_sniff_rejects_hf_api_shapes() -> None:
    for name in ("daily_papers_2025-05-02.json", "paper_2505.01234.json", "daily_papers.jsonl"):
        assert not hf_jsonfeed.sniff(read_head(FIXTURES / "api" / name))
    assert not hf_jsonfeed.sniff(read_head(FIXTURES / "mwoedlinger" / "papers.excerpt.json"))


# --- the earliest snapshot: abstracts only, Z timestamps ---------------------------------------


def test_early_snapshot_items_in_order_with_new_york_days() -> None:
    items = _parse(_feed("2025-02-04"))
    assert all(isinstance(item, PaperRecord) for item in items)
    records = [item for item in items if isinstance(item, PaperRecord)]
    assert len(records) == 21
    assert [r.arxiv_id for r in records[:3]] == ["2502.01341", "2502.00698", "2502.01639"]
    first = records[0]
    assert first.source == "hf-jsonfeed"
    assert first.title == (
        "AlignVLM: Bridging Vision and Language Latent Spaces for Multimodal Understanding"
    )
    assert first.abstract is not None
    assert first.abstract.startswith("Aligning visual features with language embeddings is a key")
    assert first.abstract.endswith(
        "improved vision-text feature alignment and robustness to noise."
    )
    assert first.ai_summary is None and first.ai_summary_model is None
    assert _listing(first) == (date(2025, 2, 4), 0)
    assert first.position.endswith("2025-02-04/hf_papers.json item 0 (2502.01341)")
    # 2025-02-04T03:22:44Z is 22:22 on 3 Feb in New York: the previous list day.
    assert records[20].arxiv_id == "2502.00094"
    assert _listing(records[20]) == (date(2025, 2, 3), 20)
    assert _listing(records[18]) == (date(2025, 2, 4), 18)  # 05:02:39Z is 00:02 in New York


def test_listing_day_follows_the_configured_time_zone() -> None:
    tokyo = [r for r in hf_jsonfeed.parse(_feed("2025-02-04"), ZoneInfo("Asia/Tokyo"))]
    last = tokyo[20]
    assert isinstance(last, PaperRecord)
    assert _listing(last) == (date(2025, 2, 4), 20)


def test_abstract_whitespace_is_normalised_and_latex_kept() -> None:
    record = _records(_feed("2025-02-04"))["2502.00698"]
    assert record.abstract is not None
    # the source has "test items spanning 8 distinct reasoning paradigms.   Through systematic"
    assert "reasoning paradigms. Through systematic evaluation" in record.abstract
    assert "  " not in record.abstract


# --- oddities --------------------------------------------------------------------------------


def test_placeholder_item_of_a_failed_scrape_is_a_record_error() -> None:
    items = _parse(_feed("2025-04-03"))
    assert len(items) == 1
    error = items[0]
    assert isinstance(error, RecordError)
    assert error.position.endswith("2025-04-03/hf_papers.json item 0")
    assert "'1' is not an arXiv id" in error.reason


def test_an_id_listed_twice_in_one_feed_is_read_once() -> None:
    items = _parse(_feed("2025-06-03"))  # gzip; 59 items, items 38 and 39 are both 2506.01920
    records = [item for item in items if isinstance(item, PaperRecord)]
    assert len(items) == len(records) == 58
    positions = [r.listing.position for r in records if r.listing]
    assert positions == [*range(39), *range(40, 59)]
    twice = [r for r in records if r.arxiv_id == "2506.01920"]
    assert len(twice) == 1 and _listing(twice[0]) == (date(2025, 6, 3), 38)


def test_titles_with_arxiv_line_wraps_become_one_line() -> None:
    records = _records(_feed("2025-07-07"))
    assert records["2507.01955"].title == (
        "How Well Does GPT-4o Understand Vision? Evaluating Multimodal Foundation Models on "
        "Standard Computer Vision Tasks"
    )
    assert records["2507.00769"].title == (
        "LitBench: A Benchmark and Dataset for Reliable Evaluation of Creative Writing"
    )


def test_failed_page_fetch_gives_no_texts_and_the_scrape_day() -> None:
    records = _records(_feed("2026-07-13"))
    record = records["2607.09415"]  # content_text "", date_published 2026-07-13T18:45:35.563919
    assert (record.abstract, record.ai_summary, record.ai_summary_model) == (None, None, None)
    assert record.title == "Self-Guided Test-Time Training for Long-Context LLMs"
    assert _listing(record) == (date(2026, 7, 13), 7)


def test_non_ascii_title_of_the_latest_snapshot() -> None:
    record = _records(_feed("2026-08-22"))["2608.16885"]
    assert record.title == (
        "τ_0-VLA: a Hierarchical Robot Foundation Model with World-Model-Guided Test-Time "
        "Computation"
    )


# --- content_text variants, on the real items ---------------------------------------------------

VARIANTS = [
    pytest.param(
        "2025-11-20",
        "2511.13524",
        None,
        None,
        "As embodied intelligence emerges as a core frontier in artificial intelligence research,",
        "self serves as an additional information modality.",
        (date(2025, 11, 19), 7),  # 02:49:30 UTC
        id="abstract-only",
    ),
    pytest.param(
        "2025-11-20",
        "2511.13001",
        "Medal S is a medical segmentation foundation model that integrates spatial and textual "
        "prompts for efficient, high-accuracy multi-class segmentation across various imaging "
        "modalities.",
        None,
        "We introduce Medal S, a medical segmentation foundation model that supports",
        "lable at https://github.com/yinghemedical/Medal-S.",
        (date(2025, 11, 20), 10),
        id="summary-tabs-AI-generated-summary-tabs",
    ),
    pytest.param(
        "2025-06-03",
        "2506.01920",
        "A new evaluation framework and dataset, ADMD, are introduced to assess Arabic language "
        "models, highlighting variations in performance and emphasizing the importance of "
        "cultural competence.",
        None,
        "This paper addresses critical gaps in Arabic language model evaluation by establishing",
        "tural competence alongside technical capabilities.",
        (date(2025, 6, 3), 38),
        id="gzip-summary-tabs",
    ),
    pytest.param(
        "2026-02-23",
        "2602.10693",
        "VESPO addresses training instability in LLM reinforcement learning by using variational "
        "formulation with variance reduction to correct policy divergence without length "
        "normalization.",
        None,
        "Training stability remains a central challenge in reinforcement learning (RL) for large",
        "s available at https://github.com/FloyedShen/VESPO",
        (date(2026, 2, 23), 0),
        id="Abstract-summary-tabs-AI-generated-summary",
    ),
    pytest.param(
        "2026-04-01",
        "2603.28032",
        "CARLA-Air integrates high-fidelity driving and multirotor flight simulation within a "
        "unified Unreal Engine framework, supporting joint air-ground agent modeling with "
        "photorealistic environments and multi-modal sensing capabilities.",
        None,
        "The convergence of low-altitude economies, embodied intelligence, and air-ground",
        "ll source: https://github.com/louiszengCN/CarlaAir",
        (date(2026, 3, 31), 1),  # 2026-04-01T01:56:58 UTC
        id="Abstract-two-spaces-summary-AI-generated-summary",
    ),
    pytest.param(
        "2026-04-01",
        "2603.27365",
        None,
        None,
        "Perception-centric systems are typically implemented with a modular encoder-decoder",
        "attains 80.3% on olmOCR and 88.64 on OmniDocBench.",
        (date(2026, 4, 1), 15),
        id="Abstract-two-spaces-abstract-no-summary",
    ),
    pytest.param(
        "2026-05-20",
        "2605.14842",
        "Abstract image editing benchmark and entity-rubrics framework reveal challenges in "
        "balancing intent and preservation for abstract instructions, highlighting need for "
        "advanced LLM integration and iterative approaches.",
        None,
        'Humans naturally communicate through abstract concepts like "mood". However, current',
        "nd the natural, open-ended way humans communicate.",
        (date(2026, 5, 20), 37),
        id="summary-beginning-with-the-word-Abstract",
    ),
    pytest.param(
        "2026-07-13",
        "2607.06553",
        "Pretrained diffusion transformers can be adapted for dense prediction tasks by mapping "
        "tokens to task-native outputs instead of generating RGB images, achieving "
        "state-of-the-art results with minimal additional parameters.",
        "Qwen/Qwen2.5-Coder-32B-Instruct",
        "Large-scale text-to-image models are attractive backbones for dense prediction because",
        "etraining without inheriting its output interface.",
        (date(2026, 7, 12), 5),
        id="Generated-by-Qwen",
    ),
    pytest.param(
        "2026-08-22",
        "2608.19880",
        "EnvHarness and EnvRigger dynamically reshape static environments via programmable "
        "plugins to target agent weaknesses and improve reinforcement learning co-evolution.",
        "thinkingmachines/Inkling-Small",
        "LLM agents learn by interacting with environments, yet these environments are hand-built",
        "ed co-evolution of the policy and its environment.",
        # 2026-08-21T02:30:55 UTC is 22:30 on 20 Aug in New York: the previous list day.
        (date(2026, 8, 20), 0),
        id="Generated-by-Inkling",
    ),
]


@pytest.mark.parametrize(
    ("day", "arxiv_id", "summary", "model", "abstract_start", "abstract_end", "listing"), VARIANTS
)
def test_content_text_variant_is_split(
    day: str,
    arxiv_id: str,
    summary: str | None,
    model: str | None,
    abstract_start: str,
    abstract_end: str,
    listing: tuple[date, int],
) -> None:
    record = _records(_feed(day))[arxiv_id]
    assert record.ai_summary == summary
    assert record.ai_summary_model == model
    assert record.abstract is not None
    assert record.abstract.startswith(abstract_start)
    assert record.abstract.endswith(abstract_end)
    for leftover in ("AI-generated summary", "Generated by", "\t"):
        assert leftover not in record.abstract
    assert _listing(record) == listing


def test_every_item_of_the_mixed_snapshots_is_split_cleanly() -> None:
    starting_with_abstract = set()
    for day in ("2025-11-20", "2026-04-01", "2026-05-20", "2026-07-13", "2026-08-22"):
        for record in _records(_feed(day)).values():
            for text in (record.abstract, record.ai_summary):
                assert text is None or "AI-generated summary" not in text
                assert text is None or not text.startswith(("Generated by", "AI-generated"))
                if text is not None and text.startswith("Abstract"):
                    starting_with_abstract.add(record.arxiv_id)
    assert starting_with_abstract == {"2605.14842"}  # its summary: "Abstract image editing ..."


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        (None, ContentParts(None, None, None)),
        ("", ContentParts(None, None, None)),
        (" \n\t ", ContentParts(None, None, None)),
        ("Abstract", ContentParts(None, None, None)),
        ("A plain  abstract.\n", ContentParts("A plain abstract.", None, None)),
        (
            "Abstract reasoning is hard. We test it.",  # an abstract, not a heading
            ContentParts("Abstract reasoning is hard. We test it.", None, None),
        ),
        ("Abstract  We test it.", ContentParts("We test it.", None, None)),
        (
            "Abstract S.  Generated by org/model-1.5 The abstract.",
            ContentParts("The abstract.", "S.", "org/model-1.5"),
        ),
        (
            "Abstract   Generated by org/model The abstract.",
            ContentParts("The abstract.", None, "org/model"),
        ),
        ("Abstract S.  Generated by org/model", ContentParts(None, "S.", "org/model")),
        (
            "Abstract S.  Generated by org/m The images were Generated by diffusion.",
            ContentParts("The images were Generated by diffusion.", "S.", "org/m"),
        ),
        (
            "Abstract  Images generated by GANs. Generated by hand, they differ.",
            ContentParts("Images generated by GANs. Generated by hand, they differ.", None, None),
        ),
        ("S.  AI-generated summary A.", ContentParts("A.", "S.", None)),
        (
            "Abstract Abstract art.  AI-generated summary A.",
            ContentParts("A.", "Abstract art.", None),
        ),
        ("Abstract  AI-generated summary A.", ContentParts("A.", None, None)),
    ],
)
def test_split_content_shapes(text: str | None, parts: ContentParts) -> None:
    assert split_content(text) == parts


# --- derived timeline (JSON lines) -------------------------------------------------------------


def test_timeline_lines() -> None:
    items = _parse(TIMELINE)
    assert len(items) == 8
    error = items[1]
    assert isinstance(error, RecordError)
    assert error.position == f"{TIMELINE}:2"
    assert "'1' is not an arXiv id" in error.reason
    records = {item.arxiv_id: item for item in items if isinstance(item, PaperRecord)}
    assert list(records) == [
        "2502.01341",
        "2503.19846",
        "2509.25541",
        "2603.02398",
        "2605.14842",
        "2605.29707",
        "2608.19880",
    ]
    first = records["2502.01341"]
    assert first.position == f"{TIMELINE}:1 (2502.01341)"
    assert _listing(first) == (date(2025, 2, 4), 0)  # best_rank 1
    assert _listing(records["2503.19846"]) == (date(2025, 3, 27), 10)  # best_rank 11
    assert records["2503.19846"].abstract is None  # content_text null
    assert _listing(records["2509.25541"]) == (date(2025, 9, 30), 0)  # 2025-10-01T02:25:06 UTC
    assert _listing(records["2608.19880"]) == (date(2026, 8, 20), 0)
    assert records["2608.19880"].ai_summary_model == "thinkingmachines/Inkling-Small"
    assert records["2605.29707"].ai_summary_model == "Qwen/Qwen2.5-Coder-32B-Instruct"
    assert records["2603.02398"].ai_summary is None
    assert records["2603.02398"].abstract is not None
    assert records["2603.02398"].abstract.startswith("An open-source C++ framework for discovering")
    assert records["2605.14842"].ai_summary is not None
    assert records["2605.14842"].ai_summary.startswith("Abstract image editing benchmark")


def test_timeline_and_snapshot_agree_on_a_paper() -> None:
    from_timeline = {r.arxiv_id: r for r in _parse(TIMELINE) if isinstance(r, PaperRecord)}
    from_feed = _records(_feed("2026-08-22"))["2608.19880"]
    timeline = from_timeline["2608.19880"]
    assert (timeline.title, timeline.abstract, timeline.ai_summary) == (
        from_feed.title,
        from_feed.abstract,
        from_feed.ai_summary,
    )


# --- malformed input ---------------------------------------------------------------------------


def _real_items(day: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = orjson.loads(_feed(day).read_bytes())["items"]
    return items


def test_malformed_items_are_errors_with_positions_and_the_rest_parse(tmp_path: Path) -> None:
    good = _real_items("2025-02-04")
    broken_date = {**good[2], "date_published": "yesterday"}
    feed = {
        "version": "https://jsonfeed.org/version/1",
        "title": "Hugging Face Papers",
        "items": [good[0], {"title": "no id"}, {"id": "https://huggingface.co/papers/x1"}, 42,
                  broken_date, good[1]],
    }  # fmt: skip
    path = tmp_path / "hf_papers.json"
    path.write_bytes(orjson.dumps(feed))
    assert hf_jsonfeed.sniff(read_head(path))
    items = _parse(path)
    errors = {item.position: item.reason for item in items if isinstance(item, RecordError)}
    assert errors == {
        f"{path} item 1": "no paper id",
        f"{path} item 2": errors[f"{path} item 2"],
        f"{path} item 3": "expected a JSON object, found int",
        f"{path} item 4 (2502.01639)": errors[f"{path} item 4 (2502.01639)"],
    }
    assert "is not an arXiv id" in errors[f"{path} item 2"]
    assert "'yesterday'" in errors[f"{path} item 4 (2502.01639)"]
    records = [item for item in items if isinstance(item, PaperRecord)]
    assert [(r.arxiv_id, _listing(r)) for r in records] == [
        ("2502.01341", (date(2025, 2, 4), 0)),
        ("2502.00698", (date(2025, 2, 4), 5)),
    ]


def test_truncated_feed_keeps_the_items_before_the_cut(tmp_path: Path) -> None:
    data = _feed("2025-02-04").read_bytes()
    cut = data.index(b'"id": "https://huggingface.co/papers/2502.01584"') + 30  # inside item 5
    path = tmp_path / "hf_papers.json"
    path.write_bytes(data[:cut])
    items = _parse(path)
    assert [item.arxiv_id for item in items if isinstance(item, PaperRecord)] == [
        "2502.01341",
        "2502.00698",
        "2502.01639",
        "2502.01237",
        "2502.01208",
    ]
    error = items[-1]
    assert isinstance(error, RecordError)
    assert error.position == f"{path} item 5"
    assert "truncated or invalid JSON" in error.reason


def test_truncated_gzip_feed_reports_the_cut(tmp_path: Path) -> None:
    packed = gzip.compress(_feed("2025-02-04").read_bytes())
    path = tmp_path / "hf_papers.json.gz"
    path.write_bytes(packed[: len(packed) // 2])
    items = _parse(path)
    records = [item for item in items if isinstance(item, PaperRecord)]
    assert 3 <= len(records) < 21
    assert records[0].arxiv_id == "2502.01341"
    assert isinstance(items[-1], RecordError)
    assert items[-1].position == f"{path} item {len(records)}"


def test_feed_without_items_array_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "hf_papers.json"
    path.write_bytes(
        b'{"version": "https://jsonfeed.org/version/1", "title": "Hugging Face Papers"}'
    )
    assert [str(item) for item in _parse(path)] == [f"{path}: no 'items' array at the top level"]


def test_malformed_timeline_lines(tmp_path: Path) -> None:
    lines = TIMELINE.read_bytes().splitlines()
    first = orjson.loads(lines[0])
    path = tmp_path / "timeline.jsonl"
    path.write_bytes(
        b"\n".join(
            [
                lines[0],
                b"",  # blank: skipped
                b'{"arxiv_id": "2502.01341", "date_published": "2025-02-04T15:5',  # truncated
                b"[1, 2]",
                orjson.dumps({**first, "best_rank": "first"}),
                orjson.dumps({**first, "arxiv_id": None, "id": None}),
                lines[3],
            ]
        )
    )
    items = _parse(path)
    errors = [(item.position, item.reason) for item in items if isinstance(item, RecordError)]
    assert [position for position, _ in errors] == [f"{path}:{n}" for n in (3, 4, 5, 6)]
    assert errors[0][1].startswith("not valid JSON")
    assert errors[1][1] == "expected a JSON object, found list"
    assert errors[2][1] == "best_rank 'first' is not a rank (1 = first)"
    assert errors[3][1] == "no paper id"
    assert [item.arxiv_id for item in items if isinstance(item, PaperRecord)] == [
        "2502.01341",
        "2509.25541",
    ]


# --- the bundled demo data set -----------------------------------------------------------------


def test_demo_data_set_parses_completely() -> None:
    items = list(hf_jsonfeed.parse(DEMO_PATH, NEW_YORK))
    errors = [item for item in items if isinstance(item, RecordError)]
    assert errors == []
    records = [item for item in items if isinstance(item, PaperRecord)]
    assert len(records) == 11_021
    assert len({r.arxiv_id for r in records}) == len(records)
    days: dict[date, list[int | None]] = {}
    for record in records:
        assert record.listing is not None
        days.setdefault(record.listing.day, []).append(record.listing.position)
    # 562 snapshot days (UTC, weekends included) hold 492 New York list days
    assert len(days) == 492
    assert min(days) == date(2025, 2, 3) and max(days) == date(2026, 8, 21)
    assert all(positions == list(range(len(positions))) for positions in days.values())
    assert sum(r.ai_summary is not None for r in records) > 4_000
    assert sum(r.abstract is not None for r in records) > 10_500
    models = {r.ai_summary_model for r in records}
    assert models == {None, "Qwen/Qwen2.5-Coder-32B-Instruct", "thinkingmachines/Inkling-Small"}
