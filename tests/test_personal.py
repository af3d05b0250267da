"""Personal feeds on both engines: saves and folders, "not interested", seen marks, interests
and rules, the ranker's reasons, cold start, the pages and the JSON feed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from factories import listed, make_record, write_records
from fastapi import FastAPI
from fastapi.testclient import TestClient
from people import SECRET, add_user, client_as
from sqlalchemy import Engine

from papertide.accounts.tokens import create_token
from papertide.accounts.users import User
from papertide.catalog.records import Author, Version
from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.errors import Conflict, InvalidInput, NotFound
from papertide.personal import marks, saves
from papertide.personal.feed import CandidateCache, FeedPage, for_you, load_candidates
from papertide.personal.interests import RuleSet, make_interests, save_interests
from papertide.search.embedder import Embedder
from papertide.search.models import shared_embedder
from papertide.search.pipeline import embed_missing
from papertide.web.app import create_app

NOW = datetime.now(UTC)
PAPERS = {
    "2511.00001": ("Protein structure prediction with equivariant networks", "q-bio.BM", 3),
    "2511.00002": ("Folding amino acid chains with diffusion models", "q-bio.BM", 0),
    "2511.00003": ("KV cache compression for long-context LLM serving", "cs.CL", 9),
    "2511.00004": ("Paged attention memory for serving large language models", "cs.CL", 1),
    "2511.00005": ("Quantum error correction with surface codes", "quant-ph", 25),
    "2511.00006": ("Robot grasping from a single camera image", "cs.RO", 4),
    "2511.00007": ("Speculative decoding speeds up LLM inference", "cs.CL", 2),
    "2511.00008": ("An old paper on protein folding", "q-bio.BM", 50),  # outside the window
}


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return shared_embedder("all-MiniLM-L6-v2", "auto", 0)


@pytest.fixture
def catalog(engine: Engine, embedder: Embedder) -> None:
    records = []
    for n, (arxiv_id, (title, category, upvotes)) in enumerate(PAPERS.items()):
        age = timedelta(days=60 if arxiv_id.endswith("8") else n % 5)
        records.append(
            make_record(
                arxiv_id,
                title=title,
                abstract=f"{title}. We study this problem and report results.",
                categories=[category],
                authors=[Author("Ada Lovelace" if n % 2 else "Grace Hopper")],
                versions=[Version(1, NOW - age)],
                upvotes=upvotes,
            )
        )
    write_records(engine, *records)
    embed_missing(engine, embedder)


@pytest.fixture
def alice(engine: Engine, catalog: None) -> User:
    return add_user(engine, "alice")


def feed(engine: Engine, user: User, embedder: Embedder) -> FeedPage:
    with engine.connect() as connection:
        return for_you(connection, user.id, embedder, CandidateCache(), page_size=50)


def ids(page: FeedPage, engine: Engine) -> list[str]:
    with engine.connect() as connection:
        names = dict(connection.exec_driver_sql("SELECT id, arxiv_id FROM papers").all())
    return [names[item.paper_id] for item in page.items]


def set_interests(engine: Engine, user: User, **values: object) -> None:
    defaults: dict[str, object] = {
        "topics": [],
        "include": {},
        "exclude": {},
        "threshold": -1.0,
        "trending_weight": 0.0,
        "window_days": 7,
    }
    with write_transaction(engine) as connection:
        save_interests(connection, user.id, make_interests(**{**defaults, **values}))  # type: ignore[arg-type]


# --- the ranker ---------------------------------------------------------------------------------


def test_cold_start_is_trending_order_and_says_so(
    engine: Engine, alice: User, embedder: Embedder
) -> None:
    page = feed(engine, alice, embedder)
    assert page.cold
    assert ids(page, engine)[:2] == ["2511.00005", "2511.00003"]  # most upvoted first
    assert "2511.00008" not in ids(page, engine)  # older than the window
    assert page.items[0].reason == "Trending: 25 upvotes"


def test_topics_rank_and_explain(engine: Engine, alice: User, embedder: Embedder) -> None:
    set_interests(engine, alice, topics=["protein folding"])
    page = feed(engine, alice, embedder)
    assert not page.cold
    assert set(ids(page, engine)[:2]) == {"2511.00001", "2511.00002"}
    assert page.items[0].reason == "Matches your topic “protein folding”"


def test_a_saved_paper_brings_its_neighbours_and_is_left_out(
    engine: Engine, alice: User, embedder: Embedder
) -> None:
    with write_transaction(engine) as connection:
        saves.save_paper(connection, alice, "2511.00003")
    page = feed(engine, alice, embedder)
    found = ids(page, engine)
    assert "2511.00003" not in found  # already saved: not a recommendation
    assert found[0] in {"2511.00004", "2511.00007"}  # LLM serving, like the saved paper
    assert page.items[0].reason.startswith("Close to “KV cache compression")


def test_not_interested_removes_and_pushes_neighbours_down(
    engine: Engine, alice: User, embedder: Embedder
) -> None:
    set_interests(engine, alice, topics=["large language model inference"])
    before = ids(feed(engine, alice, embedder), engine)
    with write_transaction(engine) as connection:
        marks.dismiss(connection, alice, "2511.00003")
    after_page = feed(engine, alice, embedder)
    after = ids(after_page, engine)
    assert "2511.00003" in before and "2511.00003" not in after
    scores_before = {a: i for i, a in enumerate(before)}
    personal_after = {a: item.personal for a, item in zip(after, after_page.items, strict=True)}
    assert after.index("2511.00004") >= scores_before["2511.00004"] - 1
    assert personal_after["2511.00004"] < 0.9


def test_seen_papers_are_not_recommended_again(
    engine: Engine, alice: User, embedder: Embedder
) -> None:
    with write_transaction(engine) as connection:
        paper_id = connection.exec_driver_sql(
            "SELECT id FROM papers WHERE arxiv_id = '2511.00005'"
        ).scalar_one()
        marks.mark(connection, alice, [paper_id], marks.Mark.SEEN, "digest")
    assert "2511.00005" not in ids(feed(engine, alice, embedder), engine)


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({"include": {"categories": ["q-bio.BM"]}}, {"2511.00001", "2511.00002"}),
        (
            {"exclude": {"keywords": ["LLM", "language models"]}},
            {"2511.00001", "2511.00002", "2511.00005", "2511.00006"},
        ),
        (
            {"include": {"authors": ["hopper"]}, "exclude": {"categories": ["quant-ph"]}},
            {"2511.00001", "2511.00003", "2511.00007"},
        ),
    ],
)
def test_rules_are_hard_filters(
    engine: Engine, alice: User, embedder: Embedder, rules: dict[str, object], expected: set[str]
) -> None:
    set_interests(engine, alice, topics=["machine learning"], **rules)
    assert set(ids(feed(engine, alice, embedder), engine)) == expected


def test_threshold_and_trending_weight(engine: Engine, alice: User, embedder: Embedder) -> None:
    set_interests(engine, alice, topics=["protein folding"], threshold=0.45)
    assert set(ids(feed(engine, alice, embedder), engine)) <= {"2511.00001", "2511.00002"}
    set_interests(engine, alice, topics=["protein folding"], trending_weight=1.0)
    page = feed(engine, alice, embedder)
    assert ids(page, engine)[0] == "2511.00005" and page.items[0].reason.startswith("Trending")


def test_interests_are_validated() -> None:
    with pytest.raises(InvalidInput, match="trending weight"):
        make_interests(
            topics=[], include={}, exclude={}, threshold=0, trending_weight=2, window_days=7
        )
    with pytest.raises(InvalidInput, match="window"):
        make_interests(
            topics=[], include={}, exclude={}, threshold=0, trending_weight=0, window_days=0
        )
    with pytest.raises(InvalidInput, match="unknown include rule"):
        make_interests(
            topics=[],
            include={"planets": ["x"]},
            exclude={},
            threshold=0,
            trending_weight=0,
            window_days=7,
        )
    with pytest.raises(InvalidInput, match="at most 20 topics"):
        make_interests(
            topics=[f"t{i}" for i in range(21)],
            include={},
            exclude={},
            threshold=0,
            trending_weight=0,
            window_days=7,
        )
    assert RuleSet().empty


# --- saves and folders --------------------------------------------------------------------------


def test_folders_save_unsave_publish_follow(engine: Engine, alice: User) -> None:
    bob = add_user(engine, "bob")
    with write_transaction(engine) as connection:
        saves.save_paper(connection, alice, "2511.00001")  # makes the default folder
        slug = saves.create_folder(connection, alice, "Protein reading!")
        saves.save_paper(connection, alice, "2511.00002", slug)
        saves.save_paper(connection, alice, "2511.00002", slug)  # idempotent
        with pytest.raises(Conflict):
            saves.create_folder(connection, alice, "protein reading")
        assert slug == "protein-reading"
        folders = {f.slug: f.papers for f in saves.user_folders(connection, alice)}
        assert folders == {"saved": 1, "protein-reading": 1}
        with pytest.raises(NotFound):
            saves.public_folder(connection, "alice", slug, bob)  # private
        with pytest.raises(NotFound):
            saves.follow(connection, bob, "alice", slug)
        saves.set_public(connection, alice, slug, True)
        assert saves.public_folder(connection, "alice", slug, bob).public
        saves.follow(connection, bob, "alice", slug)
        saves.unsave_paper(connection, alice, "2511.00002")
        assert saves.saved_arxiv_ids(connection, alice, ["2511.00001", "2511.00002"]) == {
            "2511.00001"
        }
        with pytest.raises(InvalidInput):
            saves.create_folder(connection, alice, "!!!")


# --- pages and API ------------------------------------------------------------------------------


@pytest.fixture
def app(settings: Settings, catalog: None) -> FastAPI:
    return create_app(settings.replace(secret_key=SECRET, embed_in_background=False))


def test_for_you_page_onboarding_and_dismiss(app: FastAPI, engine: Engine) -> None:
    user = add_user(engine, "carol")
    client, csrf = client_as(app, engine, user)
    page = client.get("/for-you")
    assert page.status_code == 200 and 'id="cold-start"' in page.text
    onboarding = client.get("/settings/interests")
    assert "Or pick a few papers you like" in onboarding.text
    done = client.post(
        "/settings/interests",
        data={
            "csrf_token": csrf,
            "topics": "robot grasping",
            "threshold": "0",
            "trending_weight": "0.2",
            "window_days": "7",
            "pick": ["2511.00006"],
        },
    )
    assert done.status_code == 303 and done.headers["location"] == "/for-you"
    page = client.get("/for-you")
    assert 'id="cold-start"' not in page.text and "Not interested" in page.text
    assert "Robot grasping" not in page.text  # picked = saved = not recommended again
    api = client.get("/api/me/feed").json()
    first = api["papers"][0]["id"]
    assert api["coldStart"] is False and api["papers"][0]["reason"]
    answer = client.post(
        f"/papers/{first}/dismiss",
        data={"csrf_token": csrf},
        headers={"Accept": "application/json"},
    )
    assert answer.json() == {"id": first, "dismissed": True}
    assert first not in [p["id"] for p in client.get("/api/me/feed").json()["papers"]]


def test_personal_pages_need_a_login_and_csrf(app: FastAPI, engine: Engine) -> None:
    anonymous, _csrf = client_as(app, engine, None)
    assert anonymous.get("/for-you").status_code in (303, 401)
    assert anonymous.get("/api/me/feed").status_code == 401
    user = add_user(engine, "dave")
    client, token = client_as(app, engine, user)
    assert client.post("/papers/2511.00001/save", data={"csrf_token": "wrong"}).status_code == 403
    assert client.post("/papers/2511.00001/save", data={"csrf_token": token}).status_code == 303
    bad = client.post(
        "/settings/interests",
        data={"csrf_token": token, "threshold": "lots", "trending_weight": "0", "window_days": "7"},
    )
    assert bad.status_code == 400 and "threshold" in bad.text


def test_opening_a_paper_marks_it_seen(app: FastAPI, engine: Engine) -> None:
    user = add_user(engine, "erin")
    client, _csrf = client_as(app, engine, user)
    assert "2511.00005" in [p["id"] for p in client.get("/api/me/feed").json()["papers"]]
    assert client.get("/papers/2511.00005").status_code == 200
    assert "2511.00005" not in [p["id"] for p in client.get("/api/me/feed").json()["papers"]]


def test_folder_page_visibility(app: FastAPI, engine: Engine, alice: User) -> None:
    with write_transaction(engine) as connection:
        slug = saves.create_folder(connection, alice, "Reading list")
        saves.save_paper(connection, alice, "2511.00005", slug)
    owner, csrf = client_as(app, engine, alice)
    other, _ = client_as(app, engine, add_user(engine, "frank"))
    assert "Quantum error correction" in owner.get(f"/users/alice/folders/{slug}").text
    assert other.get(f"/users/alice/folders/{slug}").status_code == 404
    owner.post(f"/users/alice/folders/{slug}/publish", data={"csrf_token": csrf})
    assert other.get(f"/users/alice/folders/{slug}").status_code == 200


def test_followed_folders_feed_their_papers_with_the_reason(
    engine: Engine, alice: User, embedder: Embedder
) -> None:
    bob = add_user(engine, "bob")
    with write_transaction(engine) as connection:
        slug = saves.create_folder(connection, bob, "Quantum picks", public=True)
        saves.save_paper(connection, bob, "2511.00006", slug)
        saves.follow(connection, alice, "bob", slug)
    set_interests(engine, alice, topics=["protein folding"])
    page = feed(engine, alice, embedder)
    found = ids(page, engine)
    item = page.items[found.index("2511.00006")]
    assert item.reason == "In “Quantum picks” by bob, which you follow"
    assert found.index("2511.00006") < found.index("2511.00005")


def test_feed_api_accepts_an_api_token(app: FastAPI, engine: Engine, alice: User) -> None:
    with write_transaction(engine) as connection:
        _row, token = create_token(connection, alice, "feed script")
    client = TestClient(app)
    answer = client.get("/api/me/feed", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.json()["coldStart"] is True
    bad = client.get("/api/me/feed", headers={"Authorization": "Bearer pt_nope"})
    assert bad.status_code == 401


def test_save_into_a_named_folder_from_the_paper_page(app: FastAPI, engine: Engine) -> None:
    user = add_user(engine, "gina")
    with write_transaction(engine) as connection:
        saves.create_folder(connection, user, "To read")
    client, csrf = client_as(app, engine, user)
    page = client.get("/papers/2511.00004")
    assert '<option value="to-read">To read</option>' in page.text
    client.post("/papers/2511.00004/save", data={"csrf_token": csrf, "folder": "to-read"})
    assert "Remove from my folders" in client.get("/papers/2511.00004").text
    with engine.connect() as connection:
        folder = saves.public_folder(connection, "gina", "to-read", user)
        assert folder.papers == 1
    assert client.get("/papers/2511.00004", cookies={}).status_code == 200
    missing = client.post("/papers/2511.00004/save", data={"csrf_token": csrf, "folder": "nope"})
    assert missing.status_code == 404


def test_candidates_are_papers_published_or_listed_in_the_window(
    engine: Engine, catalog: None, embedder: Embedder
) -> None:
    """Both ranges of ``load_candidates`` (each read by its own index): recently published,
    and published long ago but on a list in the window; not a pending or hidden one."""
    old = [Version(1, NOW - timedelta(days=400))]
    today = NOW.date()
    write_records(
        engine,
        make_record("2401.00001", title="Listed today", versions=old, listing=listed(today)),
        make_record("2401.00002", title="Pending today", versions=old, listing=listed(today, 1)),
        make_record("2401.00003", title="Listed long ago", versions=old),
        make_record("2401.00004", title="Hidden, listed", versions=old, listing=listed(today, 2)),
    )
    embed_missing(engine, embedder)
    with write_transaction(engine) as connection:
        connection.exec_driver_sql(
            "UPDATE daily_entries SET status = 'pending' WHERE paper_id = "
            "(SELECT id FROM papers WHERE arxiv_id = '2401.00002')"
        )
        connection.exec_driver_sql(
            "UPDATE papers SET hidden_at = created_at WHERE arxiv_id = '2401.00004'"
        )
    with engine.connect() as connection:
        found = load_candidates(connection, embedder.name, NOW - timedelta(days=7))
        names = dict(connection.exec_driver_sql("SELECT id, arxiv_id FROM papers").all())
    titles = {names[int(i)]: title for i, title in zip(found.ids, found.titles, strict=True)}
    expected = {a for a in PAPERS if a != "2511.00008"} | {"2401.00001"}
    assert set(titles) == expected
    assert titles["2401.00001"] == "Listed today"
    assert found.matrix.shape == (len(expected), 384)
