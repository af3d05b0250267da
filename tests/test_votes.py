"""Upvotes on both engines: idempotent, one per user, the shown total = imported + vote rows,
suspended users refused, JSON and form answers, CSRF, and 50 concurrent voters on a live server."""

from __future__ import annotations

import random
import threading
from datetime import UTC, date, datetime

import httpx
import pytest
from browser import live_server
from factories import listed, make_record, rows, write_records
from fastapi import FastAPI
from people import SECRET, add_user, client_as, start_session
from sqlalchemy import Engine, update

from papertide.accounts.users import set_suspended, user_by_id
from papertide.community import comments, profiles, votes
from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.db.schema import papers as papers_table
from papertide.errors import NotFound, PermissionDenied
from papertide.web.app import create_app
from papertide.web.auth import SESSION_COOKIE

DAY = date(2025, 5, 1)


@pytest.fixture
def papers(engine: Engine) -> None:
    write_records(
        engine,
        make_record("2505.00001", upvotes=7, listing=listed(DAY, 0)),
        make_record("2505.00002", upvotes=0, listing=listed(DAY, 1)),
        make_record("hep-th/9901001", upvotes=2, listing=listed(DAY, 2)),
    )


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings.replace(secret_key=SECRET))


def counts(engine: Engine, arxiv_id: str) -> tuple[int, int, int]:
    """(upvotes, imported_upvotes, vote rows) of a paper."""
    [row] = rows(
        engine,
        "SELECT p.upvotes, p.imported_upvotes, "
        "(SELECT count(*) FROM votes v WHERE v.paper_id = p.id) FROM papers p "
        "WHERE p.arxiv_id = :id",
        id=arxiv_id,
    )
    return int(row[0]), int(row[1]), int(row[2])


# --- the domain ------------------------------------------------------------------------------


@pytest.mark.usefixtures("papers")
def test_upvote_is_idempotent_and_one_per_user(engine: Engine) -> None:
    ada, bob = add_user(engine, "ada"), add_user(engine, "bob")
    with write_transaction(engine) as connection:
        first = votes.upvote(connection, ada, "2505.00001")
        again = votes.upvote(connection, ada, "2505.00001v2")  # any spelling of the id
        other = votes.upvote(connection, bob, "arXiv:2505.00001")
    assert first == votes.VoteState("2505.00001", 8, True)
    assert again == votes.VoteState("2505.00001", 8, True)
    assert other == votes.VoteState("2505.00001", 9, True)
    assert counts(engine, "2505.00001") == (9, 7, 2)


@pytest.mark.usefixtures("papers")
def test_unvote_is_idempotent_and_the_total_is_imported_plus_rows(engine: Engine) -> None:
    ada = add_user(engine, "ada")
    with write_transaction(engine) as connection:
        assert votes.unvote(connection, ada, "2505.00001").upvotes == 7  # never voted
        votes.upvote(connection, ada, "2505.00001")
        assert votes.unvote(connection, ada, "2505.00001") == votes.VoteState(
            "2505.00001", 7, False
        )
        assert votes.unvote(connection, ada, "2505.00001").upvotes == 7
    assert counts(engine, "2505.00001") == (7, 7, 0)


@pytest.mark.usefixtures("papers")
def test_a_new_import_keeps_the_votes_in_the_total(engine: Engine) -> None:
    ada = add_user(engine, "ada")
    with write_transaction(engine) as connection:
        votes.upvote(connection, ada, "2505.00001")
    write_records(engine, make_record("2505.00001", upvotes=10, listing=listed(DAY, 0)))
    assert counts(engine, "2505.00001") == (11, 10, 1)


@pytest.mark.usefixtures("papers")
def test_voted_paper_ids_marks_only_the_users_votes(engine: Engine) -> None:
    ada, bob = add_user(engine, "ada"), add_user(engine, "bob")
    with write_transaction(engine) as connection:
        votes.upvote(connection, ada, "2505.00001")
        votes.upvote(connection, ada, "hep-th/9901001")
        votes.upvote(connection, bob, "2505.00002")
        ids = ["2505.00001", "2505.00002", "hep-th/9901001"]
        assert votes.voted_paper_ids(connection, ada, ids) == {"2505.00001", "hep-th/9901001"}
        assert votes.voted_paper_ids(connection, None, ids) == set()
        assert votes.voted_paper_ids(connection, bob, []) == set()


@pytest.mark.usefixtures("papers")
def test_suspended_users_cannot_vote(engine: Engine) -> None:
    ada = add_user(engine, "ada")
    with write_transaction(engine) as connection:
        set_suspended(connection, ada, True, datetime.now(UTC))
        suspended = user_by_id(connection, ada.id)
    assert suspended is not None and not suspended.active
    for action in (votes.upvote, votes.unvote):
        with write_transaction(engine) as connection, pytest.raises(PermissionDenied):
            action(connection, suspended, "2505.00001")
    assert counts(engine, "2505.00001") == (7, 7, 0)


@pytest.mark.usefixtures("papers")
@pytest.mark.parametrize("arxiv_id", ["2505.09999", "not-an-id"])
def test_unknown_papers_are_not_found(engine: Engine, arxiv_id: str) -> None:
    ada = add_user(engine, "ada")
    with write_transaction(engine) as connection, pytest.raises(NotFound, match="no paper"):
        votes.upvote(connection, ada, arxiv_id)


@pytest.mark.usefixtures("papers")
def test_hidden_papers_take_no_votes_or_comments(engine: Engine) -> None:
    ada = add_user(engine, "ada")
    with write_transaction(engine) as connection:
        votes.upvote(connection, ada, "2505.00001")
        connection.execute(
            update(papers_table)
            .where(papers_table.c.arxiv_id == "2505.00001")
            .values(hidden_at=datetime.now(UTC))
        )
    for act in (
        lambda c: votes.upvote(c, ada, "2505.00001"),
        lambda c: votes.unvote(c, ada, "2505.00001"),
        lambda c: comments.post_comment(c, ada, "2505.00001", "hello"),
    ):
        with write_transaction(engine) as connection, pytest.raises(NotFound, match="no paper"):
            act(connection)
    with engine.connect() as connection:
        assert profiles.upvoted_papers(connection, ada) == []


# --- over HTTP -------------------------------------------------------------------------------


@pytest.mark.usefixtures("papers")
def test_form_vote_redirects_back_and_marks_the_card(app: FastAPI, engine: Engine) -> None:
    client, token = client_as(app, engine, add_user(engine, "ada"))
    came_from = "http://testserver/papers/date/2025-05-01?x=1"
    response = client.post(
        "/papers/2505.00002/vote", data={"csrf_token": token}, headers={"referer": came_from}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/papers/date/2025-05-01?x=1"
    page = client.get("/papers/date/2025-05-01").text
    assert page.count('aria-pressed="true"') == 1
    assert 'action="/papers/2505.00002/unvote"' in page
    assert '<span class="votes-count">1</span>' in page
    paper = client.get("/papers/2505.00002").text
    assert 'aria-pressed="true"' in paper and "votes-voted" in paper


@pytest.mark.usefixtures("papers")
def test_form_vote_never_redirects_off_site(app: FastAPI, engine: Engine) -> None:
    client, token = client_as(app, engine, add_user(engine, "ada"))
    for referer in ("https://evil.example.org/phish", "", "//evil.example.org/x"):
        response = client.post(
            "/papers/2505.00001/vote", data={"csrf_token": token}, headers={"referer": referer}
        )
        assert response.status_code == 303
        assert response.headers["location"] in ("/papers/2505.00001", "/"), referer


@pytest.mark.usefixtures("papers")
def test_json_vote_and_unvote(app: FastAPI, engine: Engine) -> None:
    client, token = client_as(app, engine, add_user(engine, "ada"))
    headers = {"accept": "application/json", "x-csrf-token": token}
    assert client.post("/papers/2505.00001/vote", headers=headers).json() == {
        "upvotes": 8,
        "voted": True,
    }
    assert client.post("/papers/2505.00001/vote", headers=headers).json()["upvotes"] == 8
    assert client.post("/papers/2505.00001/unvote", headers=headers).json() == {
        "upvotes": 7,
        "voted": False,
    }
    old_style = client.post("/papers/hep-th/9901001/vote", headers=headers)
    assert old_style.json() == {"upvotes": 3, "voted": True}
    missing = client.post("/papers/2505.09999/vote", headers=headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


@pytest.mark.usefixtures("papers")
@pytest.mark.parametrize("action", ["vote", "unvote"])
def test_votes_need_the_csrf_token(app: FastAPI, engine: Engine, action: str) -> None:
    client, _token = client_as(app, engine, add_user(engine, "ada"))
    assert client.post(f"/papers/2505.00001/{action}").status_code == 403
    forged = client.post(f"/papers/2505.00001/{action}", data={"csrf_token": "forged"})
    assert forged.status_code == 403 and "did not come from this site" in forged.text
    assert counts(engine, "2505.00001") == (7, 7, 0)


@pytest.mark.usefixtures("papers")
def test_anonymous_voters_are_sent_to_log_in(app: FastAPI, engine: Engine) -> None:
    client, token = client_as(app, engine, None)
    page = client.get("/papers/date/2025-05-01").text
    assert 'class="vote-form"' not in page and 'href="/login?next=/papers/date/2025-05-01"' in page
    response = client.post(
        "/papers/2505.00001/vote",
        data={"csrf_token": token},
        headers={"referer": "http://testserver/papers/2505.00001"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fpapers%2F2505.00001"
    as_json = client.post("/papers/2505.00001/vote", headers={"accept": "application/json"})
    assert as_json.status_code == 401
    assert counts(engine, "2505.00001") == (7, 7, 0)


@pytest.mark.usefixtures("papers")
def test_fifty_concurrent_voters_keep_the_total_exact(engine: Engine, settings: Settings) -> None:
    """Every recount must see every vote committed before it: the final burst (all 50 at once)
    leaves a wrong total unless each voter waits for the paper's row lock before counting."""
    voters = [add_user(engine, f"voter{n:02d}") for n in range(50)]
    sessions = [start_session(engine, user) for user in voters]
    start, finish = threading.Barrier(len(voters)), threading.Barrier(len(voters))
    errors: list[str] = []

    def vote(n: int, base: str) -> None:
        cookie, token = sessions[n]
        rng = random.Random(n)
        headers = {"accept": "application/json", "x-csrf-token": token}

        def post(action: str) -> None:
            response = client.post(f"/papers/2505.00001/{action}", headers=headers)
            if response.status_code != 200:
                errors.append(f"{n} {action}: {response.status_code} {response.text}")

        with httpx.Client(base_url=base, cookies={SESSION_COOKIE: cookie}, timeout=60) as client:
            start.wait()
            for _ in range(4):
                post(rng.choice(("vote", "unvote")))
            finish.wait()
            post("vote" if n % 2 == 0 else "unvote")  # half end voted, half not

    with live_server(settings.replace(secret_key=SECRET)) as base:
        threads = [threading.Thread(target=vote, args=(n, base)) for n in range(len(voters))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert counts(engine, "2505.00001") == (7 + 25, 7, 25)
