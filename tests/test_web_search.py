"""The search page, the HF-shaped search API, similar papers over HTTP, and the CLI commands."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from click.testing import CliRunner
from factories import listed, make_record, rows, write_records
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from papertide.catalog.records import Author
from papertide.cli import cli
from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.search.embedder import Embedder
from papertide.search.models import shared_embedder
from papertide.search.pipeline import embed_missing
from papertide.web.app import create_app

HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)">'
PAPERS = [
    ("2502.00001", "Speculative decoding with small draft models", "Drafts propose, all verify."),
    ("2502.00002", "KV cache eviction for long prompts", "We evict key-value entries by score."),
    ("2502.00003", f"Transformers for {HOSTILE} parsing", "Attention over <tags> & entities."),
    ("2502.00004", "Bounds for $(k,\\ell)$-sparse graphs", "Graph sparsity bounds via decoding."),
    ("2502.00005", "Protein folding with equivariant networks", "Amino acids fold in 3D."),
]


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return shared_embedder("all-MiniLM-L6-v2", "auto", 0)


@pytest.fixture
def client(engine: Engine, settings: Settings) -> Iterator[TestClient]:
    write_records(
        engine,
        *[
            make_record(
                arxiv_id,
                title=title,
                abstract=abstract,
                authors=[Author("Ada Lovelace"), Author("Grace Hopper")],
                code_url="https://github.com/lab/code" if n % 2 else None,
                listing=listed(date(2025, 2, 3), n) if n < 3 else None,
            )
            for n, (arxiv_id, title, abstract) in enumerate(PAPERS)
        ],
    )
    app = create_app(settings.replace(embed_in_background=False))
    with TestClient(app) as client:  # runs the lifespan: the background job starts and stops
        app.state.search.stop()  # this test drives embedding itself
        yield client


def test_search_page_shows_cards_with_matched_words(client: TestClient) -> None:
    page = client.get("/search", params={"q": "decoding drafts"})
    assert page.status_code == 200
    assert "<mark>decoding</mark>" in page.text.lower()
    assert "Speculative" in page.text and "Protein folding" not in page.text
    assert 'id="search-notice"' in page.text  # no vectors yet: keyword results, said so


def test_search_box_is_on_every_page(client: TestClient) -> None:
    for path in ("/", "/papers/trending", "/papers/2502.00001"):
        assert 'action="/search"' in client.get(path).text


def test_hostile_titles_stay_escaped_in_results(client: TestClient) -> None:
    page = client.get("/search", params={"q": "transformers parsing"})
    assert HOSTILE not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    data = client.get("/api/papers/search", params={"q": "transformers parsing"}).json()
    assert data[0]["title"].startswith("Transformers for <script>")  # JSON carries the text


def test_exact_id_is_pinned_and_says_why(client: TestClient) -> None:
    page = client.get("/search", params={"q": "https://arxiv.org/abs/2502.00005v1"})
    assert page.text.index("Protein folding") < page.text.index("</ol>")
    assert "Exact arXiv id" in page.text


def test_filters_and_sort_from_the_query_string(client: TestClient) -> None:
    coded = client.get("/search", params={"q": "decoding graphs eviction", "code": "true"})
    assert "Speculative" not in coded.text and "KV cache" in coded.text
    listed_only = client.get("/search", params={"q": "decoding", "listed": "true"})
    assert "Speculative" in listed_only.text and "sparse graphs" not in listed_only.text
    newest = client.get("/search", params={"q": "decoding", "sort": "date"})
    assert newest.status_code == 200 and "matching every word" in newest.text
    before = client.get("/search", params={"q": "decoding", "to": "2020-01-01"})
    assert "No papers match" in before.text


@pytest.mark.parametrize(
    "params",
    [
        {"q": "cat:cs..x"},
        {"q": "x", "sort": "sideways"},
        {"q": "x", "mode": "telepathy"},
        {"q": "x", "from": "2025-13-01"},
        {"q": "x", "from": "2025-02-01", "to": "2025-01-01"},
        {"q": "x", "page": "0"},
        {"q": "x" * 501},
    ],
)
def test_bad_search_requests_are_400(client: TestClient, params: dict[str, str]) -> None:
    response = client.get("/search", params=params)
    assert response.status_code == 400, response.text


def test_page_past_the_end_is_404(client: TestClient) -> None:
    assert client.get("/search", params={"q": "decoding", "page": "9"}).status_code == 404


def test_hf_search_api_shape(client: TestClient) -> None:
    response = client.get("/api/papers/search", params={"q": "speculative decoding", "limit": 2})
    assert response.status_code == 200
    first = response.json()[0]
    assert first["paper"]["id"] == "2502.00001"
    assert [a["name"] for a in first["paper"]["authors"]] == ["Ada Lovelace", "Grace Hopper"]
    assert first["paper"]["summary"] == first["summary"] == "Drafts propose, all verify."
    assert {"type": "highlight", "text": "Speculative"} in first["highlightedTitle"]
    assert "".join(s["text"] for s in first["highlightedTitle"]) == first["title"]
    assert first["numComments"] == 0 and first["upvoted"] is False
    assert len(response.json()) <= 2


@pytest.mark.parametrize(
    ("params", "status"),
    [({"q": ""}, 400), ({"q": "x" * 251}, 400), ({"q": "x", "limit": "0"}, 400), ({}, 400)],
)
def test_hf_search_api_errors(client: TestClient, params: dict[str, str], status: int) -> None:
    response = client.get("/api/papers/search", params=params)
    assert response.status_code == status
    assert response.json()["error"]["message"]


def test_similar_papers_by_words_then_by_meaning(
    client: TestClient, engine: Engine, embedder: Embedder
) -> None:
    before = client.get("/api/papers/2502.00002/similar")
    assert before.status_code == 200 and before.headers["x-papertide-similarity"] == "keyword"
    embed_missing(engine, embedder)
    after = client.get("/api/papers/2502.00002/similar", params={"limit": 3})
    assert after.headers["x-papertide-similarity"] == "embedding"
    ids = [item["paper"]["id"] for item in after.json()]
    assert len(ids) == 3 and "2502.00002" not in ids
    page = client.get("/papers/2502.00002")
    assert "Similar papers" in page.text and "By shared words" not in page.text
    assert client.get("/api/papers/2509.99999/similar").status_code == 404
    assert client.get("/api/papers/not-an-id/similar").status_code == 400


def test_hidden_paper_is_not_searchable_and_has_no_similar(
    client: TestClient, engine: Engine
) -> None:
    with write_transaction(engine) as connection:
        connection.execute(
            text("UPDATE papers SET hidden_at = :t WHERE arxiv_id = '2502.00005'"),
            {"t": datetime(2025, 3, 1, tzinfo=UTC).replace(tzinfo=None)},
        )
    assert "Protein" not in client.get("/search", params={"q": "protein folding"}).text
    assert client.get("/api/papers/2502.00005/similar").status_code == 404


def test_search_switches_to_hybrid_once_embedded(
    client: TestClient, engine: Engine, embedder: Embedder
) -> None:
    assert 'id="search-notice"' in client.get("/search", params={"q": "decoding"}).text
    embed_missing(engine, embedder)
    page = client.get("/search", params={"q": "decoding"})
    assert 'id="search-notice"' not in page.text and "by words and meaning" in page.text


# --- the command line ---------------------------------------------------------------------------


def test_embed_and_index_commands(db_url: str, engine: Engine, embedder: Embedder) -> None:
    write_records(engine, *[make_record(a, title=t, abstract=b) for a, t, b in PAPERS])
    runner = CliRunner()
    env = {"PAPERTIDE_DATABASE_URL": db_url}
    result = runner.invoke(cli, ["embed", "--quiet", "--limit", "2"], env=env)
    assert result.exit_code == 0, result.output
    assert "embedded 2 papers" in result.output and "3 still without a vector" in result.output
    result = runner.invoke(cli, ["embed", "--quiet"], env=env)
    assert "embedded 3 papers" in result.output and "0 still" in result.output
    (count,) = rows(engine, "SELECT count(DISTINCT paper_id) FROM paper_embeddings")[0]
    assert count == 5
    result = runner.invoke(cli, ["index", "--quiet"], env=env)
    assert result.exit_code == 0, result.output
    if engine.dialect.name == "sqlite":
        assert "5 indexed" in result.output and "5 in all" in result.output
        rebuilt = runner.invoke(cli, ["index", "--rebuild", "--quiet"], env=env)
        assert "5 papers updated, 5 indexed" in rebuilt.output
    else:
        assert "nothing to do" in result.output
