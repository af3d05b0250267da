"""OAI-PMH ListRecords (metadataPrefix=arXiv): recorded arXiv responses and a replayed harvest."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from papertide.catalog.records import Author, PaperRecord, RecordError
from papertide.ingest import arxiv_atom, arxiv_rss, oai_pmh
from papertide.ingest.files import read_head
from papertide.ingest.polite_http import FetchError, build_client, retry_after_seconds

OAI = Path(__file__).parent / "fixtures" / "oai"
RECORDING = OAI / "oaipmh-listrecords---should-list-identifiers-from-arxiv.json"
LIST_RECORDS = OAI / "listrecords-arxiv-2015-01-01.xml"
BASE_URL = "http://export.arxiv.org/oai2"
TZ = ZoneInfo("America/New_York")
USER_AGENT = "Papertide-test/1.0 (mailto:ops@example.org)"


def body() -> str:
    return LIST_RECORDS.read_text()


def with_token(xml: str, token_element: str) -> str:
    """The recorded page with a resumptionToken element added at the end of ListRecords."""
    return xml.replace("</ListRecords>", f"{token_element}\n</ListRecords>")


def oai_error(code: str, message: str) -> str:
    """An OAI-PMH error response (protocol section 3.6), in arXiv's envelope."""
    head = body().split("<ListRecords>")[0]
    return f'{head}<error code="{code}">{message}</error>\n</OAI-PMH>\n'


# --- parsing recorded responses ----------------------------------------------------------------


def test_recorded_list_records_page() -> None:
    page = oai_pmh.parse_list_records(LIST_RECORDS.read_bytes(), "page")
    assert (page.resumption_token, page.complete_list_size, page.cursor, page.deleted) == (
        None,
        None,
        None,
        0,
    )
    first, second = page.records
    assert isinstance(first, PaperRecord) and isinstance(second, PaperRecord)
    assert page.response_date == datetime(2018, 6, 21, 14, 31, 4, tzinfo=UTC)
    assert first.arxiv_id == "1412.8544"
    assert first.source == "oai-pmh"
    assert first.position == "page record 1 (1412.8544)"
    assert first.title == "A Kochen-Specker system has at least 22 vectors (extended abstract)"
    assert first.authors == [
        Author("Sander Uijlen", "Radboud Universiteit"),
        Author("Bas Westerbaan", "Radboud Universiteit"),
    ]
    assert first.categories == ["cs.DM"] and first.primary_category == "cs.DM"
    assert first.comments == "In Proceedings QPL 2014, arXiv:1412.8102"
    assert first.journal_ref == "EPTCS 172, 2014, pp. 154-164"
    assert first.doi == "10.4204/EPTCS.172.11"
    assert first.license == "http://arxiv.org/licenses/nonexclusive-distrib/1.0/"
    assert first.published_at == datetime(2014, 12, 29, tzinfo=UTC)
    assert first.updated_at is None  # the record has no <updated>
    assert first.version is None and first.versions == []
    assert first.abstract is not None
    assert first.abstract.startswith("At the heart of the Conway-Kochen Free Will theorem")
    assert "\n" not in first.abstract
    assert second.arxiv_id == "hep-th/9504118"
    assert second.authors == [Author("M. Requardt")]
    assert second.report_no == "GOET-TP 101/95"
    assert second.comments == "21 pages, Latex"
    assert second.published_at == datetime(1995, 4, 24, tzinfo=UTC)
    assert second.abstract is not None and 'the "strength" of the bonds' in second.abstract


def test_get_record_response_parses_too() -> None:
    [record] = list(oai_pmh.parse(OAI / "getrecord-1412.8544.xml", TZ))
    assert isinstance(record, PaperRecord)
    assert record.arxiv_id == "1412.8544"
    assert record.position == f"{OAI / 'getrecord-1412.8544.xml'} record 1 (1412.8544)"


def test_updated_date_suffix_and_several_affiliations() -> None:
    xml = body().replace(
        "<created>1995-04-24</created>",
        "<created>1995-04-24</created><updated>1995-05-02</updated>",
    )
    xml = xml.replace(
        "<forenames>M.</forenames>",
        "<forenames>M.</forenames><suffix>Jr</suffix>"
        "<affiliation>Göttingen</affiliation><affiliation>Example Institute</affiliation>",
    )
    second = oai_pmh.parse_list_records(xml.encode(), "page").records[1]
    assert isinstance(second, PaperRecord)
    assert second.updated_at == datetime(1995, 5, 2, tzinfo=UTC)
    assert second.authors == [Author("M. Requardt Jr", "Göttingen; Example Institute")]


def test_resumption_token_and_its_attributes() -> None:
    xml = with_token(
        body(), '<resumptionToken cursor="0" completeListSize="3">6321|1001</resumptionToken>'
    )
    page = oai_pmh.parse_list_records(xml.encode(), "page")
    assert (page.resumption_token, page.complete_list_size, page.cursor) == ("6321|1001", 3, 0)
    last = with_token(body(), '<resumptionToken cursor="2" completeListSize="3"/>')
    assert oai_pmh.parse_list_records(last.encode(), "page").resumption_token is None


def test_deleted_records_are_skipped_and_counted() -> None:
    deleted = (
        '<record>\n<header status="deleted">\n <identifier>oai:arXiv.org:1412.0001</identifier>\n'
        " <datestamp>2015-01-02</datestamp>\n</header>\n</record>\n"
    )
    xml = body().replace("<ListRecords>\n", "<ListRecords>\n" + deleted)
    page = oai_pmh.parse_list_records(xml.encode(), "page")
    assert page.deleted == 1
    assert [r.arxiv_id for r in page.records if isinstance(r, PaperRecord)] == [
        "1412.8544",
        "hep-th/9504118",
    ]


def test_a_broken_record_is_an_error_and_the_rest_parse() -> None:
    xml = body().replace("<created>2014-12-29</created>", "<created>29/12/2014</created>")
    first, second = oai_pmh.parse_list_records(xml.encode(), "page").records
    assert first == RecordError("page record 1 (1412.8544)", "unreadable date '29/12/2014'")
    assert isinstance(second, PaperRecord)


def test_a_record_in_another_metadata_format_is_an_error() -> None:
    xml = body().replace(
        'xmlns="http://arxiv.org/OAI/arXiv/"', 'xmlns="http://example.org/other/"', 1
    )
    first, second = oai_pmh.parse_list_records(xml.encode(), "page").records
    assert first == RecordError(
        "page record 1 (oai:arXiv.org:1412.8544)", "no arXiv metadata (metadataPrefix=arXiv?)"
    )
    assert isinstance(second, PaperRecord)


def test_no_records_match_is_an_empty_result() -> None:
    xml = oai_error("noRecordsMatch", "No records match the request")
    page = oai_pmh.parse_list_records(xml.encode(), "page")
    assert page.records == [] and page.resumption_token is None


def test_bad_resumption_token_raises_a_clear_error() -> None:
    xml = oai_error(
        "badResumptionToken", "The value of the resumptionToken argument is invalid or expired."
    )
    with pytest.raises(oai_pmh.OaiError) as caught:
        oai_pmh.parse_list_records(xml.encode(), "page")
    assert caught.value.oai_code == "badResumptionToken"
    assert str(caught.value) == (
        "OAI-PMH error badResumptionToken: "
        "The value of the resumptionToken argument is invalid or expired."
    )


def test_files_that_cannot_be_read_are_one_error_each(tmp_path: Path) -> None:
    [identifiers] = list(oai_pmh.parse(OAI / "listidentifiers-arxiv-2009-01-01.xml", TZ))
    assert isinstance(identifiers, RecordError)
    assert "not a ListRecords or GetRecord response" in identifiers.reason
    html = tmp_path / "busy.xml"
    html.write_text(json.loads(RECORDING.read_text())[0]["response"])
    [busy] = list(oai_pmh.parse(html, TZ))
    assert isinstance(busy, RecordError) and "not an OAI-PMH 2.0 response" in busy.reason
    error = tmp_path / "error.xml"
    error.write_text(oai_error("badArgument", "Illegal argument"))
    assert list(oai_pmh.parse(error, TZ)) == [
        RecordError(str(error), "OAI-PMH error badArgument: Illegal argument")
    ]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (LIST_RECORDS, True),
        (OAI / "getrecord-1412.8544.xml", True),
        (OAI.parent / "atom" / "deep dream-0.atom", False),
        (OAI.parent / "rss" / "cs.CL.rss.xml", False),
        (OAI.parent / "rss" / "cs.CL.atom.xml", False),
        (RECORDING, False),  # JSON
    ],
)
def test_sniff(path: Path, expected: bool) -> None:
    assert oai_pmh.sniff(read_head(path)) is expected


def test_the_oai_page_belongs_to_this_format_only() -> None:
    head = read_head(LIST_RECORDS)
    assert not arxiv_atom.sniff(head) and not arxiv_rss.sniff(head)


# --- the live fetcher, replayed ----------------------------------------------------------------


class Exchange:
    """Replays (expected query, response) pairs; records the requests and the fake sleeps."""

    def __init__(
        self, steps: list[tuple[dict[str, str] | None, httpx.Response | Exception]]
    ) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        expected, answer = self.steps.pop(0)
        if expected is not None:
            assert dict(request.url.params) == expected
        if isinstance(answer, Exception):
            raise answer
        return answer

    def client(self) -> httpx.Client:
        return build_client(USER_AGENT, transport=httpx.MockTransport(self.handler))


def recorded_steps() -> list[tuple[dict[str, str] | None, httpx.Response | Exception]]:
    """The nock recording as replay steps: the recorded query, status, headers and body."""
    steps: list[tuple[dict[str, str] | None, httpx.Response | Exception]] = []
    for entry in json.loads(RECORDING.read_text()):
        raw: list[str] = entry["rawHeaders"]
        headers = [(name, value) for name, value in zip(raw[::2], raw[1::2], strict=True)]
        headers = [
            (n, v) for n, v in headers if n.lower() not in {"transfer-encoding", "content-length"}
        ]
        query = dict(parse_qsl(urlsplit(entry["path"]).query))
        steps.append(
            (query, httpx.Response(entry["status"], headers=headers, text=entry["response"]))
        )
    return steps


def xml_response(xml: str) -> httpx.Response:
    return httpx.Response(200, text=xml, headers={"Content-Type": "text/xml"})


def harvest(exchange: Exchange, **options: Any) -> list[oai_pmh.ListRecordsPage]:
    return list(
        oai_pmh.fetch_list_records(exchange.client(), BASE_URL, sleep=exchange.sleep, **options)
    )


def test_recorded_503_with_retry_after_then_200() -> None:
    exchange = Exchange(recorded_steps())
    [page] = harvest(exchange, from_date=date(2015, 1, 1), until_date=date(2015, 1, 3))
    assert exchange.sleeps == [10.0]
    assert len(exchange.requests) == 2 and exchange.steps == []
    assert all(r.headers["User-Agent"] == USER_AGENT for r in exchange.requests)
    assert [r.arxiv_id for r in page.records if isinstance(r, PaperRecord)] == [
        "1412.8544",
        "hep-th/9504118",
    ]
    assert page.resumption_token is None


def test_two_pages_follow_the_resumption_token() -> None:
    first = with_token(
        body(), '<resumptionToken cursor="0" completeListSize="4">6321|1001</resumptionToken>'
    )
    second = with_token(
        body(), '<resumptionToken cursor="2" completeListSize="4"></resumptionToken>'
    )
    exchange = Exchange(
        [
            ({"verb": "ListRecords", "metadataPrefix": "arXiv", "set": "cs"}, xml_response(first)),
            ({"verb": "ListRecords", "resumptionToken": "6321|1001"}, xml_response(second)),
        ]
    )
    pages = harvest(exchange, set_spec="cs")
    assert [p.resumption_token for p in pages] == ["6321|1001", None]
    assert [p.cursor for p in pages] == [0, 2]
    assert exchange.sleeps == [3.0]
    assert all(seconds >= 3.0 for seconds in exchange.sleeps)


def test_a_repeated_resumption_token_stops_the_harvest() -> None:
    looping = with_token(body(), "<resumptionToken>6321|1001</resumptionToken>")
    exchange = Exchange([(None, xml_response(looping)), (None, xml_response(looping))])
    with pytest.raises(FetchError, match=re.escape("sent resumption token '6321|1001' twice")):
        harvest(exchange)
    assert len(exchange.requests) == 2


def test_a_killed_harvest_resumes_from_the_stored_token() -> None:
    exchange = Exchange(
        [({"verb": "ListRecords", "resumptionToken": "6321|1001"}, xml_response(body()))]
    )
    [page] = harvest(exchange, resumption_token="6321|1001", from_date=date(2015, 1, 1))
    assert len(page.records) == 2
    assert exchange.sleeps == []


def test_connection_errors_back_off_exponentially() -> None:
    exchange = Exchange(
        [
            (None, httpx.ConnectError("connection refused")),
            (None, httpx.ConnectError("connection refused")),
            (None, httpx.Response(502, text="Bad Gateway")),
            (None, xml_response(body())),
        ]
    )
    [page] = harvest(exchange)
    assert exchange.sleeps == [3.0, 6.0, 12.0]
    assert len(page.records) == 2


def test_retries_run_out_with_a_clear_error() -> None:
    exchange = Exchange([(None, httpx.Response(503, text="down"))] * 3)
    with pytest.raises(
        FetchError, match=r"GET http://export.arxiv.org/oai2 failed 3 times; last: HTTP 503"
    ):
        harvest(exchange, max_retries=2)


def test_a_very_long_retry_after_is_not_waited_out() -> None:
    exchange = Exchange([(None, httpx.Response(503, headers={"Retry-After": "86400"}))])
    with pytest.raises(FetchError, match="asks to wait 86400 s"):
        harvest(exchange)
    assert exchange.sleeps == []


def test_bad_resumption_token_from_the_server_stops_the_harvest() -> None:
    exchange = Exchange([(None, xml_response(oai_error("badResumptionToken", "expired")))])
    with pytest.raises(oai_pmh.OaiError, match="badResumptionToken"):
        harvest(exchange, resumption_token="stale")


def test_no_records_match_ends_the_harvest_quietly() -> None:
    exchange = Exchange([(None, xml_response(oai_error("noRecordsMatch", "nothing")))])
    assert [p.records for p in harvest(exchange, from_date=date(2030, 1, 1))] == [[]]


def test_retry_after_as_http_date() -> None:
    now = datetime(2018, 6, 21, 14, 30, 51, tzinfo=UTC)
    assert retry_after_seconds("Thu, 21 Jun 2018 14:31:01 GMT", now) == 10.0
    assert retry_after_seconds("Thu, 21 Jun 2018 14:00:00 GMT", now) == 0.0
    assert retry_after_seconds("10") == 10.0
    assert retry_after_seconds("soon") is None
