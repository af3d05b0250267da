"""The load mix of bench/load.py, also run small by tests/test_load_small.py.

Each simulated browser is one account, logged in either with a session cookie made beforehand
or through the real log-in form, and runs a closed loop until the deadline: it picks a request
kind by weight (:data:`MIX`) and waits for the answer before the next one (``think`` seconds in
between, none by default). Page views: the front page, a day's list, a week's list, a paper page,
trending, a search with a query made from the catalog's own titles. Writes, sent as the site's
own pages send them: upvotes and un-votes as ``community.js`` does (``fetch`` with the CSRF token
in ``X-CSRF-Token``, JSON back), comments as the plain comment form does (303 to the comment).
The CSRF token is read from the first page, as a browser has it.

Every request's kind, status and latency is recorded in a :class:`Tally`, with what each
client knows it changed: the papers it has voted for (the answer's ``voted``) and the ids of the
comments it posted (from the 303's ``Location``). :func:`check_counts` then compares the
database with that, paper by paper and vote by vote.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import Engine, func, insert, select

from papertide.accounts.passwords import hash_password
from papertide.accounts.sessions import CookieSigner, create_session
from papertide.accounts.users import Role, create_user, user_by_username
from papertide.community.comments import POST_LIMIT
from papertide.db.engine import write_transaction
from papertide.db.schema import comments, daily_entries, papers, users, votes
from papertide.web.auth import SESSION_COOKIE
from papertide.web.rendering import week_url

SECRET = "papertide-load-test-secret-key-0123456789"
PASSWORD = "load-mix-password-2026"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
COMMENT_ID = re.compile(r"#comment-(\d+)$")
LOCKED = "database is locked"
USER_PREFIX = "loader"

# Request kinds and their weights: mostly reading, about a third writing.
MIX = {
    "front": 8,
    "day": 12,
    "week": 5,
    "paper": 20,
    "trending": 5,
    "search": 14,
    "upvote": 18,
    "unvote": 10,
    "comment": 8,
}
PAGES = ("front", "day", "week", "paper", "trending", "search", "login")
WRITES = ("upvote", "unvote", "comment", "login")
# What a POST answers when all is well (a GET: 200); 429 (a rate limit) is counted apart.
POSTED = {"upvote": 200, "unvote": 200, "comment": 303, "login": 303}
HOT_PAPERS = 30  # most votes go to these, so voters queue on the same rows
HOT_SHARE = 0.7


# --- what the clients browse ---------------------------------------------------------------------


@dataclass(frozen=True)
class Catalog:
    days: list[str]
    weeks: list[str]
    papers: list[str]
    hot: list[str]
    queries: list[str]


def _words(title: str) -> list[str]:
    return re.findall(r"[A-Za-z][A-Za-z-]{2,}", re.sub(r"\$[^$]*\$", " ", title))


def read_catalog(
    engine: Engine, seed: int = 7, queries: int = 300, hot: int = HOT_PAPERS
) -> Catalog:
    """The days, weeks and papers of the database's lists, hot papers, and search queries
    made from real titles: 2-3 word pieces, whole titles, arXiv ids, quoted phrases."""
    rng = random.Random(seed)
    with engine.connect() as connection:
        days = sorted(connection.execute(select(daily_entries.c.day).distinct()).scalars())
        listed = connection.execute(
            select(papers.c.arxiv_id, papers.c.title)
            .where(papers.c.id.in_(select(daily_entries.c.paper_id)))
            .order_by(papers.c.id)
        ).all()
    assert days and listed, "the catalog has no lists"
    made: list[str] = []
    while len(made) < queries:
        arxiv_id, title = rng.choice(listed)
        words = _words(title)
        roll = rng.random()
        if roll < 0.1 or len(words) < 3:
            made.append(arxiv_id)
        elif roll < 0.2:
            made.append(" ".join(title.split()))
        elif roll < 0.3:
            start = rng.randint(0, len(words) - 2)
            made.append('"' + " ".join(words[start : start + 2]).lower() + '"')
        else:
            n = rng.randint(2, 3)
            start = rng.randint(0, len(words) - n)
            made.append(" ".join(words[start : start + n]).lower())
    ids = [arxiv_id for arxiv_id, _ in listed]
    return Catalog(
        days=[d.isoformat() for d in days],
        weeks=sorted({week_url(d) for d in days}),
        papers=ids,
        hot=rng.sample(ids, min(hot, len(ids))),
        queries=made,
    )


@dataclass(frozen=True)
class Account:
    username: str
    cookie: str | None  # a signed session cookie; None: logs in through the form


def make_accounts(engine: Engine, count: int, by_form: int = 0) -> list[Account]:
    """``count`` accounts (``loader000``...). The first ``by_form`` are made by
    ``create_user`` and log in through the form; the others are rows with the same password's
    hash (argon2 once, not per account) and get a session cookie signed with :data:`SECRET`,
    made as a log-in makes it."""
    signer = CookieSigner(SECRET)
    shared_hash = hash_password(PASSWORD)
    made = []
    with write_transaction(engine) as connection:
        for n in range(count):
            name = f"{USER_PREFIX}{n:03d}"
            if n < by_form:
                create_user(connection, name, f"{name}@example.org", PASSWORD)
                made.append(Account(name, None))
                continue
            connection.execute(
                insert(users).values(
                    username=name,
                    username_key=name,
                    email=f"{name}@example.org",
                    password_hash=shared_hash,
                    role=Role.USER.value,
                    created_at=datetime.now(UTC),
                )
            )
            user = user_by_username(connection, name)
            raw = create_session(connection, user, ip="127.0.0.1", user_agent="load mix")
            made.append(Account(name, signer.sign(raw)))
    return made


# --- the record --------------------------------------------------------------------------------


@dataclass
class Tally:
    """Every request's (kind, status, seconds), and what the clients know they changed."""

    samples: list[tuple[str, int, float]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # 5xx with body, transport errors
    locked: list[str] = field(default_factory=list)  # answers that said "database is locked"
    unexpected: list[str] = field(default_factory=list)  # statuses a kind should not answer
    unknown: Counter[str] = field(default_factory=Counter)  # writes whose outcome is unknown
    votes: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    comment_ids: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    elapsed: float = 0.0

    def statuses(self, kind: str | None = None) -> Counter[int]:
        return Counter(s for k, s, _ in self.samples if kind is None or k == kind)

    @property
    def server_errors(self) -> int:
        return sum(1 for _, status, _ in self.samples if status >= 500)

    @property
    def transport_errors(self) -> int:
        return sum(1 for _, status, _ in self.samples if status == 0)

    def rate_limited(self) -> Counter[str]:
        return Counter(k for k, s, _ in self.samples if s == 429)


def excerpt(body: str, limit: int = 600) -> str:
    """A response body as a line of text: an HTML page's main part without tags."""
    main = re.search(r"<main.*?</main>", body, re.S)
    if main or body.lstrip().startswith("<"):
        body = re.sub(r"<[^>]+>", " ", main[0] if main else body)
    return " ".join(body.split())[:limit]


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def summary(tally: Tally) -> list[dict[str, Any]]:
    """Per kind (and all together): requests, p50/p95/p99 in ms, statuses."""
    kinds = sorted({k for k, _, _ in tally.samples}, key=lambda k: (k not in MIX, k))
    rows = []
    for kind in [*kinds, "all"]:
        ms = sorted(1000 * s for k, _, s in tally.samples if kind in (k, "all"))
        rows.append(
            {
                "kind": kind,
                "requests": len(ms),
                "rps": len(ms) / tally.elapsed if tally.elapsed else 0.0,
                "p50": percentile(ms, 0.50),
                "p95": percentile(ms, 0.95),
                "p99": percentile(ms, 0.99),
                "statuses": dict(sorted(tally.statuses(None if kind == "all" else kind).items())),
            }
        )
    return rows


# --- one simulated browser ---------------------------------------------------------------------


class Browser:
    def __init__(
        self,
        base_url: str,
        account: Account,
        catalog: Catalog,
        tally: Tally,
        seed: int,
        mix: dict[str, int] | None = None,
    ) -> None:
        self.account = account
        self.mix = mix or MIX
        self.catalog = catalog
        self.tally = tally
        self.rng = random.Random(seed)
        self.csrf = ""
        self.comments_left = POST_LIMIT.count
        self.http = httpx.AsyncClient(
            base_url=base_url,
            follow_redirects=False,
            timeout=httpx.Timeout(180.0),
            limits=httpx.Limits(max_connections=1),
            headers={"user-agent": f"papertide-load-mix ({account.username})"},
        )
        if account.cookie:
            self.http.cookies.set(SESSION_COOKIE, account.cookie)

    async def request(self, kind: str, method: str, url: str, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            response = await self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self.tally.samples.append((kind, 0, time.perf_counter() - started))
            self.tally.problems.append(f"{kind} {method} {url}: {exc!r}")
            if kind in WRITES:
                self.tally.unknown[kind] += 1
            return None
        seconds = time.perf_counter() - started
        status = response.status_code
        self.tally.samples.append((kind, status, seconds))
        body = response.text
        if status >= 500:
            self.tally.problems.append(f"{kind} {method} {url} -> {status}: {excerpt(body)}")
        elif status != (POSTED[kind] if method == "POST" else 200) and status != 429:
            self.tally.unexpected.append(f"{kind} {method} {url} -> {status}: {excerpt(body)}")
        if LOCKED in body:
            self.tally.locked.append(f"{kind} {method} {url} -> {status}")
        return response

    async def log_in(self) -> None:
        page = await self.request("login", "GET", "/login")
        match = CSRF.search(page.text) if page is not None else None
        if match is None:
            return
        form = {"login": self.account.username, "password": PASSWORD, "csrf_token": match[1]}
        await self.request("login", "POST", "/login", data={**form, "next": "/"})

    async def start(self) -> None:
        if self.account.cookie is None:
            await self.log_in()
        page = await self.request("front", "GET", "/")
        match = CSRF.search(page.text) if page is not None else None
        self.csrf = match[1] if match else ""

    async def run(self, deadline: float, think: float) -> None:
        kinds, weights = list(self.mix), list(self.mix.values())
        while time.monotonic() < deadline:
            kind = self.rng.choices(kinds, weights)[0]
            await getattr(self, f"_{kind}")()
            if think:
                await asyncio.sleep(self.rng.expovariate(1 / think))

    async def _front(self) -> None:
        await self.request("front", "GET", "/")

    async def _day(self) -> None:
        await self.request("day", "GET", f"/papers/date/{self.rng.choice(self.catalog.days)}")

    async def _week(self) -> None:
        await self.request("week", "GET", self.rng.choice(self.catalog.weeks))

    async def _paper(self) -> None:
        await self.request("paper", "GET", f"/papers/{self.rng.choice(self.catalog.papers)}")

    async def _trending(self) -> None:
        await self.request("trending", "GET", "/papers/trending")

    async def _search(self) -> None:
        query = quote(self.rng.choice(self.catalog.queries))
        await self.request("search", "GET", f"/search?q={query}")

    def _pick(self) -> str:
        if self.rng.random() < HOT_SHARE:
            return self.rng.choice(self.catalog.hot)
        return self.rng.choice(self.catalog.papers)

    async def _vote(self, kind: str, arxiv_id: str) -> None:
        path = f"/papers/{arxiv_id}"
        headers = {
            "accept": "application/json",
            "x-csrf-token": self.csrf,
            "referer": f"{self.http.base_url}{path}",
        }
        response = await self.request(
            kind, "POST", f"{path}/{'vote' if kind == 'upvote' else 'unvote'}", headers=headers
        )
        if response is None or response.status_code != 200:
            return
        state = response.json()
        mine = self.tally.votes[self.account.username]
        if state["voted"]:
            mine.add(arxiv_id)
        else:
            mine.discard(arxiv_id)
        if state["voted"] != (kind == "upvote"):
            self.tally.unexpected.append(f"{kind} {arxiv_id} answered {state}")

    async def _upvote(self) -> None:
        await self._vote("upvote", self._pick())

    async def _unvote(self) -> None:
        mine = sorted(self.tally.votes[self.account.username])
        arxiv_id = self.rng.choice(mine) if mine and self.rng.random() < 0.9 else self._pick()
        await self._vote("unvote", arxiv_id)

    async def _comment(self) -> None:
        if self.comments_left <= 0:  # the rate limit's allowance is used up: read instead
            await self._paper()
            return
        arxiv_id = self._pick()
        n = len(self.tally.comment_ids[self.account.username])
        body = (
            f"Comment {n} by @{self.account.username} under load: does $O(n \\log n)$ hold "
            f"for **{arxiv_id}**? See [the abstract](https://arxiv.org/abs/{arxiv_id})."
        )
        form = {"csrf_token": self.csrf, "body": body, "parent_id": ""}
        headers = {"referer": f"{self.http.base_url}/papers/{arxiv_id}"}
        response = await self.request(
            "comment", "POST", f"/papers/{arxiv_id}/comments", data=form, headers=headers
        )
        if response is None:
            return
        if response.status_code == 429:
            self.comments_left = 0
            return
        self.comments_left -= 1
        found = COMMENT_ID.search(response.headers.get("location", ""))
        if response.status_code == 303 and found:
            self.tally.comment_ids[self.account.username].add(int(found[1]))


async def run_clients(
    base_url: str,
    accounts: list[Account],
    catalog: Catalog,
    seconds: float,
    *,
    think: float = 0.0,
    seed: int = 1,
    mix: dict[str, int] | None = None,
) -> Tally:
    """One browser per account for ``seconds`` (log-ins and first pages included), picking
    request kinds by the weights of ``mix`` (default :data:`MIX`)."""
    tally = Tally()
    browsers = [
        Browser(base_url, account, catalog, tally, seed * 100_003 + n, mix)
        for n, account in enumerate(accounts)
    ]
    started = time.monotonic()
    deadline = started + seconds

    async def browse(browser: Browser) -> None:
        await browser.start()
        await browser.run(deadline, think)

    try:
        await asyncio.gather(*(browse(b) for b in browsers))
    finally:
        tally.elapsed = time.monotonic() - started
        await asyncio.gather(*(b.http.aclose() for b in browsers))
    return tally


# --- the checks --------------------------------------------------------------------------------


def check_counts(engine: Engine, tally: Tally) -> list[str]:
    """Differences between the database and what the clients know they did: each account's
    votes, each paper's vote rows and shown total (``upvotes - imported_upvotes``), each
    account's comments. Empty when everything adds up exactly."""
    wrong: list[str] = []
    with engine.connect() as connection:
        rows = connection.execute(
            select(users.c.username, papers.c.arxiv_id)
            .select_from(votes.join(users, users.c.id == votes.c.user_id))
            .join(papers, papers.c.id == votes.c.paper_id)
            .where(users.c.username.like(f"{USER_PREFIX}%"))
        ).all()
        per_paper = dict(
            connection.execute(
                select(papers.c.arxiv_id, func.count())
                .select_from(votes.join(papers, papers.c.id == votes.c.paper_id))
                .group_by(papers.c.arxiv_id)
            ).all()
        )
        shown = dict(
            connection.execute(
                select(papers.c.arxiv_id, papers.c.upvotes - papers.c.imported_upvotes).where(
                    papers.c.upvotes != papers.c.imported_upvotes
                )
            ).all()
        )
        posted = connection.execute(
            select(users.c.username, comments.c.id).join(users, users.c.id == comments.c.user_id)
        ).all()
    in_db: dict[str, set[str]] = defaultdict(set)
    for username, arxiv_id in rows:
        in_db[username].add(arxiv_id)
    for username in sorted(set(in_db) | set(tally.votes)):
        if in_db[username] != tally.votes[username]:
            extra = sorted(in_db[username] - tally.votes[username])
            missing = sorted(tally.votes[username] - in_db[username])
            wrong.append(f"votes of {username}: extra in db {extra}, missing {missing}")
    expected = Counter(a for voted in tally.votes.values() for a in voted)
    for arxiv_id in sorted(set(expected) | set(per_paper) | set(shown)):
        want = expected.get(arxiv_id, 0)
        have = (per_paper.get(arxiv_id, 0), shown.get(arxiv_id, 0))
        if have != (want, want):
            wrong.append(f"paper {arxiv_id}: {want} votes made, rows/shown {have}")
    comment_db: dict[str, set[int]] = defaultdict(set)
    for username, comment_id in posted:
        comment_db[username].add(comment_id)
    for username in sorted(set(comment_db) | set(tally.comment_ids)):
        if comment_db[username] != tally.comment_ids[username]:
            wrong.append(
                f"comments of {username}: {len(tally.comment_ids[username])} posted, "
                f"{len(comment_db[username])} in the database"
            )
    return wrong
