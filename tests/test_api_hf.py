"""The Hugging Face-compatible endpoints, proven with the real client: a live server on
loopback, ``huggingface_hub.HfApi(endpoint=...)`` and the ``hf papers`` CLI, on both engines.

The lists (New York days), newest first, as ``/api/daily_papers`` orders them by default:
2025-05-05 (Mon, W19): G (ada's submission at 15:00 UTC), then F (imported, position 0);
2025-05-01 (Thu, W18): C, D, E (positions 0-2; a hidden paper beside them);
2025-04-30 (Wed, W18): A, B;  2025-04-01 (Tue, W14): H (imported, submitted on HF by nadia-k).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from browser import live_server
from factories import listed, make_record, write_records
from fastapi.testclient import TestClient
from huggingface_hub import HfApi, constants
from huggingface_hub.errors import HfHubHTTPError
from people import SECRET, add_user
from sqlalchemy import Engine, text
from test_submissions import FETCHED, ArxivReplay

from papertide import daily, submissions
from papertide.accounts.tokens import create_token
from papertide.catalog.records import Author, Listing, OrganizationRef, PaperRecord, Version
from papertide.community.comments import post_comment
from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.ingest import hf_api
from papertide.web.app import create_app

NOW = datetime(2025, 5, 5, 15, 0, tzinfo=UTC)  # Monday, 11:00 in New York
HF_CLI = Path(sys.executable).with_name("hf")
A, B, C, D, E = "2504.00001", "2504.00002", "2505.00001", "2505.00002", "2505.00003"
F, G, H, HIDDEN = "2505.00004", "2505.00005", "2504.00003", "2505.00009"
NEWEST_FIRST = [G, F, C, D, E, A, B, H]
UPVOTES = {A: 5, B: 9, C: 3, D: 12, E: 1, F: 7, G: 4, H: 20, HIDDEN: 50}
C_ABSTRACT = (
    "Editing long documents requires locating every passage an instruction touches. We present "
    "GLiDE, a planner that retrieves candidate spans and applies edits span by span, with "
    "$O(n \\log n)$ cost; a <b>bold</b> claim."
)
GLIDE = "GLiDE: Grounded Long-Document Editing"
LANGFLOW = "LangFlow: Continuous Diffusion Rivals Discrete"
C_SUMMARY = "GLiDE plans edits across long documents by retrieving the affected spans first."
CODE = "https://github.com/example-lab/glide"
PROJECT = "https://example-lab.github.io/glide/"
ZAI = OrganizationRef("zai-org", "Z.ai", "https://example.org/zai.png")


def _paper(arxiv_id: str, day: date | None, position: int = 0, **overrides: Any) -> Any:
    v1 = datetime.combine(day or date(2025, 5, 1), datetime.min.time(), UTC) - timedelta(hours=7)
    values: dict[str, Any] = {
        "title": f"Paper {arxiv_id}",
        "versions": [Version(1, v1)],
        "published_at": v1,
        "upvotes": UPVOTES.get(arxiv_id, 0),
        "listing": listed(day, position) if day else None,
    }
    values.update(overrides)
    return make_record(arxiv_id, **values)


def seed(engine: Engine, settings: Settings) -> None:
    write_records(
        engine,
        _paper(A, date(2025, 4, 30), 0, title="Asymptotics of Language Model Alignment"),
        _paper(B, date(2025, 4, 30), 1),
        _paper(
            C,
            date(2025, 5, 1),
            0,
            title=GLIDE,
            abstract=C_ABSTRACT,
            authors=[Author("Zoë Ångström"), Author("李明", "Tsinghua"), Author("Ada Lovelace")],
            ai_summary=C_SUMMARY,
            code_url=CODE,
            project_url=PROJECT,
            organization=ZAI,
            categories=["cs.CL", "cs.LG"],
        ),
        _paper(D, date(2025, 5, 1), 1, title=LANGFLOW),
        _paper(E, date(2025, 5, 1), 2),
        _paper(HIDDEN, date(2025, 5, 1), 3),
        _paper(F, date(2025, 5, 5), 0),
        _paper(G, None),
        _paper(H, None, listing=Listing(date(2025, 4, 1), 0, submitter_name="nadia-k")),
        _paper("hep-th/9901001", None, title="An old-style paper"),
    )
    ada = add_user(engine, "ada")
    submissions.submit_paper(engine, settings, ada, G, "Worth a look", now=NOW)
    with write_transaction(engine) as connection:
        hide = "UPDATE papers SET hidden_at = created_at WHERE arxiv_id = :id"
        connection.execute(text(hide), {"id": HIDDEN})
        connection.execute(text("UPDATE users SET display_name = 'Ada L.' WHERE username = 'ada'"))
        post_comment(connection, ada, C, "Nice planner.")
    daily.compute_trending(engine, settings, now=NOW + timedelta(hours=6))


@pytest.fixture(autouse=True)
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client refuses every request in offline mode; here every request is on loopback."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def site(engine: Engine, settings: Settings) -> Iterator[str]:
    seed(engine, settings)
    served = settings.replace(secret_key=SECRET, embed_in_background=False, scheduler=False)
    with live_server(served) as url:
        # On SQLite the server's background job brings the keyword index up to date as it
        # starts; a request meanwhile answers from the index as it is. Wait for the catch-up.
        deadline = time.monotonic() + 60
        while not httpx.get(f"{url}/api/papers/search", params={"q": "GLiDE"}).json():
            assert time.monotonic() < deadline, "the keyword index did not catch up"
            time.sleep(0.1)
        yield url


@pytest.fixture
def api(site: str) -> HfApi:
    return HfApi(endpoint=site, token=False)


def ids(papers: Any) -> list[str]:
    return [p.id for p in papers]


# --- /api/daily_papers ------------------------------------------------------------------------


def test_daily_papers_by_date_week_and_month(api: HfApi) -> None:
    day = list(api.list_daily_papers(date="2025-05-01"))
    assert ids(day) == [C, D, E]  # the hidden paper is left out
    glide = day[0]
    assert glide.title == GLIDE
    assert glide.summary == C_ABSTRACT  # the whole abstract
    assert [a.name for a in glide.authors or []] == ["Zoë Ångström", "李明", "Ada Lovelace"]
    assert glide.upvotes == 3 and glide.comments == 1
    assert glide.published_at == datetime(2025, 4, 30, 17, tzinfo=UTC)  # arXiv v1
    assert glide.submitted_at == datetime(2025, 5, 1, 4, tzinfo=UTC)  # the New York day
    assert glide.organization is not None
    assert (glide.organization.name, glide.organization.fullname) == ("zai-org", "Z.ai")
    assert glide.organization.avatar_url == ZAI.avatar_url
    assert [p.title for p in day[1:]] == [LANGFLOW, f"Paper {E}"]
    assert [p.upvotes for p in day] == [3, 12, 1]
    assert ids(api.list_daily_papers(week="2025-W18")) == [C, D, E, A, B]
    assert ids(api.list_daily_papers(week="2025-W19")) == [G, F]
    assert ids(api.list_daily_papers(month="2025-05")) == [G, F, C, D, E]
    assert ids(api.list_daily_papers(month="2025-04")) == [A, B, H]
    assert list(api.list_daily_papers(date="2025-05-03")) == []  # a day without a list


def test_without_a_period_every_list_newest_first(api: HfApi) -> None:
    everything = list(api.list_daily_papers())
    assert ids(everything) == NEWEST_FIRST
    submitted, imported = everything[0], everything[1]
    assert submitted.submitted_at == NOW  # a submission appeared when it was made
    assert submitted.submitted_by is not None
    assert (submitted.submitted_by.name, submitted.submitted_by.fullname) == ("ada", "Ada L.")
    assert imported.submitted_at == datetime(2025, 5, 5, 4, tzinfo=UTC)
    assert imported.submitted_by is None
    assert everything[-1].submitted_by is not None and everything[-1].submitted_by.name == "nadia-k"


def test_paging_with_p_and_limit_and_link_header(api: HfApi, site: str) -> None:
    pages = [ids(api.list_daily_papers(p=p, limit=3)) for p in range(4)]
    assert pages == [[G, F, C], [D, E, A], [B, H], []]
    first = httpx.get(f"{site}/api/daily_papers", params={"limit": 3, "month": "2025-05"})
    assert first.status_code == 200
    assert first.links["next"]["url"] == f"{site}/api/daily_papers?limit=3&month=2025-05&p=1"
    following = httpx.get(first.links["next"]["url"])
    assert [item["paper"]["id"] for item in following.json()] == [D, E]
    assert "link" not in following.headers  # the last page
    assert ids(api.list_daily_papers(limit=100)) == NEWEST_FIRST


def test_sort_trending(api: HfApi, site: str, engine: Engine) -> None:
    # Scores at 21:00 UTC on May 5: F (7 upvotes, 17 hours) beats G (4 upvotes, as fresh);
    # D's 12 upvotes four days old beat B's 9 five days old; H is older than the window.
    with engine.connect() as connection:
        table = [c.arxiv_id for c in daily.trending_list(connection, 1, 100).cards]
    assert table == [F, G, D, B, A, C, E]
    trending = ids(api.list_daily_papers(sort="trending"))
    assert trending == [*table, H]  # the table's order, then the rest, most upvoted first
    assert ids(api.list_daily_papers(sort="trending", week="2025-W18")) == [D, B, A, C, E]
    assert ids(api.list_daily_papers(sort="publishedAt", week="2025-W18")) == [C, D, E, A, B]
    assert ids(api.list_daily_papers(sort="trending", p=1, limit=4)) == [A, C, E, H]


def test_submitter_filter(api: HfApi) -> None:
    assert ids(api.list_daily_papers(submitter="ada")) == [G]
    assert ids(api.list_daily_papers(submitter="NADIA-K")) == [H]
    assert ids(api.list_daily_papers(submitter="ada", month="2025-04")) == []
    assert list(api.list_daily_papers(submitter="nobody")) == []


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"date": "2025-13-01"}, "date: '2025-13-01' is not a date"),
        ({"date": "yesterday"}, "date: 'yesterday' is not a date"),
        ({"week": "2025-W54"}, "week: 2025-W54 is not an ISO week"),
        ({"month": "2025-5"}, "month: '2025-5' is not a month"),
        ({"date": "2025-05-01", "week": "2025-W18"}, "not date and week"),
        ({"sort": "sideways"}, "sort: 'sideways' is not a sort order"),
        ({"limit": 0}, "limit: "),
        ({"limit": 101}, "limit: "),
        ({"p": -1}, "p: "),
    ],
)
def test_bad_values_are_400_naming_the_parameter(
    api: HfApi, site: str, params: dict[str, Any], named: str
) -> None:
    with pytest.raises(HfHubHTTPError) as raised:
        list(api.list_daily_papers(**params))
    assert raised.value.response is not None and raised.value.response.status_code == 400
    answer = httpx.get(f"{site}/api/daily_papers", params=params)
    assert answer.status_code == 400
    message = answer.json()["error"]["message"]
    assert named in message, message
    assert message in str(raised.value)  # the client shows the server's message


# --- /api/papers/{id}, /papers/{id}.md, search ------------------------------------------------


def test_paper_info(api: HfApi) -> None:
    info = api.paper_info(C)
    assert info.id == C and info.title == GLIDE
    assert info.summary == C_ABSTRACT
    assert [a.name for a in info.authors or []] == ["Zoë Ångström", "李明", "Ada Lovelace"]
    assert info.upvotes == 3 and info.comments == 1 and info.discussion_id == C
    assert info.published_at == datetime(2025, 4, 30, 17, tzinfo=UTC)
    assert info.submitted_at == datetime(2025, 5, 1, 4, tzinfo=UTC)
    assert info.ai_summary == C_SUMMARY
    assert (info.github_repo, info.project_page) == (CODE, PROJECT)
    assert info.organization is not None and info.organization.fullname == "Z.ai"
    submitted = api.paper_info(f"{G}v1")  # a version: the paper
    assert submitted.id == G and submitted.upvotes == 4 and submitted.submitted_at == NOW
    assert submitted.submitted_by is not None and submitted.submitted_by.name == "ada"
    old = api.paper_info("hep-th/9901001")
    assert (old.id, old.title, old.upvotes) == ("hep-th/9901001", "An old-style paper", 0)
    assert old.submitted_at is old.organization is old.ai_summary is old.github_repo is None


def test_unknown_and_hidden_papers_are_404(api: HfApi, site: str) -> None:
    for arxiv_id in ("2501.99999", HIDDEN, "not-an-id"):
        with pytest.raises(HfHubHTTPError) as raised:
            api.paper_info(arxiv_id)
        assert raised.value.response is not None and raised.value.response.status_code == 404
        with pytest.raises(HfHubHTTPError) as raised:
            api.read_paper(arxiv_id)
        assert raised.value.response is not None and raised.value.response.status_code == 404
    answer = httpx.get(f"{site}/api/papers/2501.99999")
    assert answer.json()["error"]["code"] == "not_found"


def test_read_paper_as_markdown(api: HfApi, site: str) -> None:
    text_md = api.read_paper(C)
    assert text_md.startswith(f"# {GLIDE}\n")
    assert "**Authors:** Zoë Ångström, 李明 (Tsinghua), Ada Lovelace" in text_md
    assert "**Published on arXiv:** 2025-04-30" in text_md
    assert "**On the daily list:** 2025-05-01" in text_md
    assert "**Upvotes:** 3" in text_md and "**Organization:** Z.ai" in text_md
    assert f"[arXiv:{C}](https://arxiv.org/abs/{C})" in text_md
    assert f"[Code]({CODE})" in text_md and f"[Project page]({PROJECT})" in text_md
    assert f"## AI summary\n\n{C_SUMMARY}\n" in text_md
    assert "## Abstract\n\nEditing long documents requires locating every passage" in text_md
    assert "$O(n \\log n)$" in text_md  # LaTeX kept
    assert "<b>" not in text_md and "&lt;b>bold&lt;/b>" in text_md  # no HTML tags
    response = httpx.get(f"{site}/papers/{C}.md")
    assert response.headers["content-type"] == "text/markdown; charset=utf-8"
    assert api.read_paper("hep-th/9901001").startswith("# An old-style paper\n")
    assert "## AI summary" not in api.read_paper(A)


def test_list_papers_search(api: HfApi) -> None:
    found = list(api.list_papers(query="GLiDE long-document editing"))
    assert found[0].id == C and found[0].title == GLIDE
    assert next(a.name for a in found[0].authors or []) == "Zoë Ångström"
    assert ids(api.list_papers(query=D))[0] == D  # an exact id comes first
    assert HIDDEN not in ids(api.list_papers(query=f"Paper {HIDDEN}", limit=120))


def test_our_answers_read_back_as_hugging_face_data(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    """The importer written for HF's own answers reads ours: same days, order, submitters."""
    seed(engine, settings)
    client = TestClient(create_app(settings.replace(secret_key=SECRET)))
    tz = ZoneInfo(settings.timezone)
    week = tmp_path / "daily_papers.json"
    week.write_bytes(client.get("/api/daily_papers", params={"week": "2025-W19"}).content)
    records = [r for r in hf_api.parse(week, tz) if isinstance(r, PaperRecord)]
    assert [(r.arxiv_id, r.listing, r.upvotes) for r in records] == [
        (G, Listing(date(2025, 5, 5), 0, submitter_name="ada"), 4),
        (F, Listing(date(2025, 5, 5), 1), 7),
    ]
    single = tmp_path / "paper.json"
    single.write_bytes(client.get(f"/api/papers/{C}").content)
    (glide,) = [r for r in hf_api.parse(single, tz) if isinstance(r, PaperRecord)]
    assert glide.listing == Listing(date(2025, 5, 1), None)
    assert (glide.title, glide.abstract, glide.ai_summary) == (GLIDE, C_ABSTRACT, C_SUMMARY)
    assert (glide.code_url, glide.project_url, glide.organization) == (CODE, PROJECT, ZAI)
    assert [a.name for a in glide.authors] == ["Zoë Ångström", "李明", "Ada Lovelace"]


# --- the hf CLI ---------------------------------------------------------------------------------


def hf(site: str, tmp_path: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.pop("TRANSFORMERS_OFFLINE", None)
    env.update(HF_ENDPOINT=site, HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1")
    done = subprocess.run(
        [str(HF_CLI), "papers", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_hf_papers_cli(site: str, tmp_path: Path) -> None:
    listed_day = json.loads(hf(site, tmp_path, "ls", "--date", "2025-05-01", "--format", "json"))
    assert [(p["id"], p["title"], p["upvotes"]) for p in listed_day] == [
        (C, GLIDE, 3),
        (D, LANGFLOW, 12),
        (E, f"Paper {E}", 1),
    ]
    week = json.loads(hf(site, tmp_path, "ls", "--week", "2025-W19", "--format", "json"))
    assert [(p["id"], p["submitted_by_name"]) for p in week] == [(G, "Ada L."), (F, "")]
    trending = json.loads(hf(site, tmp_path, "ls", "--sort", "trending", "--format", "json"))
    assert [p["id"] for p in trending] == [F, G, D, B, A, C, E, H]
    table = hf(site, tmp_path, "ls", "--month", "2025-04", "--format", "agent")
    assert [line.split("\t")[0] for line in table.splitlines()[1:]] == [A, B, H]
    assert "Asymptotics of Language Model Alignment" in table
    found = json.loads(hf(site, tmp_path, "search", "LangFlow diffusion", "--format", "json"))
    assert found[0]["id"] == D
    info = json.loads(hf(site, tmp_path, "info", C, "--format", "json"))
    assert (info["id"], info["ai_summary"], info["github_repo"]) == (C, C_SUMMARY, CODE)
    assert [a["name"] for a in info["authors"]] == ["Zoë Ångström", "李明", "Ada Lovelace"]
    page = hf(site, tmp_path, "read", C)
    assert page.startswith(f"# {GLIDE}")
    assert C_SUMMARY in page


# --- writes with an API token -----------------------------------------------------------------


def test_index_and_submit_with_a_token(engine: Engine, settings: Settings) -> None:
    seed(engine, settings)
    open_days = settings.replace(secret_key=SECRET, submission_allow_weekends=True)
    app = create_app(open_days)
    replay = ArxivReplay(shift=True)
    app.state.arxiv_transport = replay.transport()
    bob = add_user(engine, "bob")
    with write_transaction(engine) as connection:
        _, token = create_token(connection, bob, "hf client")
    client = TestClient(app)
    auth = {"Authorization": f"Bearer {token}"}

    anonymous = client.post("/api/papers/index", json={"arxivId": C})
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "login_required"
    wrong = client.post(
        "/api/papers/submit", json={"arxivId": C}, headers={"Authorization": "Bearer pt_x"}
    )
    assert wrong.status_code == 401

    known = client.post(
        "/api/papers/index", json={"arxivId": f"https://arxiv.org/abs/{C}v2"}, headers=auth
    )
    assert known.status_code == 200 and known.json()["id"] == C and known.json()["upvotes"] == 3
    assert replay.requests == []  # known: no request to arXiv
    fetched = client.post("/api/papers/index", json={"arxivId": FETCHED}, headers=auth)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["id"] == FETCHED and fetched.json()["title"]
    assert "submittedOnDailyAt" not in fetched.json()  # indexed, on no list
    assert [r.get("id_list") for r in replay.requests] == [FETCHED]
    missing = client.post("/api/papers/index", json={"arxivId": "2511.99999"}, headers=auth)
    assert missing.status_code == 404
    bad = client.post("/api/papers/index", json={"paper": C}, headers=auth)
    assert bad.status_code == 400 and "arxivId" in bad.json()["error"]["message"]

    done = client.post(
        "/api/papers/submit", json={"arxivId": FETCHED, "comment": "Nice"}, headers=auth
    )
    assert done.status_code == 200, done.text
    body = done.json()
    today = daily.today(settings)
    assert (body["status"], body["day"]) == ("published", today.isoformat())
    assert body["paper"]["id"] == FETCHED
    assert body["paper"]["submittedOnDailyBy"]["name"] == "bob"
    again = client.post("/api/papers/submit", json={"arxivId": FETCHED}, headers=auth)
    assert again.status_code == 409
    assert "already on today's list" in again.json()["error"]["message"]
    old = client.post("/api/papers/submit", json={"arxivId": A}, headers=auth)
    assert old.status_code == 400 and "days ago" in old.json()["error"]["message"]
    long_comment = client.post(
        "/api/papers/submit", json={"arxivId": D, "comment": "x" * 1001}, headers=auth
    )
    assert long_comment.status_code == 400

    served = settings.replace(secret_key=SECRET, embed_in_background=False, scheduler=False)
    with live_server(served) as site:
        hub = HfApi(endpoint=site, token=False)
        (entry,) = hub.list_daily_papers(date=today.isoformat())
        assert entry.id == FETCHED and entry.submitted_by is not None
        assert entry.submitted_by.name == "bob"
        assert hub.paper_info(FETCHED).title == fetched.json()["title"]
