"""Authorship claims: claimed from the paper page, decided by moderators, at most one verified
person per author entry; verified authors show on the paper page and on their profile."""

from __future__ import annotations

import pytest
from factories import make_record, write_records
from fastapi import FastAPI
from sqlalchemy import Engine
from test_moderation import audit_actions, logged_in, make_user, post

from papertide import claims, moderation
from papertide.accounts.users import Role
from papertide.catalog.records import Author
from papertide.claims import ClaimStatus
from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from papertide.web.app import create_app

AUTHORS = [Author("Ada Lovelace"), Author("Alan Turing"), Author("Grace Hopper")]


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def paper(engine: Engine) -> str:
    write_records(engine, make_record("2505.00001", title="Engines", authors=AUTHORS))
    return "2505.00001"


def test_a_claim_waits_for_a_moderator(engine: Engine, paper: str) -> None:
    ada = make_user(engine, "ada")
    mia = make_user(engine, "mia", Role.MODERATOR)
    with write_transaction(engine) as connection:
        claim = claims.claim_author(connection, ada, "arXiv:2505.00001v1", 0)
        assert (claim.arxiv_id, claim.author_name, claim.username, claim.status) == (
            paper,
            "Ada Lovelace",
            "ada",
            ClaimStatus.PENDING,
        )
        view = claims.paper_claims(connection, paper, ada)
        assert view.verified == () and not view.can_claim
        assert view.authors[0].viewer_status is ClaimStatus.PENDING
        with pytest.raises(Conflict, match=r"already claimed an author of 2505\.00001"):
            claims.claim_author(connection, ada, paper, 1)
        with pytest.raises(PermissionDenied):
            claims.decide_claim(connection, ada, claim.id, True)
        decided = claims.decide_claim(connection, mia, claim.id, True)
        assert (decided.status, decided.decided_by) == (ClaimStatus.APPROVED, "mia")
        with pytest.raises(Conflict, match="was already approved"):
            claims.decide_claim(connection, mia, claim.id, False)
        with pytest.raises(NotFound, match="no authorship claim 999"):
            claims.decide_claim(connection, mia, 999, True)
        view = claims.paper_claims(connection, paper, None)
        assert [(a.name, a.verified_username) for a in view.verified] == [("Ada Lovelace", "ada")]
        assert not view.can_claim  # anonymous
        assert claims.verified_authorships(connection, ada) == [
            claims.Authorship(paper, "Engines", "Ada Lovelace")
        ]
        assert claims.pending_claims(connection) == []
    assert audit_actions(engine) == [("mia", "claim.approve", "paper:2505.00001")]


def test_one_verified_person_per_author_entry(engine: Engine, paper: str) -> None:
    ada, bob, eve = (make_user(engine, name) for name in ("ada", "bob", "eve"))
    mia = make_user(engine, "mia", Role.MODERATOR)
    with write_transaction(engine) as connection:
        first = claims.claim_author(connection, ada, paper, 0)
        rival = claims.claim_author(connection, eve, paper, 0)  # two pending claims may coexist
        claims.decide_claim(connection, mia, first.id, True)
        with pytest.raises(Conflict, match=r"Ada Lovelace on 2505\.00001 is already verified"):
            claims.decide_claim(connection, mia, rival.id, True)
        claims.decide_claim(connection, mia, rival.id, False)
        with pytest.raises(Conflict, match="already verified as someone else"):
            claims.claim_author(connection, bob, paper, 0)
        turned_down = claims.claim_author(connection, bob, paper, 1)
        claims.decide_claim(connection, mia, turned_down.id, False)
        with pytest.raises(Conflict, match="a moderator turned it down"):
            claims.claim_author(connection, bob, paper, 1)
        assert claims.paper_claims(connection, paper, bob).can_claim  # another entry, though
        claims.claim_author(connection, bob, paper, 2)
    actions = [a[1] for a in audit_actions(engine)]
    assert actions == ["claim.approve", "claim.reject", "claim.reject"]


def test_claims_on_missing_authors_or_hidden_papers(engine: Engine, paper: str) -> None:
    ada = make_user(engine, "ada")
    mia = make_user(engine, "mia", Role.MODERATOR)
    with write_transaction(engine) as connection:
        with pytest.raises(InvalidInput, match="has no author number 4"):
            claims.claim_author(connection, ada, paper, 3)
        with pytest.raises(NotFound, match=r"no paper 2505\.09999"):
            claims.claim_author(connection, ada, "2505.09999", 0)
        with pytest.raises(NotFound, match="not an arXiv id"):
            claims.claim_author(connection, ada, "junk", 0)
        moderation.hide_paper(connection, mia, paper)
        with pytest.raises(NotFound, match=r"no paper 2505\.00001"):
            claims.claim_author(connection, ada, paper, 0)
        with pytest.raises(NotFound):
            claims.paper_claims(connection, paper, ada)
        assert claims.paper_claims(connection, paper, mia).authors  # moderators see it


def test_hidden_papers_leave_the_profile(engine: Engine, paper: str) -> None:
    ada = make_user(engine, "ada")
    mia = make_user(engine, "mia", Role.MODERATOR)
    with write_transaction(engine) as connection:
        claim = claims.claim_author(connection, ada, paper, 0)
        claims.decide_claim(connection, mia, claim.id, True)
        moderation.hide_paper(connection, mia, paper)
        assert claims.verified_authorships(connection, ada) == []


def test_claim_from_the_paper_page_and_see_the_badge(
    engine: Engine, paper: str, app: FastAPI
) -> None:
    make_user(engine, "ada")
    make_user(engine, "mia", Role.MODERATOR)
    anonymous, ada, moderator = (logged_in(app, name) for name in (None, "ada", "mia"))
    assert "to claim your authorship" in anonymous.get(f"/papers/{paper}").text
    page = ada.get(f"/papers/{paper}").text
    assert "I am Grace Hopper" in page and "No author has been verified yet." in page
    response = post(ada, "/claims", {"arxiv_id": paper, "position": 2})
    assert response.status_code == 303 and response.headers["location"] == f"/papers/{paper}#claims"
    page = ada.get(f"/papers/{paper}").text
    assert "Your claim to be Grace Hopper: waiting for a moderator." in page
    assert "I am Alan Turing" not in page
    again = post(ada, "/claims", {"arxiv_id": paper, "position": 1})
    assert again.status_code == 409
    assert post(ada, "/claims", {"arxiv_id": paper, "position": 9}).status_code == 400

    queue = moderator.get("/moderation").text
    assert "Grace Hopper" in queue and 'href="/users/ada"' in queue
    with engine.connect() as connection:
        (pending,) = claims.pending_claims(connection)
    assert f'action="/moderation/claims/{pending.id}/approve"' in queue
    assert post(moderator, f"/moderation/claims/{pending.id}/approve").status_code == 303
    page = anonymous.get(f"/papers/{paper}").text
    assert 'href="/users/ada" title="Verified author: ada"' in page
    profile = anonymous.get("/users/ada").text
    assert "Verified authorship" in profile and "as Grace Hopper" in profile
    assert "Suspend ada" not in profile  # only for those who may
