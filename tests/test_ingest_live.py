"""Live fetches wired to the catalog: pages committed with their cursor, resumable harvests.

arXiv is replayed from recorded responses through httpx.MockTransport; the database is real.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from factories import fixture_path, rows
from sqlalchemy import Engine

from papertide.config import Settings
from papertide.ingest.live import LiveFetch, load_cursor

OAI_PAGE = fixture_path("oai", "listrecords-arxiv-2015-01-01.xml").read_text()
PAGE_ONE = OAI_PAGE.replace(
    "</ListRecords>",
    '<resumptionToken cursor="0" completeListSize="4">tok|1</resumptionToken></ListRecords>',
)
PAGE_TWO = (
    OAI_PAGE.replace("1412.8544", "1412.8545")
    .replace("hep-th/9504118", "hep-th/9504119")
    .replace("</ListRecords>", '<resumptionToken cursor="2" completeListSize="4"/></ListRecords>')
)


class Replay:
    """Answers requests from a script; records what was asked and every sleep."""

    def __init__(self, answer: Callable[[dict[str, str]], httpx.Response]) -> None:
        self.answer = answer
        self.requests: list[dict[str, str]] = []
        self.user_agents: list[str] = []
        self.sleeps: list[float] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        params = dict(parse_qsl(urlsplit(str(request.url)).query))
        self.requests.append(params)
        self.user_agents.append(request.headers["user-agent"])
        return self.answer(params)

    def live(self, engine: Engine, settings: Settings) -> LiveFetch:
        return LiveFetch(
            engine, settings, transport=httpx.MockTransport(self.handler), sleep=self.sleeps.append
        )


def xml(text: str) -> httpx.Response:
    return httpx.Response(200, text=text, headers={"content-type": "text/xml"})


def test_killed_oai_harvest_resumes_from_the_committed_page(
    engine: Engine, settings: Settings
) -> None:
    def dies_on_page_two(params: dict[str, str]) -> httpx.Response:
        if "resumptionToken" in params:
            raise KeyboardInterrupt  # the operator's Ctrl-C, or a kill, mid-harvest
        return xml(PAGE_ONE)

    first = Replay(dies_on_page_two)
    with pytest.raises(KeyboardInterrupt):
        first.live(engine, settings).harvest_oai("cs", None, None)
    assert rows(engine, "SELECT count(*) FROM papers")[0][0] == 2
    with engine.connect() as connection:
        token, _ = load_cursor(connection, f"oai-pmh {settings.arxiv_oai_url} set=cs")
    assert token == "tok|1"

    second = Replay(lambda params: xml(PAGE_TWO))
    report = second.live(engine, settings).harvest_oai("cs", None, None)
    assert second.requests == [{"verb": "ListRecords", "resumptionToken": "tok|1"}]
    assert report.totals.new == 2 and report.exit_code == 0
    ids = sorted(r[0] for r in rows(engine, "SELECT arxiv_id FROM papers"))
    assert ids == ["1412.8544", "1412.8545", "hep-th/9504118", "hep-th/9504119"]
    with engine.connect() as connection:
        token, details = load_cursor(connection, f"oai-pmh {settings.arxiv_oai_url} set=cs")
    assert token is None and details["next_from"]
    assert all(agent == settings.http_user_agent for agent in first.user_agents)


def test_recorded_503_retry_after_is_honoured(engine: Engine, settings: Settings) -> None:
    answers = iter(
        [
            httpx.Response(503, text="Retry after 10 seconds", headers={"Retry-After": "10"}),
            xml(OAI_PAGE),
        ]
    )
    replay = Replay(lambda params: next(answers))
    report = replay.live(engine, settings).harvest_oai(None, None, None)
    assert report.totals.new == 2
    assert 10 in replay.sleeps


def test_arxiv_query_pages_are_spaced_and_ingested(engine: Engine, settings: Settings) -> None:
    pages = [fixture_path("atom", f"deep dream-{n}.atom").read_text() for n in range(3)]

    def answer(params: dict[str, str]) -> httpx.Response:
        return xml(pages[min(int(params["start"]) // 10, 2)])

    replay = Replay(answer)
    report = replay.live(engine, settings).query_arxiv("all:deep dream", max_results=30)
    assert [r["start"] for r in replay.requests] == ["0", "10", "20"]
    assert all(s >= 3.0 for s in replay.sleeps) and len(replay.sleeps) >= 2
    assert report.totals.new == rows(engine, "SELECT count(*) FROM papers")[0][0] > 0


def test_rss_new_announcements_join_the_list_when_followed(
    engine: Engine, settings: Settings
) -> None:
    feed = fixture_path("rss", "cs.CL.rss.xml").read_text()
    replay = Replay(lambda params: xml(feed))
    followed = settings.replace(auto_follow_categories="cs.CL")
    report = replay.live(engine, followed).fetch_listing(["cs.CL"])
    assert report.totals.new > 0
    listed = rows(engine, "SELECT DISTINCT day FROM daily_entries")
    assert [str(r[0]) for r in listed] == ["2025-09-22"]
    assert report.totals.listings_added >= 1
