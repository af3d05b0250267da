"""The load mix of bench/load.py, small: 40 browsers for a few seconds against a real
``papertide serve --workers 2`` on each engine, on 400 real papers of the demo's lists.

Page views, searches, upvotes, un-votes and comments at once, from two worker processes: no
answer may be a 5xx or say "database is locked", every answer must be the one its kind gives
when all is well (a 429 counts apart; the mix stays within the comment limit), and the
database must hold exactly the votes and comments the clients know they made. Timing is
bench/load.py's business: nothing here asserts a speed.
"""

from __future__ import annotations

import asyncio
import gzip
import sys
from itertools import islice
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from papertide.demo import DEMO_PATH
from papertide.ingest.runner import IngestRun

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import load_mix
import load_server

CLIENTS = 40
BY_FORM = 5  # of them log in through the form (the log-in limit allows 20 an address)
SECONDS = 6.0
WORKERS = 2
PAPERS = 400
HOT = 6  # votes and comments crowd onto these few papers
# Heavier on writes than bench/load.py's mix, so that in a few seconds each client votes,
# takes votes back and comments on the same few papers as the others.
MIX = {**load_mix.MIX, "upvote": 30, "unvote": 30, "comment": 12, "week": 2, "trending": 2}


@pytest.fixture
def catalog(engine: Engine, tmp_path: Path) -> load_mix.Catalog:
    sample = tmp_path / "demo-sample.jsonl"
    with gzip.open(DEMO_PATH, "rt", encoding="utf-8") as demo:
        sample.write_text("".join(islice(demo, PAPERS)), encoding="utf-8")
    report = IngestRun(engine=engine, tz=ZoneInfo("America/New_York")).run([sample])
    assert report.totals.new == PAPERS and report.totals.listings_added == PAPERS
    return load_mix.read_catalog(engine, queries=50, hot=HOT)


@pytest.mark.slow
def test_forty_clients_on_two_workers_lose_nothing(
    engine_name: str,
    db_url: str,
    engine: Engine,
    catalog: load_mix.Catalog,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    accounts = load_mix.make_accounts(engine, CLIENTS, BY_FORM)
    log = tmp_path / "server.log"
    server = load_server.start_server(
        db_url, WORKERS, log, {"PAPERTIDE_EMBED_IN_BACKGROUND": "false"}
    )
    try:
        clients = load_mix.run_clients(server.base_url, accounts, catalog, SECONDS, mix=MIX)
        tally = asyncio.run(clients)
    finally:
        load_server.stop_server(server)
    rows = {row["kind"]: row for row in load_mix.summary(tally)}
    with capsys.disabled():
        print(
            f"\nload mix [{engine_name}]: {rows['all']['requests']} requests, "
            f"statuses {rows['all']['statuses']}",
            file=sys.stderr,
        )
    assert tally.server_errors == 0, tally.problems[:5]
    assert tally.transport_errors == 0, tally.problems[:5]
    assert not tally.locked, tally.locked[:5]
    assert not tally.unexpected, tally.unexpected[:5]
    assert not load_mix.check_counts(engine, tally)
    logged = load_server.server_errors_logged(server)
    assert not logged, log.read_text()[-3000:]
    # the mix really wrote, through both kinds of log-in
    assert sum(len(v) for v in tally.votes.values()) > 0
    assert sum(len(c) for c in tally.comment_ids.values()) > 0
    assert rows["login"]["statuses"].get(303) == BY_FORM
    assert rows["unvote"]["statuses"].get(200, 0) > 0
