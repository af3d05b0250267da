"""Who may do what, on every route: the expected-access table (tests/access_table.py) walked for
every role, on both engines; then CSRF: every form a person can reach carries its token, and
every form post refuses a request without a valid one.

The table must cover the app: a route without a case fails the first test, so a new route is
added to the table (and so to docs/security.md) with the answers each role should get.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from access_table import CASES, LOGIN, OK, PASSWORD, ROLES, Case, markdown_table
from digests import add_subscriber
from factories import listed, make_record, rows, write_records
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from people import SECRET, start_session
from sqlalchemy import Engine, insert
from starlette.routing import compile_path

from papertide import audit, claims, moderation, organizations, submissions
from papertide.accounts import resets, tokens
from papertide.accounts.passwords import hash_password
from papertide.accounts.users import Role, User, user_by_username
from papertide.catalog.records import Author, Version
from papertide.community import comments
from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.db.schema import users
from papertide.digest import subscriptions as subs
from papertide.personal import feed_tokens, saves
from papertide.web.app import create_app
from papertide.web.auth import ANON_COOKIE, SESSION_COOKIE

DAY = "2025-05-02"
ACCOUNTS = {"user": "ada", "other": "bob", "moderator": "mia", "admin": "ann"}
ANON_ID = "anonymous-browser-0123456789abcdef"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
REFUSED = "did not come from this site"


# --- the world: something for each role to act on --------------------------------------------


@dataclass
class World:
    app: FastAPI
    engine: Engine
    names: dict[str, dict[str, Any]] = field(default_factory=dict)  # role -> placeholders
    sessions: dict[str, tuple[str, str]] = field(default_factory=dict)  # role -> cookie, csrf
    api_tokens: dict[str, str] = field(default_factory=dict)  # role -> raw API token
    anon_csrf: str = ""


def _add_users(engine: Engine, names: list[str], role: Role = Role.USER, **values: Any) -> None:
    with write_transaction(engine) as connection:
        connection.execute(
            insert(users),
            [
                {
                    "username": name,
                    "username_key": name.lower(),
                    "email": f"{name.lower()}@example.org",
                    "password_hash": values.get("password_hash", "!"),
                    "role": role.value,
                    "created_at": values.get("created_at", datetime(2025, 1, 15, tzinfo=UTC)),
                }
                for name in names
            ],
        )


def _recent(arxiv_id: str, **overrides: Any) -> Any:
    v1 = datetime.now(UTC) - timedelta(days=1)  # young enough to submit
    return make_record(arxiv_id, versions=[Version(1, v1)], published_at=v1, **overrides)


def build_world(engine: Engine, settings: Settings) -> World:
    app = create_app(settings.replace(secret_key=SECRET))
    world = World(app, engine)
    day = datetime.strptime(DAY, "%Y-%m-%d").date()
    records = [
        make_record("2505.00090", title="Hidden", listing=listed(day, 90)),
        make_record("2505.00092", title="Commented", listing=listed(day, 92)),
        make_record("2505.00091", authors=[Author(f"Author {i}") for i in range(12)]),
    ]
    for n in range(len(ROLES)):
        records += [
            make_record(f"2505.001{n:02d}", title=f"Sparse attention {n}", listing=listed(day, n)),
            make_record(f"2505.002{n:02d}", listing=listed(day, 20 + n)),
            make_record(f"2505.003{n:02d}", listing=listed(day, 30 + n)),
            _recent(f"2505.004{n:02d}"),
            _recent(f"2505.005{n:02d}"),
            _recent(f"2505.006{n:02d}"),
        ]
    write_records(engine, *records)
    hashed = hash_password(PASSWORD)
    for role, name in ACCOUNTS.items():
        kind = {"moderator": Role.MODERATOR, "admin": Role.ADMIN}.get(role, Role.USER)
        _add_users(engine, [name], kind, password_hash=hashed)
    indexes = range(len(ROLES))
    _add_users(engine, [f"mod{n}" for n in indexes], Role.MODERATOR)
    plain = [f"{p}{n}" for p in ("t", "s", "m", "r", "c", "reset") for n in indexes]
    _add_users(engine, [*plain, "feeder"])
    _add_users(engine, [f"newcomer{n}" for n in indexes], created_at=datetime.now(UTC))
    with write_transaction(engine) as connection:
        people = {name: user_by_username(connection, name) for name in ACCOUNTS.values()}
        ada, ann = people["ada"], people["ann"]
        lab = organizations.create_organization(connection, ann, "lab", "The Lab")
        organizations.set_member(connection, ann, lab, "ada", "admin")
        moderation.hide_paper(connection, ann, "2505.00090")
        saves.create_folder(connection, ada, "shared", public=True)
        saves.create_folder(connection, ada, "private")
        saves.save_paper(connection, ada, "2505.00100", "shared")
        world.names = {role: {"role": role, "n": n, "day": DAY} for n, role in enumerate(ROLES)}
        for n, role in enumerate(ROLES):
            names = world.names[role]
            names.update(
                me=ACCOUNTS.get(role, "ada"),
                week="2025-W18",
                month="2025-05",
                paper=f"2505.001{n:02d}",
                to_hide=f"2505.002{n:02d}",
                to_unhide=f"2505.003{n:02d}",
                submit=f"2505.004{n:02d}",
                hf_submit=f"2505.005{n:02d}",
                hidden_view="2505.00090",
                claimed="2505.00091",
                to_publish=saves.create_folder(connection, ada, f"to publish {n}"),
                to_unpublish=saves.create_folder(connection, ada, f"to hide {n}", public=True),
                to_delete=saves.create_folder(connection, ada, f"to delete {n}"),
            )
            organizations.set_member(connection, ann, lab, f"r{n}", "member")
            moderation.hide_paper(connection, ann, names["to_unhide"])
            moderation.suspend_user(connection, ann, f"s{n}")
            claimant = user_by_username(connection, f"c{n}")
            names["claim"] = claims.claim_author(connection, claimant, "2505.00091", n + 2).id
            for key in ("edit_comment", "delete_comment", "api_comment"):
                names[key] = comments.post_comment(connection, ada, "2505.00092", "Mine").id
            names["api_token"] = tokens.create_token(connection, ada, f"token {n}")[0].id
            started = resets.start_reset(connection, f"reset{n}@example.org")
            assert started is not None
            names["reset"] = started[1]
        for role, name in ACCOUNTS.items():
            world.api_tokens[role] = tokens.create_token(connection, people[name], "api")[1]
        feeder = user_by_username(connection, "feeder")
        feed = feed_tokens.create_token(connection, feeder)[1]  # a private feed's secret URL
    for name in ACCOUNTS.values():
        add_subscriber(engine, f"{name}@example.org", user_id=people[name].id)
    for n, role in enumerate(ROLES):
        names = world.names[role]
        for key in ("sub", "unsub", "resub"):
            names[key] = add_subscriber(engine, f"{key}{n}@example.org").token
        waiting = add_subscriber(engine, f"confirm{n}@example.org", confirmed=False)
        names["signed"] = subs.confirmation_token(SECRET, waiting)
        names["feed"] = feed
        newcomer = _user(engine, f"newcomer{n}")
        submissions.submit_paper(engine, settings, newcomer, f"2505.006{n:02d}")
        with engine.connect() as connection:
            names["entry"] = submissions.submissions_of(connection, settings, newcomer)[0].entry_id
    for role, name in ACCOUNTS.items():
        world.sessions[role] = start_session(engine, people[name])
    client = TestClient(app)
    client.cookies.set(ANON_COOKIE, ANON_ID)
    match = CSRF_INPUT.search(client.get("/login").text)
    assert match
    world.anon_csrf = match.group(1)
    return world


def _user(engine: Engine, name: str) -> User:
    with engine.connect() as connection:
        return user_by_username(connection, name)


# --- asking as a role ------------------------------------------------------------------------


def ask(
    world: World,
    client: TestClient,
    role: str,
    case: Case,
    *,
    csrf: str | None = "own",
    bearer: bool = True,
) -> httpx.Response:
    """``case``'s request as ``role``: its session (or a spare one) and, for form posts, its
    CSRF token (``csrf``: "own", None for none, or a token to send instead)."""
    names = world.names[role]
    url = case.url.format(**names)
    client.cookies.clear()
    headers: dict[str, str] = {}
    if case.auth == "token":
        if role in world.api_tokens and bearer:
            headers["Authorization"] = f"Bearer {world.api_tokens[role]}"
        if not bearer and role in world.sessions:
            client.cookies.set(SESSION_COOKIE, world.sessions[role][0])
        body = {k: v.format(**names) if isinstance(v, str) else v for k, v in case.body.items()}
        return client.request(case.method, url, json=body or None, headers=headers)
    if role == "anonymous":
        client.cookies.set(ANON_COOKIE, ANON_ID)
        token = world.anon_csrf
    else:
        user = _user(world.engine, ACCOUNTS[role])
        cookie, token = (
            start_session(world.engine, user) if case.fresh_session else world.sessions[role]
        )
        client.cookies.set(SESSION_COOKIE, cookie)
    if case.method == "GET":
        return client.get(url)
    form = {k: str(v).format(**names) for k, v in case.body.items()}
    if csrf is not None:
        form["csrf_token"] = token if csrf == "own" else csrf
    return client.request(case.method, url, data=form)


def outcome(response: httpx.Response) -> str:
    status = response.status_code
    if status == 401 or (status == 303 and response.headers["location"].startswith("/login")):
        return LOGIN
    if 200 <= status < 400:
        return OK
    return str(status)


def reason(response: httpx.Response) -> str:
    """The error message of an error page or JSON error, for failure reports."""
    if response.headers.get("content-type", "").startswith("application/json"):
        return str(response.json().get("error", {}).get("message", ""))[:200]
    found = re.search(r'class="error-message">([^<]*)<', response.text)
    return found.group(1)[:200] if found else ""


def app_routes(app: FastAPI) -> Iterator[tuple[str, str, Any]]:
    """(method, path, compiled path regex) of every route, in the order the app matches them."""
    for route in iter_route_contexts(app.routes):
        for method in sorted(route.methods or ()):
            yield method, route.path, compile_path(route.path)[0]


@pytest.fixture
def world(engine: Engine, settings: Settings) -> World:
    return build_world(engine, settings)


# --- the table ----------------------------------------------------------------------------------


def test_the_table_has_every_route_and_no_other(settings: Settings) -> None:
    app = create_app(settings)
    declared = list(app_routes(app))
    in_app = {(method, path) for method, path, _ in declared}
    in_table = {(case.method, case.route) for case in CASES}
    assert sorted(in_app - in_table) == [], "routes missing from tests/access_table.py"
    assert sorted(in_table - in_app) == [], "cases for routes the app does not have"
    for case in CASES:  # each case's URL reaches the route it is written for
        sample = re.sub(r"\{[a-z_]+(:[a-z]+)?\}", "2505.00100", urlsplit(case.url).path)
        reached = next(p for m, p, regex in declared if m == case.method and regex.match(sample))
        assert reached == case.route, (case.url, reached)


def test_the_docs_show_this_table() -> None:
    """docs/security.md holds the table as ``python tests/access_table.py`` prints it."""
    docs = (Path(__file__).parents[1] / "docs" / "security.md").read_text()
    start = docs.index("<!-- access-table: generated from tests/access_table.py -->\n")
    shown = docs[docs.index("\n", start) + 1 : docs.index("<!-- /access-table -->")]
    assert shown == markdown_table(), "regenerate it: .venv/bin/python tests/access_table.py"
    for name in ("trusted_proxies", "max_request_body_bytes", "cookie_secure", "make audit"):
        assert name in docs


def test_every_route_answers_each_role_as_the_table_says(world: World) -> None:
    client = TestClient(world.app, follow_redirects=False)
    wrong = []
    for case in CASES:
        for role, want in zip(ROLES, case.answers, strict=True):
            response = ask(world, client, role, case)
            got = outcome(response)
            if got != want:
                wrong.append(
                    f"{case.method} {case.url} as {role}: {got} ({reason(response)}), "
                    f"expected {want}"
                )
    assert not wrong, "\n".join(wrong)
    with world.engine.connect() as connection:
        entries, _ = audit.recent(connection, 1000)
    built = {"ann"}  # the world was built by ann; every later action is the table's
    assert {e.actor for e in entries} == built | {"mia", "ada"}


def test_nobody_sees_another_persons_private_things(world: World) -> None:
    """Pages that list one's own things (tokens, folders, submissions, subscription) show them
    to their owner, and to nobody else."""
    client = TestClient(world.app, follow_redirects=False)
    with write_transaction(world.engine) as connection:
        ada = user_by_username(connection, "ada")
        tokens.create_token(connection, ada, "ada-secret-laptop")
        saves.create_folder(connection, ada, "Ada private reading")
    submissions.submit_paper(world.engine, world.app.state.settings, ada, "2505.00400")
    private = {
        "/settings": ["ada-secret-laptop", "ada@example.org"],
        "/settings/interests": ["Ada private reading"],
        "/submit": ["2505.00400"],
        "/subscribe": ["ada@example.org"],
        "/users/ada": ["Ada private reading", "ada@example.org", "ada-secret-laptop"],
    }
    for role in ROLES:
        for page, secrets in private.items():
            text = ask(world, client, role, Case("GET", page, page, ("ok",) * 5)).text
            for secret in secrets:
                owner_page = role == "user" and page != "/users/ada"
                assert (secret in text) == owner_page, (role, page, secret)


# --- CSRF ---------------------------------------------------------------------------------------

# Form posts that take no CSRF token, and why (docs/security.md lists them):
# the one-click unsubscribe a mail client sends (RFC 8058) has only the secret link.
CSRF_EXEMPT = {("POST", "/subscriptions/{token}/unsubscribe")}


class _Forms(HTMLParser):
    """The post forms of a page (action, hidden csrf_token value or None) and its links."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[list[Any]] = []
        self.links: list[str] = []
        self._open: list[Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.links.append(str(values["href"]))
        if tag == "form" and (values.get("method") or "get").lower() == "post":
            self._open = [values.get("action") or "", None]
            self.forms.append(self._open)
        if tag == "input" and self._open is not None and values.get("name") == "csrf_token":
            self._open[1] = values.get("value")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


SEEDS = [
    "/", "/papers/date/{day}", "/papers/{paper}", "/papers/2505.00092", "/papers/2505.00090",
    "/users/ada", "/users/bob", "/orgs", "/orgs/lab", "/moderation", "/settings",
    "/settings/interests", "/submit", "/subscribe", "/subscriptions/{sub}",
    "/subscriptions/{sub}/unsubscribe", "/subscriptions/confirm/{signed}", "/for-you/feed",
    "/users/ada/folders/shared", "/users/ada/folders/private", "/login", "/signup",
    "/reset-password", "/reset-password/{reset}", "/search?q=attention",
]  # fmt: skip
SKIP = re.compile(r"^/(api|feeds|static|docs|redoc|openapi)|\.(atom|rss|json|md)(\?|$)")


def crawl(world: World, role: str, limit: int = 90) -> list[tuple[str, str, str | None]]:
    """(page, form action, its csrf_token) of every post form on the pages ``role`` reaches
    from :data:`SEEDS` by following links on the site."""
    client = TestClient(world.app, follow_redirects=False)
    queue = [seed.format(**world.names[role]) for seed in SEEDS]
    seen: set[str] = set()
    found = []
    while queue and len(seen) < limit:
        page = queue.pop(0)
        if page in seen or SKIP.search(page):
            continue
        seen.add(page)
        response = ask(world, client, role, Case("GET", page, page, ("ok",) * 5))
        if not response.headers.get("content-type", "").startswith("text/html"):
            continue
        parser = _Forms()
        parser.feed(response.text)
        found += [(page, action, token) for action, token in parser.forms]
        queue += [link for link in parser.links if link.startswith("/") and link not in seen]
    assert len(seen) > 30, seen
    return found


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_every_post_form_carries_the_viewers_csrf_token(world: World) -> None:
    """Forms are crawled as each role (moderators and admins see more forms); the one-click
    unsubscribe form is the one exemption."""
    routes = [(path, regex) for method, path, regex in app_routes(world.app) if method == "POST"]
    missing = []
    actions = set()
    for role in ROLES:
        expected = world.anon_csrf if role == "anonymous" else world.sessions[role][1]
        for page, action, token in crawl(world, role):
            path = urlsplit(action).path
            actions.add(path)
            route = next(route for route, regex in routes if regex.match(path))
            if token != expected and ("POST", route) not in CSRF_EXEMPT:
                missing.append(f"{role}: form to {action!r} on {page} has token {token!r}")
    assert not missing, "\n".join(sorted(set(missing)))
    for kind in ("/vote", "/comments", "/logout", "/settings/tokens", "/moderation/papers/hide",
                 "/orgs/lab/members", "/subscribe", "/login", "/folders"):  # fmt: skip
        assert any(action.endswith(kind) for action in actions), (kind, sorted(actions))


def _allowed_role(case: Case) -> str | None:
    """A role the table lets through (the one the refusal must come from CSRF alone)."""
    for role in ("admin", "moderator", "user", "other", "anonymous"):
        if case.answers[ROLES.index(role)] == OK:
            return role
    return None


def test_every_form_post_refuses_a_missing_or_foreign_csrf_token(world: World) -> None:
    """Every write of the site but the exemptions needs the CSRF token of the viewer's own
    session: none, a forged one or another person's is 403. Writes of the JSON API take a
    bearer token, never a cookie, so a cookie alone gets 401 there: no CSRF to worry about."""
    client = TestClient(world.app, follow_redirects=False)
    forms = [c for c in CASES if c.method != "GET" and c.auth == "session" and _allowed_role(c)]
    posts = {(m, p) for m, p, _ in app_routes(world.app) if m != "GET" and not p.startswith("/api")}
    assert {(c.method, c.route) for c in forms} == posts  # every form post of the site is tried
    wrong = []
    for case in forms:
        role = _allowed_role(case)
        assert role is not None
        others = [r for r in ACCOUNTS if r != role]
        foreign = world.sessions[others[0]][1]
        for token in (None, "forged-token", foreign):
            response = ask(world, client, role, case, csrf=token)
            refused = response.status_code == 403 and REFUSED in response.text
            if ((case.method, case.route) in CSRF_EXEMPT) == refused:
                wrong.append(
                    f"{case.method} {case.url} as {role} with {token}: {outcome(response)}"
                )
    for case in (c for c in CASES if c.method != "GET" and c.auth == "token"):
        for role in ACCOUNTS:
            got = outcome(ask(world, client, role, case, bearer=False))
            if got == OK:
                wrong.append(f"{case.method} {case.url} as {role} with a cookie only: {got}")
    assert not wrong, "\n".join(wrong)
    assert rows(world.engine, "SELECT count(*) FROM votes")[0][0] == 0  # nothing got through
