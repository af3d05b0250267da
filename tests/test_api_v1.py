"""Papertide's own JSON API (/api/v1/) on both engines: every endpoint's values, cursor paging,
ETags, rate limits, tokens for writes, the one error shape, and the schema and docs pages."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from browser import live_server, needs_chromium
from factories import make_record, write_records
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from people import SECRET, add_user
from sqlalchemy import Engine, insert, select, text, update

from papertide import daily, organizations
from papertide.accounts.ratelimit import Limit, SharedCounter
from papertide.accounts.tokens import create_token
from papertide.accounts.users import Role, user_by_username
from papertide.catalog.records import Author, Listing, OrganizationRef, PaperRecord, Version
from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.db.schema import rate_limits
from papertide.digest import subscriptions
from papertide.errors import InvalidInput
from papertide.web.app import create_app
from papertide.web.pagination import Cursors, Kind

D1, D2, D3 = date(2025, 2, 3), date(2025, 2, 4), date(2025, 3, 3)  # D1, D2: week 2025-W06
LAB = OrganizationRef("lab", "The Lab")
V1 = datetime(2025, 2, 1, 12, tzinfo=UTC)
# arxiv id: (title, listed on, position, upvotes, extra fields)
PAPERS: dict[str, tuple[str, date | None, int | None, int, dict[str, Any]]] = {
    "2502.00001": ("Speculative decoding with small draft models", D1, 0, 5, {"code": True}),
    "2502.00002": ("KV cache eviction for long prompts", D1, 1, 9, {"org": True}),
    "2502.00003": ("Protein folding with equivariant networks", D1, 2, 5, {"cat": "q-bio.BM"}),
    "2502.00004": ("Bounds for sparse graphs", D1, None, 5, {}),
    "2502.00005": ("Robot grasping from a single image", D1, 3, 0, {"cat": "cs.RO"}),
    "2502.00006": ("Quantum error correction with surface codes", D2, 0, 2, {"org": True}),
    "2502.00007": ("Paged attention for serving language models", D2, 1, 12, {"code": True}),
    "2502.00008": ("A hidden paper about decoding", D1, 4, 50, {}),
    "2502.00009": ("An unlisted paper about decoding drafts", None, None, 3, {}),
    "2503.00001": ("Diffusion language models", D3, 0, 1, {"org": True}),
}
HIDDEN = "2502.00008"
VISIBLE = [a for a in PAPERS if a != HIDDEN]
TRENDING_NOW = datetime(2025, 2, 5, 12, tzinfo=UTC)


def record(arxiv_id: str) -> PaperRecord:
    title, day, position, upvotes, extra = PAPERS[arxiv_id]
    n = int(arxiv_id[-2:]) + (100 if arxiv_id.startswith("2503") else 0)
    published = V1 + timedelta(hours=n // 2)  # pairs share a date: the id breaks the tie
    return make_record(
        arxiv_id,
        title=title,
        abstract=f"{title}. We study this and report results.",
        authors=[Author("Ada Lovelace"), Author("Grace Hopper"), Author("Alan Turing")],
        categories=[extra.get("cat", "cs.CL")],
        versions=[Version(1, published)],
        upvotes=upvotes,
        code_url="https://github.com/lab/code" if extra.get("code") else None,
        organization=LAB if extra.get("org") else None,
        listing=Listing(day, position) if day else None,
    )


@dataclass
class Site:
    app: FastAPI
    client: TestClient
    alice: str  # API tokens
    bob: str
    engine: Engine

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> Response:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.get(path, headers=headers, **kwargs)

    def send(self, method: str, path: str, token: str | None, **kwargs: Any) -> Response:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.request(method, path, headers=headers, **kwargs)


def seed(engine: Engine, settings: Settings) -> tuple[str, str]:
    """The catalog above, trending computed, users alice (member of the lab) and bob, and
    API tokens for both."""
    write_records(engine, *[record(a) for a in PAPERS])
    root = add_user(engine, "root", Role.ADMIN)
    alice = add_user(engine, "alice")
    bob = add_user(engine, "bob")
    with write_transaction(engine) as connection:
        connection.execute(
            text("UPDATE papers SET hidden_at = created_at WHERE arxiv_id = :a"), {"a": HIDDEN}
        )
        lab = organizations.organization_by_slug(connection, "lab")
        organizations.set_member(connection, root, lab, "alice", "admin")
        _row, alice_token = create_token(connection, alice, "tests")
        _row, bob_token = create_token(connection, bob, "tests")
    daily.compute_trending(engine, settings, now=TRENDING_NOW)
    return alice_token, bob_token


def make_app(settings: Settings, **changes: Any) -> FastAPI:
    return create_app(
        settings.replace(secret_key=SECRET, embed_in_background=False, scheduler=False, **changes)
    )


@pytest.fixture
def site(engine: Engine, settings: Settings) -> Iterator[Site]:
    alice, bob = seed(engine, settings)
    app = make_app(settings)
    yield Site(app, TestClient(app), alice, bob, engine)
    app.state.engine.dispose()


def ids(body: dict[str, Any]) -> list[str]:
    return [item["arxiv_id"] for item in body["items"]]


def walk(site: Site, path: str, token: str | None = None, **params: Any) -> list[dict[str, Any]]:
    """Every item of a list, page by page along its Link headers; checks the cursors agree."""
    items: list[dict[str, Any]] = []
    response = site.get(path, token, params=params)
    for _ in range(100):
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        link = response.headers.get("link")
        if body["next_cursor"] is None:
            assert link is None
            return items
        assert link is not None and 'rel="next"' in link
        url = re.fullmatch(r"<http://testserver([^>]+)>; rel=\"next\"", link)
        assert url is not None and body["next_cursor"] in url.group(1)
        response = site.get(url.group(1), token)
    raise AssertionError("the list did not end")


# --- lists ---------------------------------------------------------------------------------------


def test_catalog_is_newest_first_and_pages_walk_it_whole(site: Site) -> None:
    newest = sorted(VISIBLE, key=lambda a: (record(a).versions[0].submitted_at, a), reverse=True)
    first = site.get("/api/v1/papers").json()
    assert ids(first) == newest and first["next_cursor"] is None
    for limit in (1, 2, 3):
        walked = [item["arxiv_id"] for item in walk(site, "/api/v1/papers", limit=limit)]
        assert walked == newest  # no duplicates, no gaps, same order
    card = next(i for i in first["items"] if i["arxiv_id"] == "2502.00002")
    assert card == {
        "arxiv_id": "2502.00002",
        "title": "KV cache eviction for long prompts",
        "excerpt": "KV cache eviction for long prompts. We study this and report results.",
        "authors": ["Ada Lovelace", "Grace Hopper", "Alan Turing"],
        "author_count": 3,
        "published_at": "2025-02-01T13:00:00Z",
        "upvotes": 9,
        "organization": {"slug": "lab", "name": "The Lab"},
        "code_url": None,
        "project_url": None,
        "listed_on": "2025-02-03",
        "position": None,
        "url": "/papers/2502.00002",
        "voted": None,
    }


def test_catalog_filters(site: Site) -> None:
    def found(**params: Any) -> set[str]:
        return set(ids(site.get("/api/v1/papers", params=params).json()))

    assert found(category="q-bio.BM") == {"2502.00003"}
    assert found(category=["cs.RO", "q-bio.BM"]) == {"2502.00003", "2502.00005"}
    assert found(has_code="true") == {"2502.00001", "2502.00007"}
    assert found(organization="lab") == {"2502.00002", "2502.00006", "2503.00001"}
    assert "2502.00009" not in found(listed="true")
    assert found(**{"from": "2025-02-01", "to": "2025-02-01"}) == {
        a for a in VISIBLE if record(a).versions[0].submitted_at.date() == date(2025, 2, 1)
    }
    bad = site.get("/api/v1/papers", params={"from": "2025-03-01", "to": "2025-02-01"})
    assert bad.status_code == 400 and "start is after the end" in bad.json()["error"]["message"]


def test_daily_lists_follow_the_site_order(site: Site) -> None:
    with site.engine.connect() as connection:
        expected = [c.arxiv_id for c in daily.day_list(connection, D1)]
    assert expected == ["2502.00002", "2502.00001", "2502.00003", "2502.00004", "2502.00005"]
    body = site.get("/api/v1/lists/daily/2025-02-03").json()
    assert ids(body) == expected and body["next_cursor"] is None
    assert (body["day"], body["previous_day"], body["next_day"]) == (
        "2025-02-03",
        None,
        "2025-02-04",
    )
    assert [i["position"] for i in body["items"]] == [1, 0, 2, None, 3]
    walked = walk(site, "/api/v1/lists/daily/2025-02-03", limit=2)
    assert [i["arxiv_id"] for i in walked] == expected
    latest = site.get("/api/v1/lists/daily").json()
    assert latest["day"] == "2025-03-03" and ids(latest) == ["2503.00001"]
    first = site.get("/api/v1/lists/daily", params={"limit": 1}).json()
    day_cursor = site.get("/api/v1/lists/daily/2025-02-03", params={"limit": 1}).json()
    assert first["next_cursor"] is None and day_cursor["next_cursor"] is not None
    # A cursor of one day's list does not page the latest list (which may be another day).
    wrong = site.get("/api/v1/lists/daily", params={"cursor": day_cursor["next_cursor"]})
    assert wrong.status_code == 400
    empty = site.get("/api/v1/lists/daily/2025-02-10").json()
    assert empty["items"] == [] and empty["previous_day"] == "2025-02-04"


def test_weekly_and_monthly_lists(site: Site) -> None:
    with site.engine.connect() as connection:
        week = [c.arxiv_id for c in daily.week_list(connection, 2025, 6, 1, 100).cards]
        month = [c.arxiv_id for c in daily.month_list(connection, 2025, 2, 1, 100).cards]
    body = site.get("/api/v1/lists/weekly/2025-W06").json()
    assert ids(body) == week and week[:2] == ["2502.00007", "2502.00002"]
    assert (body["period"], body["first_day"], body["last_day"]) == (
        "2025-W06",
        "2025-02-03",
        "2025-02-09",
    )
    assert [i["arxiv_id"] for i in walk(site, "/api/v1/lists/weekly/2025-W06", limit=3)] == week
    assert [i["arxiv_id"] for i in walk(site, "/api/v1/lists/monthly/2025-02", limit=2)] == month
    march = site.get("/api/v1/lists/monthly/2025-03").json()
    assert ids(march) == ["2503.00001"] and march["last_day"] == "2025-03-31"
    assert site.get("/api/v1/lists/weekly/2025-W54").status_code == 400
    assert site.get("/api/v1/lists/weekly/2025-W53").status_code == 404  # 2025 has 52
    assert site.get("/api/v1/lists/weekly/2026-W53").json()["last_day"] == "2027-01-03"
    assert site.get("/api/v1/lists/monthly/2025-13").status_code == 400


def test_trending_has_score_rank_and_reason(site: Site) -> None:
    with site.engine.connect() as connection:
        table = {
            row.arxiv_id: row
            for row in connection.execute(
                text(
                    "SELECT p.arxiv_id, t.rank, t.score, t.reason FROM trending t "
                    "JOIN papers p ON p.id = t.paper_id"
                )
            )
        }
    items = walk(site, "/api/v1/trending", limit=3)
    assert [i["rank"] for i in items] == sorted(table[a].rank for a in table if a != HIDDEN)
    for item in items:
        row = table[item["arxiv_id"]]
        assert (item["rank"], item["reason"]) == (row.rank, row.reason)
        assert item["score"] == pytest.approx(row.score)
    assert items[0]["arxiv_id"] == "2502.00007" and "12 upvotes" in items[0]["reason"]
    assert HIDDEN not in {i["arxiv_id"] for i in items}


# --- papers, search, similar -------------------------------------------------------------------


def test_paper_detail(site: Site) -> None:
    body = site.get("/api/v1/papers/2502.00002v1").json()
    assert body["arxiv_id"] == "2502.00002" and body["upvotes"] == 9
    assert (
        body["abstract"] == "KV cache eviction for long prompts. We study this and report results."
    )
    assert [a["name"] for a in body["authors"]] == ["Ada Lovelace", "Grace Hopper", "Alan Turing"]
    assert body["categories"] == ["cs.CL"] and body["days_listed"] == ["2025-02-03"]
    assert body["organization"] == {"slug": "lab", "name": "The Lab"}
    assert body["versions"] == [{"number": 1, "submitted_at": "2025-02-01T13:00:00Z", "size": None}]
    assert body["comment_count"] == 0 and body["voted"] is None
    assert site.get("/api/v1/papers/2502.00002", site.alice).json()["voted"] is False
    for missing in ("2502.09999", HIDDEN, "1313.00001"):
        answer = site.get(f"/api/v1/papers/{missing}")
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    for not_an_id in ("not-an-id", "2502.00001/extra"):  # no route has such a path
        answer = site.get(f"/api/v1/papers/{not_an_id}")
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"


def test_search_with_filters_and_cursor(site: Site) -> None:
    body = site.get("/api/v1/search", params={"q": "decoding", "mode": "keyword"}).json()
    assert set(ids(body)) == {"2502.00001", "2502.00009"}  # not the hidden one
    assert body["mode"] == "keyword" and body["total"] == 2
    assert "<mark>" in body["items"][0]["title_html"].lower()
    coded = site.get("/api/v1/search", params={"q": "decoding", "has_code": "true"}).json()
    assert ids(coded) == ["2502.00001"]
    newest = site.get("/api/v1/search", params={"q": "", "sort": "date", "limit": 3})
    every = walk(site, "/api/v1/search", q="", sort="date", limit=3)
    assert [i["arxiv_id"] for i in every][:3] == ids(newest.json())
    assert sorted(i["arxiv_id"] for i in every) == sorted(VISIBLE)
    cursor = newest.json()["next_cursor"]
    other = site.get("/api/v1/search", params={"q": "", "sort": "upvotes", "cursor": cursor})
    assert other.status_code == 400 and "another list" in other.json()["error"]["message"]
    assert site.get("/api/v1/search", params={"sort": "best"}).status_code == 400


def test_similar_papers(site: Site) -> None:
    body = site.get("/api/v1/papers/2502.00001/similar", params={"limit": 3}).json()
    assert body["similarity"] in ("embedding", "keyword") and len(body["items"]) <= 3
    assert "2502.00001" not in ids(body) and HIDDEN not in ids(body)
    assert site.get(f"/api/v1/papers/{HIDDEN}/similar").status_code == 404


# --- comments, votes, organizations -----------------------------------------------------------


def test_comments_need_a_token_to_write_and_read_back(site: Site) -> None:
    path = "/api/v1/papers/2502.00001/comments"
    anonymous = site.send("POST", path, None, json={"body": "Hello"})
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "login_required"
    assert site.send("POST", path, "pt_wrong", json={"body": "Hello"}).status_code == 401
    made = site.send("POST", path, site.alice, json={"body": "Nice **drafts**, $x^2$."})
    assert made.status_code == 201, made.text
    first = made.json()
    assert first["author"] == "alice" and "<strong>drafts</strong>" in first["body_html"]
    reply = site.send("POST", path, site.bob, json={"body": "Agreed", "parent_id": first["id"]})
    assert reply.json()["parent_id"] == first["id"]
    assert site.send("POST", path, site.bob, json={"body": "   "}).status_code == 400
    assert site.send("POST", path, site.bob, json={}).status_code == 400
    assert (
        site.send("POST", path, site.bob, json={"body": "x", "parent_id": 999}).status_code == 404
    )
    listed = walk(site, path, limit=1)
    assert [(c["author"], c["body_markdown"]) for c in listed] == [
        ("alice", "Nice **drafts**, $x^2$."),
        ("bob", "Agreed"),
    ]
    assert site.get("/api/v1/papers/2502.00001").json()["comment_count"] == 2
    assert site.send("DELETE", f"/api/v1/comments/{first['id']}", site.bob).status_code == 404
    gone = site.send("DELETE", f"/api/v1/comments/{first['id']}", site.alice).json()
    assert gone["deleted"] is True and gone["author"] is None and gone["body_html"] == ""
    assert site.get(path).json()["items"][0]["deleted"] is True


def test_votes_change_the_count(site: Site) -> None:
    path = "/api/v1/papers/2502.00005/vote"
    assert site.send("PUT", path, None).status_code == 401
    first = site.send("PUT", path, site.alice).json()
    assert first == {"arxiv_id": "2502.00005", "upvotes": 1, "voted": True}
    assert site.send("PUT", path, site.alice).json()["upvotes"] == 1  # idempotent
    assert site.send("PUT", path, site.bob).json()["upvotes"] == 2
    assert site.get("/api/v1/papers/2502.00005").json()["upvotes"] == 2
    day = site.get("/api/v1/lists/daily/2025-02-03", site.alice).json()["items"]
    assert {i["arxiv_id"]: i["voted"] for i in day}["2502.00005"] is True
    assert {i["arxiv_id"]: i["voted"] for i in day}["2502.00001"] is False
    assert site.send("DELETE", path, site.alice).json() == {
        "arxiv_id": "2502.00005",
        "upvotes": 1,
        "voted": False,
    }
    assert site.send("PUT", f"/api/v1/papers/{HIDDEN}/vote", site.alice).status_code == 404


def test_organizations(site: Site) -> None:
    listed = site.get("/api/v1/organizations").json()
    assert [(o["slug"], o["name"], o["member_count"]) for o in listed["items"]] == [
        ("lab", "The Lab", 1)
    ]
    lab = site.get("/api/v1/organizations/lab").json()
    assert [(x["username"], x["role"]) for x in lab["members"]] == [("alice", "admin")]
    assert lab["url"] == "/orgs/lab"
    papers = walk(site, "/api/v1/organizations/lab/papers", limit=1)
    assert [p["arxiv_id"] for p in papers] == ["2503.00001", "2502.00006", "2502.00002"]
    assert site.get("/api/v1/organizations/nope").status_code == 404
    assert site.get("/api/v1/organizations/nope/papers").status_code == 404


# --- the token's user ----------------------------------------------------------------------------


def test_me_saves_and_folders(site: Site) -> None:
    assert site.get("/api/v1/me").status_code == 401
    me = site.get("/api/v1/me", site.alice).json()
    assert (me["username"], me["role"], me["email"]) == ("alice", "user", "alice@example.org")
    saved = site.send("POST", "/api/v1/me/saves", site.alice, json={"arxiv_id": "2502.00003v1"})
    assert saved.status_code == 201
    assert saved.json() == {"arxiv_id": "2502.00003", "folder": "saved", "saved": True}
    site.send("POST", "/api/v1/me/saves", site.alice, json={"arxiv_id": "2502.00007"})
    missing = {"arxiv_id": "2502.00007", "folder": "nope"}
    assert site.send("POST", "/api/v1/me/saves", site.alice, json=missing).status_code == 404
    items = walk(site, "/api/v1/me/saves", site.alice, limit=1)
    assert [(i["paper"]["arxiv_id"], i["folder"]) for i in items] == [
        ("2502.00007", "saved"),
        ("2502.00003", "saved"),
    ]
    assert site.get("/api/v1/me/saves", site.bob).json()["items"] == []
    folders = site.get("/api/v1/me/folders", site.alice).json()["items"]
    assert folders == [{"slug": "saved", "name": "Saved", "public": False, "paper_count": 2}]
    gone = site.send("DELETE", "/api/v1/me/saves/2502.00003", site.alice).json()
    assert gone == {"arxiv_id": "2502.00003", "folder": None, "saved": False}
    assert len(site.get("/api/v1/me/saves", site.alice).json()["items"]) == 1


def test_subscription_preferences(site: Site) -> None:
    missing = site.get("/api/v1/me/subscription", site.alice)
    assert missing.status_code == 404 and "subscribe" in missing.json()["error"]["message"]
    with write_transaction(site.engine) as connection:
        alice = user_by_username(connection, "alice")
        subscriptions.subscribe(connection, alice.email, size=10, user_id=alice.id)
    body = site.get("/api/v1/me/subscription", site.alice).json()
    assert body["state"] == "unconfirmed" and body["frequency"] == "daily" and body["size"] == 10
    wanted = {
        "frequency": "weekly",
        "size": 5,
        "personal": False,
        "include": {"categories": ["cs.CL"], "keywords": ["decoding"]},
    }
    changed = site.send("PUT", "/api/v1/me/subscription", site.alice, json=wanted).json()
    assert (changed["frequency"], changed["size"], changed["personal"]) == ("weekly", 5, False)
    assert changed["include"]["categories"] == ["cs.CL"] and changed["exclude"]["keywords"] == []
    too_big = {**wanted, "size": 31}
    assert site.send("PUT", "/api/v1/me/subscription", site.alice, json=too_big).status_code == 400


def test_feed(site: Site) -> None:
    assert site.get("/api/v1/me/feed").status_code == 401
    body = site.get("/api/v1/me/feed", site.alice, params={"limit": 5}).json()
    assert body["cold_start"] is True and body["total"] >= len(body["items"])
    assert all(item["reason"] and "score" in item for item in body["items"])


# --- ETags, cursors, rate limits, errors -----------------------------------------------------


def test_etag_answers_304_until_the_list_changes(site: Site) -> None:
    path = "/api/v1/lists/daily/2025-02-03"
    first = site.get(path)
    etag = first.headers["etag"]
    assert etag.startswith('W/"') and first.headers["cache-control"] == "no-cache"
    again = site.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert site.get(path, headers={"If-None-Match": f'"other", {etag}'}).status_code == 304
    assert site.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    site.send("PUT", "/api/v1/papers/2502.00005/vote", site.alice)
    changed = site.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    mine = site.get(path, site.alice)
    assert mine.headers["cache-control"] == "private, no-cache"
    assert mine.headers["etag"] != changed.headers["etag"]  # carries the user's votes


def test_tampered_and_foreign_cursors_are_refused(site: Site) -> None:
    cursor = site.get("/api/v1/papers", params={"limit": 2}).json()["next_cursor"]
    body, signature = cursor.split(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    for bad in (f"{body}.{flipped}", f"{body[:-2]}.{signature}", "junk", cursor + "x", "."):
        answer = site.get("/api/v1/papers", params={"limit": 2, "cursor": bad})
        assert answer.status_code == 400, bad
        assert answer.json()["error"]["code"] == "invalid_input"
    foreign = site.get("/api/v1/papers", params={"limit": 2, "cursor": cursor, "has_code": "1"})
    assert foreign.status_code == 400
    elsewhere = site.get("/api/v1/lists/daily/2025-02-03", params={"cursor": cursor})
    assert elsewhere.status_code == 400
    fine = site.get("/api/v1/papers", params={"limit": 5, "cursor": cursor})  # limit may change
    assert fine.status_code == 200


@pytest.mark.usefixtures("one_minute_window")
def test_rate_limits_per_address_and_per_token(engine: Engine, settings: Settings) -> None:
    alice, _bob = seed(engine, settings)
    app = make_app(settings, api_ip_rate_limit=3, api_token_rate_limit=2)
    client = TestClient(app)
    for _ in range(3):
        assert client.get("/api/v1/trending").status_code == 200
    refused = client.get("/api/v1/trending")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    token = {"Authorization": f"Bearer {alice}"}
    assert client.get("/api/v1/me", headers=token).status_code == 200  # a token has its own
    assert client.get("/api/v1/trending", headers=token).status_code == 200
    limited = client.get("/api/v1/me", headers=token)
    assert limited.status_code == 429 and "Retry-After" in limited.headers
    app.state.engine.dispose()


def test_anonymous_limits_are_shared_by_the_workers(engine: Engine) -> None:
    """Two workers' counters: each decides alone, and the flushes make the count shared."""
    limit = Limit(5, 60, "reads")
    now = 1_800_000_000.0 // 60 * 60 + 1
    first, second = SharedCounter(engine, flush_every=3600), SharedCounter(engine, flush_every=3600)
    assert all(first.hit("api:ip:a", limit, now) is None for _ in range(3))
    first.flush()
    assert second.hit("api:ip:a", limit, now) is None  # it has not heard of the 3 yet
    second.flush()  # now it has: 3 + 1
    assert second.hit("api:ip:a", limit, now) is None  # 5
    refused = second.hit("api:ip:a", limit, now)  # 6
    assert refused is not None and refused.status == 429 and 1 <= refused.retry_after <= 60
    assert second.hit("api:ip:b", limit, now) is None  # per address
    second.flush()
    first.flush()
    with engine.connect() as connection:
        counts = dict(connection.execute(select(rate_limits.c.key, rate_limits.c.count)).all())
    assert counts == {"api:ip:a": 6, "api:ip:b": 1}  # every hit counted once
    assert first.hit("api:ip:a", limit, now + 60) is None  # a new window starts afresh


def test_a_flush_returns_after_one_already_under_way(engine: Engine) -> None:
    """The background thread may be writing this worker's hits when flush() is called: flush()
    waits for it, so a hit after flush() is decided on the shared total."""
    limit = Limit(1, 60, "reads")
    now = time.time()
    window = int(now // 60 * 60)
    with write_transaction(engine) as connection:
        connection.execute(insert(rate_limits).values(key="api:ip:c", window_start=window, count=0))
    counter = SharedCounter(engine, flush_every=3600)
    assert counter.hit("api:ip:c", limit, now) is None
    after_flush: list[object] = []

    def flush_then_hit() -> None:
        counter.flush()
        after_flush.append(counter.hit("api:ip:c", limit, now))

    with engine.connect() as blocker:  # holds the row (and SQLite's write lock)
        blocker.execute(update(rate_limits).values(count=rate_limits.c.count))
        under_way = threading.Thread(target=counter.flush)
        under_way.start()
        deadline = time.monotonic() + 10
        while counter._pending:  # the first flush has taken the hit
            assert time.monotonic() < deadline
            time.sleep(0.01)
        second = threading.Thread(target=flush_then_hit)
        second.start()
        time.sleep(0.3)
        assert not after_flush  # still waiting for the first flush
        blocker.commit()
    under_way.join(30)
    second.join(30)
    assert len(after_flush) == 1 and after_flush[0] is not None  # 2 > 1: refused


def test_one_error_shape(site: Site) -> None:
    for method, path, status in (
        ("GET", "/api/v1/nothing-here", 404),
        ("POST", "/api/v1/trending", 405),
        ("GET", "/api/v1/papers/2502.00001/vote", 405),
        ("GET", "/api/v1/papers?limit=0", 400),
        ("GET", "/api/v1/papers?limit=101", 400),
        ("GET", "/api/v1/lists/daily/2025-02-30", 400),
        ("POST", "/api/v1/me/saves", 401),
    ):
        answer = site.client.request(method, path)
        assert answer.status_code == status, (path, answer.text)
        if status == 405:
            assert answer.headers["allow"] in ("GET", "DELETE, PUT")
        error = answer.json()["error"]
        assert set(error) == {"code", "message"} and error["message"]
    bad_json = site.send(
        "POST",
        "/api/v1/papers/2502.00001/comments",
        site.alice,
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert bad_json.status_code == 400


# --- schema and docs pages ----------------------------------------------------------------------


def test_openapi_schema_describes_the_api(site: Site) -> None:
    schema = site.get("/openapi.json").json()
    assert all(path.startswith("/api/") for path in schema["paths"])
    v1 = {p: ops for p, ops in schema["paths"].items() if p.startswith("/api/v1/")}
    assert len(v1) >= 20
    for operations in v1.values():
        for operation in operations.values():
            responses = operation["responses"]
            assert "422" not in responses and "400" in responses and "429" in responses
            ok = next(code for code in responses if code.startswith("2"))
            assert "$ref" in str(responses[ok]["content"]["application/json"]["schema"])
    assert "ApiToken" in schema["components"]["securitySchemes"]
    assert v1["/api/v1/me"]["get"]["security"] == [{"ApiToken": []}]
    assert "HTTPValidationError" not in schema["components"]["schemas"]


def test_docs_pages_work_without_a_cdn_or_inline_script(site: Site) -> None:
    for path in ("/docs", "/redoc"):
        page = site.get(path)
        assert page.status_code == 200
        scripts = re.findall(r"<script([^>]*)>", page.text)
        assert scripts and all('src="/' in attrs for attrs in scripts)  # no inline script
        assert "http" not in page.text.replace("http-equiv", "")  # nothing remote
        assert "script-src 'self'" in page.headers["content-security-policy"]
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        assert site.get(f"/docs/assets/{asset}").status_code == 200
    assert site.get("/docs/assets/secrets.txt").status_code == 404
    assert site.get("/static/api-docs.js").status_code == 200


def test_cursors_are_signed_typed_and_bound_to_their_list() -> None:
    made = Cursors("secret-a").make("list-1", [date(2025, 2, 3), 7, "2502.00001"])
    kinds: tuple[Kind, ...] = ("date", "int", "str")
    assert Cursors("secret-a").read("list-1", made, kinds) == [date(2025, 2, 3), 7, "2502.00001"]
    for secret, scope, wanted in (
        ("secret-b", "list-1", kinds),  # another site's
        ("secret-a", "list-2", kinds),  # another list's
        ("secret-a", "list-1", ("int", "int", "str")),  # not the shape this list uses
        ("secret-a", "list-1", ("date", "int")),
    ):
        with pytest.raises(InvalidInput):
            Cursors(secret).read(scope, made, wanted)
    assert Cursors("secret-a").offset("search", None) == 0
    with pytest.raises(InvalidInput):
        Cursors("secret-a").offset("search", Cursors("secret-a").make("search", [-20]))


def test_nul_characters_are_refused(site: Site) -> None:
    # PostgreSQL takes no NUL in text: refused up front (400) on both engines, never a 500.
    for path in (
        "/api/v1/papers?organization=%00",
        "/api/v1/search?q=a%00b",
        "/api/v1/organizations/%00",
        "/api/v1/me/saves?folder=%00",
    ):
        answer = site.get(path, site.alice)
        assert answer.status_code == 400 and "NUL" in answer.json()["error"]["message"], path
    comment = {"body": "a\x00b"}
    sent = site.send("POST", "/api/v1/papers/2502.00001/comments", site.alice, json=comment)
    assert sent.status_code == 400 and "NUL" in sent.json()["error"]["message"]
    save = {"arxiv_id": "2502.00001", "folder": "\x00"}
    assert site.send("POST", "/api/v1/me/saves", site.alice, json=save).status_code == 400


@needs_chromium
def test_docs_pages_render_in_a_browser_under_the_csp(settings: Settings, page: Any) -> None:
    served = settings.replace(secret_key=SECRET, embed_in_background=False, scheduler=False)
    problems: list[str] = []
    elsewhere: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    with live_server(served) as base:
        local = (base, "data:", "blob:")
        page.on(  # requests that reached a server elsewhere (CSP-blocked ones fail first)
            "requestfinished",
            lambda r: None if r.url.startswith(local) else elsewhere.append(r.url),
        )
        page.goto(base + "/docs")
        page.wait_for_selector(".opblock-tag-section", timeout=20_000)
        assert page.locator(".opblock").count() >= 25
        assert page.get_by_text("/api/v1/lists/daily/{day}").count() >= 1
        page.goto(base + "/redoc")
        page.wait_for_selector("[data-section-id]", timeout=20_000)
        assert page.get_by_text("Papertide API").count() >= 1
    # ReDoc's footer names a logo on its CDN: the policy blocks it, and that is all it blocks.
    unexpected = [p for p in problems if "cdn.redoc.ly" not in p]
    assert unexpected == [] and elsewhere == []


def test_values_the_database_refuses_are_a_400_on_every_page(
    engine: Engine, settings: Settings
) -> None:
    """NUL characters and ids past a 32-bit column reach PostgreSQL only to be refused there:
    the answer is a 400 in the one error shape, never a 500 (SQLite may simply answer)."""
    app = create_app(
        settings.replace(secret_key=SECRET, embed_in_background=False, scheduler=False)
    )
    client = TestClient(app, raise_server_exceptions=False)
    for path in ("/orgs/%00", "/users/%00", "/search?q=a&org=%00"):
        response = client.get(path, headers={"Accept": "application/json"})
        assert response.status_code < 500, (path, response.status_code)
