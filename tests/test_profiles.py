"""Profile pages: who the user is, their comments (newest first), their upvotes when public."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from factories import listed, make_record, write_records
from fastapi import FastAPI
from people import SECRET, add_user, client_as
from sqlalchemy import Engine

from papertide.accounts.users import Role, User
from papertide.community import comments, profiles, votes
from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.web.app import create_app

DAY = date(2025, 5, 1)
T0 = datetime(2025, 5, 1, 12, tzinfo=UTC)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings.replace(secret_key=SECRET))


@pytest.fixture
def activity(engine: Engine) -> dict[str, User]:
    write_records(
        engine,
        make_record("2505.00001", title="Sparse $O(n)$ attention", listing=listed(DAY, 0)),
        make_record("2505.00002", title="Dense baselines", listing=listed(DAY, 1)),
    )
    people = {
        "ada": add_user(engine, "Ada"),
        "bob": add_user(engine, "bob", votes_public=False),
        "mod": add_user(engine, "mod", Role.MODERATOR),
    }
    with write_transaction(engine) as connection:
        ada = people["ada"]
        comments.post_comment(connection, ada, "2505.00001", "older **one**", now=T0)
        comments.post_comment(
            connection, ada, "2505.00002", "newer one", now=T0 + timedelta(hours=1)
        )
        gone = comments.post_comment(connection, ada, "2505.00002", "regretted", now=T0)
        comments.delete_comment(connection, ada, gone.id)
        votes.upvote(connection, ada, "2505.00001", now=T0)
        votes.upvote(connection, ada, "2505.00002", now=T0 + timedelta(hours=2))
        votes.upvote(connection, people["bob"], "2505.00001")
    return people


def test_profile_shows_comments_newest_first_and_public_upvotes(
    app: FastAPI, engine: Engine, activity: dict[str, User]
) -> None:
    client, _ = client_as(app, engine, None)
    response = client.get("/users/ada")  # usernames are case-insensitive
    assert response.status_code == 200
    html = response.text
    assert "<h1>Ada</h1>" in html
    assert 'Member since <time datetime="2025-01-15">Jan 15, 2025</time>' in html
    assert html.index("newer one") < html.index("older <strong>one</strong>")
    assert "regretted" not in html  # deleted comments are not listed
    assert 'href="/papers/2505.00002#comment-' in html
    upvoted = html.split('id="profile-upvoted-title"', 1)[1]
    assert upvoted.index("Dense baselines") < upvoted.index("Sparse $O(n)$ attention")
    assert "role-badge" not in html


def test_private_upvotes_show_only_to_their_owner(
    app: FastAPI, engine: Engine, activity: dict[str, User]
) -> None:
    stranger, _ = client_as(app, engine, activity["ada"])
    html = stranger.get("/users/bob").text
    assert "bob keeps their upvotes private." in html and "Sparse" not in html
    owner, _ = client_as(app, engine, activity["bob"])
    own = owner.get("/users/bob").text
    assert "Only you can see this list." in own and "Sparse $O(n)$ attention" in own


def test_moderators_wear_a_badge(app: FastAPI, engine: Engine, activity: dict[str, User]) -> None:
    client, _ = client_as(app, engine, None)
    html = client.get("/users/mod").text
    assert '<span class="role-badge role-moderator">Moderator</span>' in html
    assert "No comments yet." in html and "No upvotes yet." in html


def test_unknown_users_are_404(app: FastAPI, engine: Engine) -> None:
    client, _ = client_as(app, engine, None)
    response = client.get("/users/nobody")
    assert response.status_code == 404 and "no user &#39;nobody&#39;" in response.text
    as_json = client.get("/users/nobody", headers={"accept": "application/json"})
    assert as_json.json()["error"]["code"] == "not_found"


def test_profile_domain_function(engine: Engine, activity: dict[str, User]) -> None:
    with engine.connect() as connection:
        seen = profiles.profile(connection, "BOB", activity["ada"])
        own = profiles.profile(connection, "bob", activity["bob"])
    assert seen.upvoted is None and not seen.is_self
    assert own.is_self and [p.arxiv_id for p in own.upvoted or []] == ["2505.00001"]


def test_comment_authors_link_to_their_profiles(
    app: FastAPI, engine: Engine, activity: dict[str, User]
) -> None:
    client, _ = client_as(app, engine, None)
    page = client.get("/papers/2505.00001").text
    assert '<a class="comment-author" href="/users/Ada">Ada</a>' in page
