"""rss.arxiv.org listing feeds, RSS 2.0 and Atom flavours (constructed fixtures, see README)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from papertide.catalog.records import Author, PaperRecord, RecordError
from papertide.errors import InvalidInput
from papertide.ingest import arxiv_atom, arxiv_rss, oai_pmh
from papertide.ingest.files import read_head
from papertide.ingest.polite_http import FetchError, build_client

RSS = Path(__file__).parent / "fixtures" / "rss"
TZ = ZoneInfo("America/New_York")
USER_AGENT = "Papertide-test/1.0 (mailto:ops@example.org)"
ANNOUNCE_TYPES = {
    "2509.99901": "new",
    "2509.99902": "new",
    "2509.99903": "cross",
    "2505.99904": "replace",
    "2408.99905": "replace-cross",
}


def feed(name: str) -> tuple[list[PaperRecord], arxiv_rss.FeedInfo]:
    items, info = arxiv_rss.parse_feed((RSS / name).read_bytes(), name)
    assert all(isinstance(item, PaperRecord) for item in items), items
    return [item for item in items if isinstance(item, PaperRecord)], info


def test_rss_items_become_records() -> None:
    records, _ = feed("cs.CL.rss.xml")
    assert [(r.arxiv_id, r.version) for r in records] == [
        ("2509.99901", 1),
        ("2509.99902", 1),
        ("2509.99903", 1),
        ("2505.99904", 2),
        ("2408.99905", 3),
    ]
    first = records[0]
    assert first.source == "arxiv-rss"
    assert first.position == "cs.CL.rss.xml item 1 (2509.99901)"
    assert first.title == "Constructed Example: Byte-Level Language Models Without Tokenizers"
    assert first.abstract == (
        "We study byte-level language models that read raw UTF-8 & need no tokenizer. "
        "They match subword baselines on three benchmarks."
    )
    assert first.authors == [
        Author("Ada Example", "Example University"),
        Author("Bo Sample", "Institute of Examples, Example City"),
        Author("Chen Placeholder"),
    ]
    assert first.categories == ["cs.CL", "cs.LG"] and first.primary_category == "cs.CL"
    assert first.license == "http://creativecommons.org/licenses/by/4.0/"
    assert first.published_at is None and first.updated_at is None and first.listing is None
    assert first.comments is None


def test_cross_lists_keep_their_own_primary_category() -> None:
    records, _ = feed("cs.CL.rss.xml")
    cross = records[2]
    assert cross.categories == ["cs.LG", "cs.CL", "cs.AI"]
    assert cross.primary_category == "cs.LG"


def test_replacements_carry_doi_and_journal_reference() -> None:
    records, _ = feed("cs.CL.rss.xml")
    replaced = records[3]
    assert replaced.doi == "10.0000/constructed.2025.4"
    assert replaced.journal_ref == "Journal of Constructed Examples 1 (2025) 1-10"
    assert replaced.authors == [Author("Gus Placeholder"), Author("Hana Example", "Example Lab")]
    assert records[1].authors == [Author("Dana Sample Jr"), Author("Eli Example")]


def test_announce_types_and_listing_day_come_back_separately() -> None:
    _, info = feed("cs.CL.rss.xml")
    assert info.title == "cs.CL updates on arXiv.org"
    assert info.announce_types == ANNOUNCE_TYPES
    assert info.announced_at == datetime(2025, 9, 22, 4, 0, tzinfo=UTC)
    assert info.announced_at.astimezone(TZ).date() == date(2025, 9, 22)


def test_atom_flavour_gives_the_same_records_and_info() -> None:
    rss_records, rss_info = feed("cs.CL.rss.xml")
    atom_records, atom_info = feed("cs.CL.atom.xml")
    assert [replace(r, position="") for r in atom_records] == [
        replace(r, position="") for r in rss_records
    ]
    assert atom_records[0].position == "cs.CL.atom.xml entry 1 (2509.99901)"
    assert atom_info.announce_types == rss_info.announce_types
    assert atom_info.announced_at == rss_info.announced_at


def test_atom_entry_without_dc_creator_uses_author_names() -> None:
    xml = (RSS / "cs.CL.atom.xml").read_text()
    xml = xml.replace(
        "<dc:creator>Fay Example</dc:creator>",
        "<author><name>Fay Example</name></author><author><name>Gil Sample</name></author>",
    )
    items, _ = arxiv_rss.parse_feed(xml.encode(), "feed")
    cross = items[2]
    assert isinstance(cross, PaperRecord)
    assert cross.authors == [Author("Fay Example"), Author("Gil Sample")]


def test_broken_items_are_errors_and_the_rest_parse() -> None:
    items, info = arxiv_rss.parse_feed((RSS / "broken.rss.xml").read_bytes(), "broken")
    good, missing, described, odd_date = items
    assert isinstance(good, PaperRecord) and good.arxiv_id == "2509.99911"
    assert missing == RecordError(
        "broken item 2",
        "no arXiv id in guid, description or link (found 'oai:arXiv.org:not-an-id')",
    )
    assert isinstance(described, PaperRecord)
    assert (described.arxiv_id, described.version) == ("2509.99913", 2)
    assert described.abstract == "Found by its description."
    assert isinstance(odd_date, PaperRecord) and odd_date.arxiv_id == "2509.99914"
    assert info.announce_types == {
        "2509.99911": "new",
        "2509.99913": "replace",
        "2509.99914": "cross",
    }
    assert info.announced_at == datetime(2025, 9, 23, 4, 0, tzinfo=UTC)


def test_parse_reads_files_and_reports_feed_errors() -> None:
    records = list(arxiv_rss.parse(RSS / "cs.CL.rss.xml", TZ))
    assert len(records) == 5 and all(isinstance(r, PaperRecord) for r in records)
    [error] = list(arxiv_rss.parse(RSS / "feed-error.rss.xml", TZ))
    assert error == RecordError(
        str(RSS / "feed-error.rss.xml"),
        "arXiv feed error: Bad subject class 'XX'. Valid subject classes for the archive 'cs' are: "
        "cs.AI, cs.AR, cs.CC, cs.CE, cs.CL.",
    )


def test_weekend_feed_without_items_is_empty() -> None:
    xml = (RSS / "feed-error.rss.xml").read_text()
    xml = xml.replace(
        "Feed error for query: https://rss.arxiv.org/rss/cs.XX", "cs.CL updates on arXiv.org"
    )
    items, info = arxiv_rss.parse_feed(xml.encode(), "weekend")
    assert items == [] and info.announce_types == {}


def test_malformed_xml_is_one_error(tmp_path: Path) -> None:
    cut = tmp_path / "cut.xml"
    cut.write_bytes((RSS / "cs.CL.rss.xml").read_bytes()[:3000])
    [error] = list(arxiv_rss.parse(cut, TZ))
    assert isinstance(error, RecordError) and error.reason.startswith("not well-formed XML")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cs.CL.rss.xml", True),
        ("cs.CL.atom.xml", True),
        ("broken.rss.xml", True),
        ("../atom/deep dream-0.atom", False),
        ("../oai/listrecords-arxiv-2015-01-01.xml", False),
    ],
)
def test_sniff(name: str, expected: bool) -> None:
    assert arxiv_rss.sniff(read_head(RSS / name)) is expected


def test_sniff_rejects_json_and_other_rss() -> None:
    assert not arxiv_rss.sniff(json.dumps({"rss": "rss.arxiv.org"}).encode())
    hugging_face = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
        b'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Hugging Face Papers</title>'
        b"<item><link>https://huggingface.co/papers/2608.19880</link></item>"
    )
    assert not arxiv_rss.sniff(hugging_face)


def test_the_listing_feeds_belong_to_this_format_only() -> None:
    for name in ("cs.CL.rss.xml", "cs.CL.atom.xml"):
        head = read_head(RSS / name)
        assert not arxiv_atom.sniff(head) and not oai_pmh.sniff(head)


# --- the live fetcher, replayed ----------------------------------------------------------------


def test_listing_url_joins_categories() -> None:
    assert arxiv_rss.listing_url(["cs.CL", "cs.LG"]) == "https://rss.arxiv.org/rss/cs.CL+cs.LG"
    assert (
        arxiv_rss.listing_url(["math"], "https://rss.arxiv.org/atom")
        == "https://rss.arxiv.org/atom/math"
    )
    with pytest.raises(InvalidInput):
        arxiv_rss.listing_url([])


def test_fetch_listing_retries_then_parses() -> None:
    sleeps: list[float] = []
    requests: list[httpx.Request] = []
    answers = [
        httpx.Response(503, headers={"Retry-After": "5"}, text="busy"),
        httpx.Response(200, content=(RSS / "cs.CL.rss.xml").read_bytes()),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return answers.pop(0)

    client = build_client(USER_AGENT, transport=httpx.MockTransport(handler))
    items, info = arxiv_rss.fetch_listing(client, ["cs.CL", "cs.LG"], sleep=sleeps.append)
    assert [str(r.url) for r in requests] == ["https://rss.arxiv.org/rss/cs.CL+cs.LG"] * 2
    assert requests[0].headers["User-Agent"] == USER_AGENT
    assert sleeps == [5.0]
    assert len(items) == 5 and info.announce_types == ANNOUNCE_TYPES


def test_fetch_listing_reports_a_feed_error() -> None:
    body = (RSS / "feed-error.rss.xml").read_bytes()
    client = build_client(
        USER_AGENT, transport=httpx.MockTransport(lambda _: httpx.Response(200, content=body))
    )
    with pytest.raises(FetchError, match=r"rss/cs.XX: arXiv feed error: Bad subject class 'XX'"):
        arxiv_rss.fetch_listing(client, ["cs.XX"], sleep=lambda _: None)
