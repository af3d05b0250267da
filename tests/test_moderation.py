"""Moderation: hidden papers, unpublished entries, suspensions, the audit log, and who may do
what on every new route (a table of route and role to the expected answer), CSRF included.

The helpers at the top (users with roles, logged-in clients, form posts with their CSRF token,
papers young enough to submit) are shared with the other community test files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from factories import listed, make_record, rows, write_records
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select, update

from papertide import audit, claims, daily, moderation, organizations, submissions
from papertide.accounts.users import Role, User, create_user, user_by_username
from papertide.catalog.records import Author, Version
from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.db.schema import daily_entries, papers, users
from papertide.errors import Conflict, InvalidInput, PermissionDenied
from papertide.web.app import create_app
from papertide.web.auth import SESSION_COOKIE

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LONG_AGO = datetime.now(UTC) - timedelta(days=60)  # accounts old enough to submit directly

# --- shared helpers -------------------------------------------------------------------------


def make_user(
    engine: Engine, name: str, role: Role = Role.USER, created: datetime | None = None
) -> User:
    """An account (password PASSWORD) created ``created`` (default: long ago)."""
    with write_transaction(engine) as connection:
        return create_user(
            connection, name, f"{name}@example.org", PASSWORD, role=role, now=created or LONG_AGO
        )


def quick_users(engine: Engine, *names: str) -> None:
    """Accounts that never log in (no password hashing: a test needs many)."""
    with write_transaction(engine) as connection:
        connection.execute(
            insert(users),
            [
                {
                    "username": name,
                    "username_key": name.lower(),
                    "email": f"{name}@example.org",
                    "password_hash": "-",
                    "role": "user",
                    "created_at": LONG_AGO,
                }
                for name in names
            ],
        )


def recent_paper(arxiv_id: str, days_old: float = 1, **overrides: Any) -> Any:
    """A record whose v1 is ``days_old`` days before the real now (web routes use the clock)."""
    v1 = datetime.now(UTC) - timedelta(days=days_old)
    return make_record(arxiv_id, versions=[Version(1, v1)], published_at=v1, **overrides)


def csrf_of(client: TestClient) -> str:
    logged_in = SESSION_COOKIE in client.cookies
    page = client.get("/" if logged_in else "/login")
    match = CSRF.search(page.text)
    assert match, "no CSRF token on the page"
    return match.group(1)


def post(client: TestClient, path: str, data: dict[str, Any] | None = None) -> httpx.Response:
    """A form post with this client's CSRF token."""
    return client.post(path, data={**(data or {}), "csrf_token": csrf_of(client)})


def logged_in(app: FastAPI, username: str | None) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    if username is not None:
        page = client.get("/login")
        token = CSRF.search(page.text)
        assert token
        response = client.post(
            "/login", data={"login": username, "password": PASSWORD, "csrf_token": token.group(1)}
        )
        assert response.status_code == 303, response.text
    return client


def outcome(response: httpx.Response) -> int | str:
    """The status, or "login" for the redirect to the log-in page."""
    location = response.headers.get("location", "")
    if response.status_code == 303 and location.startswith("/login"):
        return "login"
    return response.status_code


def audit_actions(engine: Engine) -> list[tuple[str | None, str, str]]:
    with engine.connect() as connection:
        entries, _ = audit.recent(connection, 500)
    return [(e.actor, e.action, e.target) for e in reversed(entries)]


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


# --- hidden papers --------------------------------------------------------------------------

DAY = date(2025, 5, 1)
NOW = datetime(2025, 5, 2, 12, 0, tzinfo=UTC)


def ids(cards: list[daily.PaperCard]) -> list[str]:
    return [c.arxiv_id for c in cards]


def test_hidden_paper_leaves_every_list_and_answers_404(
    engine: Engine, settings: Settings, app: FastAPI
) -> None:
    write_records(
        engine,
        make_record("2505.00001", listing=listed(DAY, 0), upvotes=5),
        make_record("2505.00002", listing=listed(DAY, 1)),
        make_record("2505.00003", listing=listed(date(2025, 4, 30), 0)),
    )
    daily.compute_trending(engine, settings, now=NOW)
    mia = make_user(engine, "mia", Role.MODERATOR)
    make_user(engine, "ada")
    with write_transaction(engine) as connection:
        assert moderation.hide_paper(connection, mia, "arXiv:2505.00001v2", "spam") == "2505.00001"
        moderation.hide_paper(connection, mia, "2505.00003")
        with pytest.raises(Conflict, match="already hidden"):
            moderation.hide_paper(connection, mia, "2505.00001")
    with engine.connect() as connection:
        assert ids(daily.day_list(connection, DAY)) == ["2505.00002"]
        assert ids(daily.week_list(connection, 2025, 18).cards) == ["2505.00002"]
        assert ids(daily.month_list(connection, 2025, 5).cards) == ["2505.00002"]
        trending = daily.trending_list(connection)
        assert ids(trending.cards) == ["2505.00002"] and trending.total == 1
        # April 30 has only a hidden paper: it is no longer a day with papers.
        assert daily.previous_day(connection, DAY) is None
        assert daily.latest_list_day(connection, date(2025, 4, 30)) is None
        assert daily.day_view(connection, DAY).previous is None
    daily.compute_trending(engine, settings, now=NOW)
    with engine.connect() as connection:
        assert ids(daily.trending_list(connection).cards) == ["2505.00002"]

    anonymous, ada, moderator = (logged_in(app, name) for name in (None, "ada", "mia"))
    for client in (anonymous, ada):
        response = client.get("/papers/2505.00001")
        assert response.status_code == 404 and "no paper 2505.00001" in response.text
        assert "2505.00001" not in client.get("/papers/date/2025-05-01").text
    page = moderator.get("/papers/2505.00001")
    assert page.status_code == 200 and "This paper is hidden" in page.text

    assert outcome(post(moderator, "/moderation/papers/unhide", {"arxiv_id": "2505.00001"})) == 303
    assert anonymous.get("/papers/2505.00001").status_code == 200
    with engine.connect() as connection:
        assert ids(daily.day_list(connection, DAY)) == ["2505.00001", "2505.00002"]
    assert audit_actions(engine) == [
        ("mia", "paper.hide", "paper:2505.00001"),
        ("mia", "paper.hide", "paper:2505.00003"),
        ("mia", "paper.unhide", "paper:2505.00001"),
    ]


def test_hide_from_the_paper_page_comes_back_to_it(engine: Engine, app: FastAPI) -> None:
    write_records(engine, make_record("2505.00001", listing=listed(DAY, 0)))
    make_user(engine, "mia", Role.MODERATOR)
    moderator = logged_in(app, "mia")
    assert "Hide paper" in moderator.get("/papers/2505.00001").text
    response = moderator.post(
        "/moderation/papers/hide",
        data={"arxiv_id": "2505.00001", "reason": "off topic", "csrf_token": csrf_of(moderator)},
        headers={"referer": "http://testserver/papers/2505.00001"},
    )
    assert response.status_code == 303 and response.headers["location"] == "/papers/2505.00001"
    with engine.connect() as connection:
        entries, _ = audit.recent(connection)
    assert entries[0].details == {"reason": "off topic"}
    assert "2505.00001" in moderator.get("/moderation").text  # listed under hidden papers


def test_only_published_entries_appear(engine: Engine, settings: Settings) -> None:
    write_records(
        engine,
        make_record("2505.00001", listing=listed(DAY, 0)),
        make_record("2505.00002", listing=listed(DAY, 1)),
        make_record("2505.00003", listing=listed(date(2025, 5, 3), 0)),
    )
    with write_transaction(engine) as connection:
        for arxiv_id, status in (("2505.00002", "pending"), ("2505.00003", "rejected")):
            paper_id = select(papers.c.id).where(papers.c.arxiv_id == arxiv_id).scalar_subquery()
            connection.execute(
                update(daily_entries)
                .where(daily_entries.c.paper_id == paper_id)
                .values(status=status)
            )
    daily.compute_trending(engine, settings, now=NOW)
    with engine.connect() as connection:
        assert ids(daily.day_list(connection, DAY)) == ["2505.00001"]
        assert ids(daily.month_list(connection, 2025, 5).cards) == ["2505.00001"]
        assert ids(daily.trending_list(connection).cards) == ["2505.00001"]
        assert daily.next_day(connection, DAY) is None  # May 3 has only a rejected entry
        assert daily.paper_page(connection, "2505.00003").days_listed == ()


# --- suspension -----------------------------------------------------------------------------


def test_suspend_revokes_sessions_and_blocks_log_in(engine: Engine, app: FastAPI) -> None:
    make_user(engine, "ada")
    make_user(engine, "mia", Role.MODERATOR)
    ada, moderator = logged_in(app, "ada"), logged_in(app, "mia")
    assert ada.get("/settings").status_code == 200
    profile = moderator.get("/users/ada")
    assert profile.status_code == 200 and "Suspend ada" in profile.text
    assert outcome(post(moderator, "/moderation/users/ada/suspend")) == 303
    assert outcome(ada.get("/settings")) == "login"  # the session was revoked on the server
    assert rows(engine, "SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id "
                "WHERE u.username = 'ada' AND s.revoked_at IS NULL")[0][0] == 0  # fmt: skip
    again = TestClient(app, follow_redirects=False)
    token = CSRF.search(again.get("/login").text)
    assert token
    refused = again.post(
        "/login", data={"login": "ada", "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert refused.status_code == 403 and "suspended" in refused.text
    assert "ada" in moderator.get("/moderation").text
    assert outcome(post(moderator, "/moderation/users/ada/suspend")) == 409
    assert outcome(post(moderator, "/moderation/users/ada/unsuspend")) == 303
    assert outcome(logged_in(app, "ada").get("/settings")) == 200
    assert audit_actions(engine) == [
        ("mia", "user.suspend", "user:ada"),
        ("mia", "user.unsuspend", "user:ada"),
    ]


def test_suspension_follows_least_privilege(engine: Engine) -> None:
    ada = make_user(engine, "ada")
    mia = make_user(engine, "mia", Role.MODERATOR)
    max_ = make_user(engine, "max", Role.MODERATOR)
    ann = make_user(engine, "ann", Role.ADMIN)
    make_user(engine, "bea", Role.ADMIN)
    with write_transaction(engine) as connection:
        for target in ("ann", "max"):
            with pytest.raises(PermissionDenied, match="only administrators"):
                moderation.suspend_user(connection, mia, target)
        with pytest.raises(PermissionDenied, match="only moderators"):
            moderation.suspend_user(connection, ada, "mia")
        with pytest.raises(InvalidInput, match="yourself"):
            moderation.suspend_user(connection, ann, "ann")
        assert not moderation.suspend_user(connection, ann, "max").active
        assert not moderation.suspend_user(connection, ann, "bea").active
        assert not moderation.suspend_user(connection, mia, "ada").active
    assert moderation.may_suspend(mia, ada) and not moderation.may_suspend(mia, max_)
    assert moderation.may_suspend(ann, max_) and not moderation.may_suspend(ann, ann)
    assert not moderation.may_suspend(None, ada)


# --- the audit log page ---------------------------------------------------------------------


def test_audit_log_pages_newest_first(engine: Engine, app: FastAPI) -> None:
    ann = make_user(engine, "ann", Role.ADMIN)
    write_records(engine, make_record("2505.00001"))
    with write_transaction(engine) as connection:
        for n in range(55):
            audit.record(connection, ann, "test.action", f"thing:{n}", {"n": n})
    admin = logged_in(app, "ann")
    first = admin.get("/admin/audit")
    assert first.status_code == 200 and "55 entries" in first.text
    assert "thing:54" in first.text and "thing:4<" not in first.text
    assert 'href="/admin/audit?page=2"' in first.text
    second = admin.get("/admin/audit?page=2")
    assert "thing:4<" in second.text and "thing:5<" not in second.text
    assert admin.get("/admin/audit?page=3").status_code == 404
    assert admin.get("/admin/audit?page=0").status_code == 400


def test_moderation_queue_lists_waiting_work(engine: Engine, settings: Settings) -> None:
    write_records(
        engine,
        recent_paper("2505.00001", authors=[Author("Ada Lovelace")]),
        recent_paper("2505.00002"),
    )
    ada = make_user(engine, "ada")
    neo = make_user(engine, "neo", created=datetime.now(UTC))
    mia = make_user(engine, "mia", Role.MODERATOR)
    with write_transaction(engine) as connection:
        claims.claim_author(connection, ada, "2505.00001", 0)
    submissions.submit_paper(engine, settings, neo, "2505.00002", "a must-read")
    with engine.connect() as connection:
        queue = moderation.queue(connection, mia)
        with pytest.raises(PermissionDenied):
            moderation.queue(connection, ada)
    assert [(s.arxiv_id, s.submitter, s.comment) for s in queue.submissions] == [
        ("2505.00002", "neo", "a must-read")
    ]
    assert [(c.arxiv_id, c.username, c.author_name) for c in queue.claims] == [
        ("2505.00001", "ada", "Ada Lovelace")
    ]


# --- who may do what: every new route, every role --------------------------------------------

ROLES = ("anonymous", "user", "other", "moderator", "admin")
LOGIN_AS = {"anonymous": None, "user": "ada", "other": "bob", "moderator": "mia", "admin": "ann"}


@dataclass
class World:
    """Objects for each role to act on, so that no role's action changes another's case."""

    names: dict[str, dict[str, Any]] = field(default_factory=dict)  # role -> placeholders


CLAIMED = "2505.09999"  # two author entries per role: one claim to approve, one to reject


def _build_world(engine: Engine, settings: Settings) -> World:
    world = World()
    authors = [Author(f"Author {n}") for n in range(2 * len(ROLES))]
    records = [recent_paper(CLAIMED, authors=authors)]
    for n, role in enumerate(ROLES):
        world.names[role] = {
            "role": role,
            "paper": f"2505.{n + 100:05d}",
            "hidden": f"2505.{n + 200:05d}",
            "waiting": [f"2505.{n * 2 + 300:05d}", f"2505.{n * 2 + 301:05d}"],
        }
        names = world.names[role]
        records += [recent_paper(names["paper"]), recent_paper(names["hidden"])]
        records += [recent_paper(arxiv_id) for arxiv_id in names["waiting"]]
    write_records(engine, *records)
    for name, role_ in (("ada", Role.USER), ("bob", Role.USER), ("mia", Role.MODERATOR)):
        make_user(engine, name, role_)
    ann = make_user(engine, "ann", Role.ADMIN)
    quick_users(engine, *(f"{prefix}_{role}" for role in ROLES for prefix in "tsmrcd"))
    with write_transaction(engine) as connection:
        lab = organizations.create_organization(connection, ann, "lab", "The Lab")
        organizations.set_member(connection, ann, lab, "ada", "admin")
        for n, role in enumerate(ROLES):
            names = world.names[role]
            organizations.set_member(connection, ann, lab, f"r_{role}", "member")
            moderation.hide_paper(connection, ann, names["hidden"])
            moderation.suspend_user(connection, ann, f"s_{role}")
            for key, prefix, position in (("claim0", "c", 2 * n), ("claim1", "d", 2 * n + 1)):
                claimant = user_by_username(connection, f"{prefix}_{role}")
                names[key] = claims.claim_author(connection, claimant, CLAIMED, position).id
    for n, role in enumerate(ROLES):
        names = world.names[role]
        newcomer = make_user(engine, f"new{n}", created=datetime.now(UTC))
        for key, arxiv_id in zip(("entry0", "entry1"), names["waiting"], strict=True):
            submissions.submit_paper(engine, settings, newcomer, arxiv_id)
            with engine.connect() as connection:
                mine = submissions.submissions_of(connection, settings, newcomer)
            names[key] = mine[0].entry_id
    return world


# (method, path, form) with {placeholders} filled in per role -> answers for ROLES
ACCESS: list[tuple[str, str, dict[str, Any], tuple[int | str, ...]]] = [
    ("GET", "/submit", {}, ("login", 200, 200, 200, 200)),
    ("POST", "/submit", {"paper": "{paper}"}, ("login", 303, 303, 303, 303)),
    ("POST", "/claims", {"arxiv_id": CLAIMED, "position": 1}, ("login", 303, 303, 303, 303)),
    ("GET", "/orgs", {}, (200, 200, 200, 200, 200)),
    ("POST", "/orgs", {"slug": "org-{role}", "name": "{role}"}, ("login", 403, 403, 403, 303)),
    ("GET", "/orgs/lab", {}, (200, 200, 200, 200, 200)),
    ("GET", "/orgs/nope", {}, (404, 404, 404, 404, 404)),
    ("POST", "/orgs/lab/members", {"username": "m_{role}"}, ("login", 303, 403, 403, 303)),
    ("POST", "/orgs/lab/members/r_{role}/remove", {}, ("login", 303, 403, 403, 303)),
    ("POST", "/orgs/lab/edit", {"name": "The Lab"}, ("login", 303, 403, 403, 303)),
    ("GET", "/moderation", {}, ("login", 403, 403, 200, 200)),
    ("POST", "/moderation/papers/hide", {"arxiv_id": "{paper}"}, ("login", 403, 403, 303, 303)),
    ("POST", "/moderation/papers/unhide", {"arxiv_id": "{hidden}"}, ("login", 403, 403, 303, 303)),
    ("POST", "/moderation/papers/hide", {"arxiv_id": "2505.77777"}, ("login", 403, 403, 404, 404)),
    ("POST", "/moderation/users/t_{role}/suspend", {}, ("login", 403, 403, 303, 303)),
    ("POST", "/moderation/users/s_{role}/unsuspend", {}, ("login", 403, 403, 303, 303)),
    ("POST", "/moderation/users/nobody/suspend", {}, ("login", 403, 403, 404, 404)),
    ("POST", "/moderation/submissions/{entry0}/approve", {}, ("login", 403, 403, 303, 303)),
    ("POST", "/moderation/submissions/{entry1}/reject", {}, ("login", 403, 403, 303, 303)),
    ("POST", "/moderation/submissions/999999/approve", {}, ("login", 403, 403, 404, 404)),
    ("POST", "/moderation/claims/{claim0}/approve", {}, ("login", 403, 403, 303, 303)),
    ("POST", "/moderation/claims/{claim1}/reject", {}, ("login", 403, 403, 303, 303)),
    ("POST", "/moderation/claims/999999/reject", {}, ("login", 403, 403, 404, 404)),
    ("GET", "/admin/audit", {}, ("login", 403, 403, 403, 200)),
    # A hidden paper does not exist for people who may not see it.
    ("POST", "/claims", {"arxiv_id": "2505.00200", "position": 0}, ("login", 404, 404, 303, 303)),
]


def test_every_new_route_answers_each_role_as_the_table_says(
    engine: Engine, settings: Settings, app: FastAPI
) -> None:
    world = _build_world(engine, settings)
    clients = {role: logged_in(app, LOGIN_AS[role]) for role in ROLES}
    tokens = {role: csrf_of(clients[role]) for role in ROLES}
    wrong = []
    for method, path, form, expected in ACCESS:
        for role, want in zip(ROLES, expected, strict=True):
            names = world.names[role]
            url = path.format(**names)
            if method == "GET":
                response = clients[role].get(url)
            else:
                data = {k: str(v).format(**names) for k, v in form.items()}
                response = clients[role].post(url, data={**data, "csrf_token": tokens[role]})
            if outcome(response) != want:
                wrong.append(f"{method} {url} as {role}: {outcome(response)}, expected {want}")
    assert wrong == []
    actors = {actor for actor, _, _ in audit_actions(engine)}
    assert actors == {"ann", "mia", "ada"}  # only the allowed acted (ada as the lab's admin)


POSTS = [
    "/submit",
    "/claims",
    "/orgs",
    "/orgs/lab/members",
    "/orgs/lab/members/ada/remove",
    "/orgs/lab/edit",
    "/moderation/papers/hide",
    "/moderation/papers/unhide",
    "/moderation/users/ada/suspend",
    "/moderation/users/ada/unsuspend",
    "/moderation/submissions/1/approve",
    "/moderation/submissions/1/reject",
    "/moderation/claims/1/approve",
    "/moderation/claims/1/reject",
]


def test_every_new_form_refuses_a_post_without_its_csrf_token(engine: Engine, app: FastAPI) -> None:
    ann = make_user(engine, "ann", Role.ADMIN)
    make_user(engine, "ada")
    write_records(engine, recent_paper("2505.00001"))
    with write_transaction(engine) as connection:
        lab = organizations.create_organization(connection, ann, "lab", "The Lab")
        organizations.set_member(connection, ann, lab, "ada", "member")
    admin = logged_in(app, "ann")
    data = {"paper": "2505.00001", "arxiv_id": "2505.00001", "position": 0, "slug": "x",
            "name": "X", "username": "ada", "role": "admin"}  # fmt: skip
    for path in POSTS:
        for token in (None, "forged"):
            form = data if token is None else {**data, "csrf_token": token}
            response = admin.post(path, data=form)
            assert response.status_code == 403, (path, token, response.text)
            assert "did not come from this site" in response.text
    assert audit_actions(engine) == [
        ("ann", "org.create", "org:lab"),
        ("ann", "org.member.add", "org:lab"),
    ]
    assert rows(engine, "SELECT count(*) FROM daily_entries")[0][0] == 0
