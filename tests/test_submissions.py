"""Submissions to today's list: each rule refuses with its own message; unknown papers are
fetched from (replayed) arXiv and written with their entry; new accounts wait for approval;
organizations only for their members. On both engines, never touching the network."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from factories import fixture_path, listed, make_record, rows, write_records
from fastapi import FastAPI
from sqlalchemy import Engine
from test_moderation import audit_actions, csrf_of, logged_in, make_user, post, recent_paper

from papertide import daily, organizations, submissions
from papertide.accounts.users import Role
from papertide.cards import EntryStatus
from papertide.catalog.records import Version
from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.errors import Conflict, InvalidInput, NotFound, PermissionDenied, RateLimited
from papertide.web.app import create_app

NOW = datetime(2025, 11, 25, 15, 0, tzinfo=UTC)  # a Tuesday; 10:00 in New York
TODAY = date(2025, 11, 25)
SATURDAY = datetime(2025, 11, 29, 15, 0, tzinfo=UTC)
FETCHED = "2511.04242"  # the paper of tests/fixtures/atom/id-list-constructed.atom


def paper(arxiv_id: str, days_old: float = 2, **overrides: object) -> object:
    v1 = NOW - timedelta(days=days_old)
    return make_record(arxiv_id, versions=[Version(1, v1)], published_at=v1, **overrides)


class ArxivReplay:
    """The arXiv API, replayed: the recorded answer for FETCHED, the empty feed otherwise.

    ``shift`` moves the paper's dates to recent days, for tests that run on the real clock."""

    def __init__(self, shift: bool = False) -> None:
        self.shift = shift
        self.requests: list[dict[str, str]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        params = dict(parse_qsl(urlsplit(str(request.url)).query))
        self.requests.append(params)
        known = params.get("id_list") == FETCHED
        text = fixture_path(
            "atom", f"id-list-{'constructed' if known else 'empty'}.atom"
        ).read_text()
        if self.shift:
            today = datetime.now(UTC).date()
            text = text.replace("2025-11-20T", f"{today - timedelta(days=3)}T")
            text = text.replace("2025-11-24T", f"{today - timedelta(days=1)}T")
        return httpx.Response(200, text=text, headers={"content-type": "application/atom+xml"})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)


def submit(engine: Engine, settings: Settings, user: object, ref: str, **kw: object) -> object:
    kw.setdefault("now", NOW)
    return submissions.submit_paper(engine, settings, user, ref, **kw)  # type: ignore[arg-type]


def count(engine: Engine, sql: str) -> int:
    return int(rows(engine, sql)[0][0])


# --- the rules ----------------------------------------------------------------------------


def test_a_known_paper_goes_on_todays_list(engine: Engine, settings: Settings) -> None:
    write_records(engine, paper("2511.00001"))
    ada = make_user(engine, "ada", created=NOW - timedelta(days=30))
    done = submit(engine, settings, ada, "https://arxiv.org/abs/2511.00001v1", comment=" Great ")
    assert done == submissions.Submission(
        "2511.00001", "A paper about 2511.00001", TODAY, EntryStatus.PUBLISHED, fetched=False
    )
    with engine.connect() as connection:
        assert [c.arxiv_id for c in daily.day_list(connection, TODAY)] == ["2511.00001"]
        mine = submissions.submissions_of(connection, settings, ada, NOW)
    assert [(m.arxiv_id, m.submitter, m.comment, m.status) for m in mine] == [
        ("2511.00001", "ada", "Great", EntryStatus.PUBLISHED)
    ]
    assert rows(engine, "SELECT source, submitter_name, status FROM daily_entries") == [
        ("submission", "ada", "published")
    ]


def test_at_most_three_a_day(engine: Engine, settings: Settings) -> None:
    write_records(engine, *(paper(f"2511.0000{n}") for n in range(1, 6)))
    ada = make_user(engine, "ada", created=NOW - timedelta(days=30))
    for n in range(1, 4):
        submit(engine, settings, ada, f"2511.0000{n}")
    with pytest.raises(RateLimited, match=r"3 submissions today, the most allowed per day \(3\)"):
        submit(engine, settings, ada, "2511.00004")
    try:
        submit(engine, settings, ada, "2511.00004")
    except RateLimited as exc:
        assert exc.retry_after == 14 * 3600  # until midnight in New York
    tomorrow = NOW + timedelta(days=1)
    assert submit(engine, settings, ada, "2511.00004", now=tomorrow).day == TODAY + timedelta(1)
    larger = settings.replace(submission_daily_limit=4)
    assert submit(engine, larger, ada, "2511.00005").status is EntryStatus.PUBLISHED


def test_papers_older_than_fourteen_days_are_refused(engine: Engine, settings: Settings) -> None:
    write_records(engine, paper("2511.00001", days_old=15), paper("2511.00002", days_old=13.9))
    ada = make_user(engine, "ada", created=NOW - timedelta(days=30))
    with pytest.raises(
        InvalidInput, match="first submitted to arXiv on 2025-11-10, more than 14 days ago"
    ):
        submit(engine, settings, ada, "2511.00001")
    submit(engine, settings, ada, "2511.00002")
    assert submit(engine, settings.replace(submission_max_age_days=30), ada, "2511.00001")


def test_no_duplicate_on_the_same_list(engine: Engine, settings: Settings) -> None:
    write_records(engine, paper("2511.00001"), paper("2511.00002", listing=listed(TODAY, 0)))
    ada = make_user(engine, "ada", created=NOW - timedelta(days=30))
    bob = make_user(engine, "bob", created=NOW - timedelta(days=30))
    submit(engine, settings, ada, "2511.00001")
    with pytest.raises(Conflict, match=r"2511.00001 is already on today's list \(2025-11-25\)"):
        submit(engine, settings, bob, "2511.00001")
    with pytest.raises(Conflict, match=r"2511\.00002 is already on today's list"):
        submit(engine, settings, bob, "2511.00002")  # listed by an import
    neo = make_user(engine, "neo", created=NOW)
    write_records(engine, paper("2511.00003"))
    submit(engine, settings, neo, "2511.00003")
    with pytest.raises(Conflict, match="already submitted today and awaits a moderator"):
        submit(engine, settings, bob, "2511.00003")


def test_weekends_follow_the_setting(engine: Engine, settings: Settings) -> None:
    write_records(engine, paper("2511.00001"), paper("2511.00002"))
    ada = make_user(engine, "ada", created=NOW - timedelta(days=30))
    assert submit(engine, settings, ada, "2511.00001", now=SATURDAY).day == date(2025, 11, 29)
    closed = settings.replace(submission_allow_weekends=False)
    with pytest.raises(InvalidInput, match="cannot be submitted on weekends"):
        submit(engine, closed, ada, "2511.00002", now=SATURDAY)


def test_bad_input_is_refused_with_its_message(engine: Engine, settings: Settings) -> None:
    write_records(engine, paper("2511.00001"))
    ada = make_user(engine, "ada", created=NOW - timedelta(days=30))
    with pytest.raises(InvalidInput, match="'not a paper' is not an arXiv id"):
        submit(engine, settings, ada, "not a paper")
    with pytest.raises(InvalidInput, match="at most 1000 characters"):
        submit(engine, settings, ada, "2511.00001", comment="x" * 1001)
    assert count(engine, "SELECT count(*) FROM daily_entries") == 0


def test_new_accounts_wait_for_a_moderator(engine: Engine, settings: Settings) -> None:
    write_records(engine, paper("2511.00001"), paper("2511.00002"))
    neo = make_user(engine, "neo", created=NOW - timedelta(days=2, hours=23))
    mia = make_user(engine, "mia", Role.MODERATOR, created=NOW)
    done = submit(engine, settings, neo, "2511.00001")
    assert done.status is EntryStatus.PENDING  # type: ignore[attr-defined]
    assert submit(engine, settings, mia, "2511.00002").status is EntryStatus.PUBLISHED
    with engine.connect() as connection:
        assert [c.arxiv_id for c in daily.day_list(connection, TODAY)] == ["2511.00002"]
        (waiting,) = submissions.pending_submissions(connection)
    assert (waiting.arxiv_id, waiting.submitter) == ("2511.00001", "neo")
    later = NOW + timedelta(days=1)
    with write_transaction(engine) as connection:
        submissions.decide_submission(connection, settings, mia, waiting.entry_id, True, later)
        with pytest.raises(Conflict, match="was already published"):
            submissions.decide_submission(connection, settings, mia, waiting.entry_id, False)
        with pytest.raises(NotFound):
            submissions.decide_submission(connection, settings, mia, 999999, True)
        with pytest.raises(PermissionDenied):
            submissions.decide_submission(connection, settings, neo, waiting.entry_id, True)
    with engine.connect() as connection:
        # Approved the next day: it goes on the list of the day of approval.
        assert [c.arxiv_id for c in daily.day_list(connection, TODAY + timedelta(1))] == [
            "2511.00001"
        ]
        assert submissions.pending_submissions(connection) == []
    assert audit_actions(engine) == [("mia", "submission.approve", "paper:2511.00001")]
    # Three days old: straight onto the list.
    write_records(engine, paper("2511.00003", days_old=1))
    assert submit(engine, settings, neo, "2511.00003", now=NOW + timedelta(hours=1)).status is (
        EntryStatus.PUBLISHED
    )
    never = settings.replace(submission_min_account_days=0)
    fresh = make_user(engine, "fresh", created=NOW)
    write_records(engine, paper("2511.00004"))
    assert submit(engine, never, fresh, "2511.00004").status is EntryStatus.PUBLISHED


def test_rejected_submissions_stay_off_the_list(engine: Engine, settings: Settings) -> None:
    write_records(engine, paper("2511.00001"))
    neo = make_user(engine, "neo", created=NOW)
    mia = make_user(engine, "mia", Role.MODERATOR)
    submit(engine, settings, neo, "2511.00001")
    with engine.connect() as connection:
        (waiting,) = submissions.pending_submissions(connection)
    with write_transaction(engine) as connection:
        submissions.decide_submission(connection, settings, mia, waiting.entry_id, False, NOW)
    with engine.connect() as connection:
        assert daily.day_list(connection, TODAY) == []
        assert daily.latest_list_day(connection, TODAY) is None
    with pytest.raises(Conflict):  # the same paper cannot come back the same day
        submit(
            engine, settings, make_user(engine, "old", created=NOW - timedelta(30)), "2511.00001"
        )
    assert audit_actions(engine) == [("mia", "submission.reject", "paper:2511.00001")]


def test_hidden_papers_cannot_be_submitted(engine: Engine, settings: Settings) -> None:
    write_records(engine, paper("2511.00001"))
    from papertide import moderation

    mia = make_user(engine, "mia", Role.MODERATOR)
    with write_transaction(engine) as connection:
        moderation.hide_paper(connection, mia, "2511.00001")
    with pytest.raises(Conflict, match="hidden by the moderators"):
        submit(engine, settings, mia, "2511.00001")


# --- papers the catalog does not have -------------------------------------------------------


def test_unknown_paper_is_fetched_from_arxiv_and_written(
    engine: Engine, settings: Settings
) -> None:
    ada = make_user(engine, "ada", created=NOW - timedelta(days=30))
    replay = ArxivReplay()
    done = submit(engine, settings, ada, f"arXiv:{FETCHED}v2", transport=replay.transport())
    assert done.fetched and done.title.startswith("Constructed Tides")  # type: ignore[attr-defined]
    assert replay.requests == [{"id_list": FETCHED, "start": "0", "max_results": "1"}]
    assert rows(engine, "SELECT arxiv_id, author_count, primary_category FROM papers") == [
        (FETCHED, 3, "cs.IR")
    ]
    assert [r[0] for r in rows(engine, "SELECT name FROM paper_authors ORDER BY position")] == [
        "Ada Lovelace",
        "Alan Turing",
        "Grace Hopper",
    ]
    with engine.connect() as connection:
        assert [c.arxiv_id for c in daily.day_list(connection, TODAY)] == [FETCHED]
    # Known now: a second submission (tomorrow, by someone else) asks arXiv nothing.
    bob = make_user(engine, "bob", created=NOW - timedelta(days=30))
    submit(engine, settings, bob, FETCHED, transport=replay.transport(), now=NOW + timedelta(1))
    assert len(replay.requests) == 1


def test_an_id_arxiv_does_not_have_is_not_found(engine: Engine, settings: Settings) -> None:
    ada = make_user(engine, "ada", created=NOW - timedelta(days=30))
    replay = ArxivReplay()
    with pytest.raises(NotFound, match=r"arXiv has no paper 2511\.99999"):
        submit(engine, settings, ada, "2511.99999", transport=replay.transport())
    assert count(engine, "SELECT count(*) FROM papers") == 0


def test_a_refused_fetched_paper_leaves_nothing_behind(engine: Engine, settings: Settings) -> None:
    ada = make_user(engine, "ada", created=NOW - timedelta(days=30))
    replay = ArxivReplay()
    with pytest.raises(InvalidInput, match="more than 14 days ago"):
        submit(
            engine, settings, ada, FETCHED, transport=replay.transport(), now=NOW + timedelta(30)
        )
    assert len(replay.requests) == 1  # the age is known only once fetched...
    assert count(engine, "SELECT count(*) FROM papers") == 0  # ...and the write rolled back


def test_rules_are_checked_before_asking_arxiv(engine: Engine, settings: Settings) -> None:
    ada = make_user(engine, "ada", created=NOW - timedelta(days=30))
    replay = ArxivReplay()
    closed = settings.replace(submission_allow_weekends=False)
    with pytest.raises(InvalidInput, match="weekends"):
        submit(engine, closed, ada, FETCHED, transport=replay.transport(), now=SATURDAY)
    assert replay.requests == []


# --- organizations ------------------------------------------------------------------------


def test_only_members_attach_papers_to_their_organization(
    engine: Engine, settings: Settings
) -> None:
    write_records(engine, paper("2511.00001"), paper("2511.00002"), paper("2511.00003"))
    ann = make_user(engine, "ann", Role.ADMIN)
    ada = make_user(engine, "ada", created=NOW - timedelta(days=30))
    bob = make_user(engine, "bob", created=NOW - timedelta(days=30))
    with write_transaction(engine) as connection:
        lab = organizations.create_organization(connection, ann, "lab", "The Lab")
        organizations.create_organization(connection, ann, "other", "Other Lab")
        organizations.set_member(connection, ann, lab, "ada", "member")
    with pytest.raises(PermissionDenied, match="only members of The Lab may attach papers"):
        submit(engine, settings, bob, "2511.00001", organization_slug="lab")
    with pytest.raises(NotFound, match="no organization 'nope'"):
        submit(engine, settings, ada, "2511.00001", organization_slug="nope")
    assert count(engine, "SELECT count(*) FROM daily_entries") == 0
    submit(engine, settings, ada, "2511.00001", organization_slug="lab")
    with engine.connect() as connection:
        (card,) = daily.day_list(connection, TODAY)
        listed_papers = organizations.organization_papers(connection, lab)
    assert (card.organization_slug, card.organization_name) == ("lab", "The Lab")
    assert [c.arxiv_id for c in listed_papers.cards] == ["2511.00001"]
    submit(engine, settings, bob, "2511.00002")  # without an organization: none attached
    assert rows(engine, "SELECT organization_id FROM papers WHERE arxiv_id = '2511.00002'") == [
        (None,)
    ]


# --- through the web site -------------------------------------------------------------------


@pytest.fixture
def replay() -> ArxivReplay:
    return ArxivReplay(shift=True)


@pytest.fixture
def site(settings: Settings, replay: ArxivReplay) -> FastAPI:
    app = create_app(settings)
    app.state.arxiv_transport = replay.transport()
    return app


def test_submit_page_fetches_an_unknown_paper_and_lists_it(
    engine: Engine, site: FastAPI, replay: ArxivReplay
) -> None:
    make_user(engine, "ada")
    anonymous = logged_in(site, None)
    assert anonymous.get("/submit").headers["location"] == "/login?next=%2Fsubmit"
    ada = logged_in(site, "ada")
    form = ada.get("/submit")
    assert form.status_code == 200 and "3 submissions left today" in form.text
    assert 'href="/submit"' in ada.get("/").text  # the header links to it
    response = post(ada, "/submit", {"paper": f"https://arxiv.org/abs/{FETCHED}"})
    assert response.status_code == 303 and response.headers["location"] == f"/submit?done={FETCHED}"
    done = ada.get(response.headers["location"])
    assert "Constructed Tides" in done.text and "today’s list" in done.text
    assert "2 submissions left today" in done.text
    assert "Constructed Tides" in ada.get("/").text
    assert replay.requests[0]["id_list"] == FETCHED


def test_submit_page_shows_each_refusal(engine: Engine, site: FastAPI, settings: Settings) -> None:
    make_user(engine, "ada")
    write_records(engine, recent_paper("2511.00001", days_old=30), recent_paper("2511.00002"))
    ada = logged_in(site, "ada")
    cases = [
        ({"paper": "junk"}, 400, "is not an arXiv id"),
        ({"paper": "2511.00001"}, 400, "more than 14 days ago"),
        ({"paper": "2511.99999"}, 404, "arXiv has no paper 2511.99999"),
        ({"paper": "2511.00002", "organization": "lab"}, 404, "no organization"),
    ]
    for data, status, message in cases:
        response = post(ada, "/submit", data)
        assert (response.status_code, message in response.text) == (status, True), data
        assert f'value="{data["paper"]}"' in response.text  # the form keeps what was typed
    assert post(ada, "/submit", {"paper": "2511.00002"}).status_code == 303
    again = post(ada, "/submit", {"paper": "2511.00002"})
    assert again.status_code == 409 and "already on today" in again.text
    token = csrf_of(ada)
    assert (
        ada.post("/submit", data={"paper": "2511.00002", "csrf_token": "x" + token}).status_code
        == 403
    )


def test_profile_lists_submissions_pending_ones_only_to_their_owner(
    engine: Engine, settings: Settings
) -> None:
    veteran = make_user(engine, "veteran")
    newcomer = make_user(engine, "newcomer", created=datetime.now(UTC))
    write_records(engine, recent_paper("2511.00001", title="Listed paper"))
    write_records(engine, recent_paper("2511.00002", title="Waiting paper"))
    submissions.submit_paper(engine, settings, veteran, "2511.00001")
    submissions.submit_paper(engine, settings, newcomer, "2511.00002")
    app = create_app(settings)
    public = logged_in(app, None)
    assert "Listed paper" in public.get("/users/veteran").text
    assert "Waiting paper" not in public.get("/users/newcomer").text
    own = logged_in(app, "newcomer").get("/users/newcomer").text
    assert "Waiting paper" in own and "(pending)" in own
