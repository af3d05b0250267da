"""Hybrid search on both engines: keyword index kept in step, query syntax, filters, sorts,
pins, typo tolerance, the embedding pipeline, vectors, fusion and similar papers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from factories import listed, make_record, rows, write_records
from sqlalchemy import Engine, text

from papertide.catalog.records import Author, OrganizationRef, Version
from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.demo_load import load_demo
from papertide.errors import InvalidInput
from papertide.search.embedder import Embedder, document_text
from papertide.search.filters import SearchFilters, Sort
from papertide.search.hybrid import fragment_pins
from papertide.search.models import shared_embedder
from papertide.search.pipeline import embed_missing, missing_count
from papertide.search.service import Mode, SearchRequest, SearchService
from papertide.search.vectors import paper_vector

# Twelve papers on distinct topics; words chosen so some queries match by meaning only.
CORPUS = {
    "2501.00001": (
        "Lane keeping for autonomous vehicles",
        "We control the steering of robotic cars on highways with a learned perception stack "
        "and evaluate on hours of real traffic.",
    ),
    "2501.00002": (
        "KV cache compression for long-context language models",
        "Serving transformers with long prompts is bound by the key-value cache. We quantize "
        "and evict cache entries, cutting memory eight times at equal accuracy.",
    ),
    "2501.00003": (
        "Diffusion language models that denoise text in parallel",
        "We train a masked diffusion model over tokens and decode many positions per step.",
    ),
    "2501.00004": (
        "Protein structure prediction with equivariant networks",
        "Folding amino acid chains into three-dimensional structures using SE(3) equivariance.",
    ),
    "2501.00005": (
        "Speculative decoding with a draft model",
        "A small draft model proposes tokens that the large model verifies in one pass, "
        "speeding up generation of language model outputs.",
    ),
    "2501.00006": (
        "Graph neural networks for molecule property prediction",
        "Message passing over atoms and bonds predicts solubility and toxicity of molecules.",
    ),
    "2501.00007": (
        "Attention is all you need for sequence transduction",
        "The Transformer dispenses with recurrence and convolutions entirely, relying on "
        "attention to draw global dependencies between input and output.",
    ),
    "2501.00008": (
        "Reinforcement learning from human feedback for dialogue agents",
        "We fine-tune chat assistants with preference data and a learned reward model.",
    ),
    "2501.00009": (
        "Quantum error correction with surface codes",
        "Logical qubits are protected by stabilizer measurements on a two-dimensional lattice.",
    ),
    "2501.00010": (
        "Video generation with latent diffusion transformers",
        "We synthesize minute-long videos by denoising spatio-temporal latents.",
    ),
    "2501.00011": (
        "Paged memory management for serving large language models",
        "Allocating the attention key-value cache in blocks removes fragmentation and raises "
        "serving throughput for LLM inference.",
    ),
    "2501.00012": (
        "Survey of image segmentation",
        "A survey of semantic and instance segmentation methods for images <b>and</b> video.",
    ),
}
CATEGORIES = {"2501.00004": ["q-bio.BM", "cs.LG"], "2501.00009": ["quant-ph"]}
AUTHORS = {"2501.00007": [Author("Ashish Vaswani"), Author("Noam Shazeer")]}


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real model, loaded once per test process (the service shares it)."""
    return shared_embedder("all-MiniLM-L6-v2", "auto", 0)


def _record(arxiv_id: str, n: int, **overrides: object) -> object:
    title, abstract = CORPUS[arxiv_id]
    values: dict[str, object] = {
        "title": title,
        "abstract": abstract,
        "categories": CATEGORIES.get(arxiv_id, ["cs.CL", "cs.LG"]),
        "authors": AUTHORS.get(arxiv_id, [Author("Ada Lovelace"), Author("Alan Turing")]),
        "versions": [Version(1, datetime(2025, 1, n, 12, tzinfo=UTC))],
        "code_url": f"https://github.com/lab/p{n}" if n % 3 == 0 else None,
        "upvotes": n * 7 % 13,
    }
    if n <= 4:
        values["listing"] = listed(date(2025, 1, 20), n)
    if n in (2, 11):
        values["organization"] = OrganizationRef("serve-lab", "Serving Lab")
    values.update(overrides)
    return make_record(arxiv_id, **values)


@pytest.fixture
def corpus(engine: Engine) -> dict[str, int]:
    write_records(
        engine,
        *[_record(a, n) for n, a in enumerate(CORPUS, start=1)],  # type: ignore[misc]
    )
    return dict(rows(engine, "SELECT arxiv_id, id FROM papers"))


@pytest.fixture
def service(engine: Engine, settings: Settings, corpus: dict[str, int]) -> Iterator[SearchService]:
    service = SearchService(engine, settings.replace(embed_in_background=False))
    yield service
    service.stop()


@pytest.fixture
def embedded(service: SearchService, engine: Engine, embedder: Embedder) -> SearchService:
    embed_missing(engine, embedder)
    return service


def titles(service: SearchService, engine: Engine, request: SearchRequest) -> list[str]:
    ids = service.search(request).ids
    names = dict(rows(engine, "SELECT id, arxiv_id FROM papers"))
    return [names[i] for i in ids]


def ask(text_: str, **kwargs: object) -> SearchRequest:
    return SearchRequest(text_, **kwargs)  # type: ignore[arg-type]


# --- keyword index kept in step -----------------------------------------------------------------


def test_keyword_index_follows_insert_update_delete(service: SearchService, engine: Engine) -> None:
    def find(words: str) -> list[str]:
        return titles(service, engine, ask(words, mode=Mode.KEYWORD))

    assert find("equivariant")[0] == "2501.00004"
    assert find("stabilizer")[0] == "2501.00009"
    write_records(
        engine,
        _record(
            "2501.00004",
            4,
            version=2,
            title="Folding proteins with recurrent networks",
            abstract="Amino acid chains folded step by step.",
        ),
    )
    assert "2501.00004" not in find("equivariant")
    assert find("recurrent folding")[0] == "2501.00004"
    with write_transaction(engine) as connection:
        connection.execute(text("DELETE FROM papers WHERE arxiv_id = '2501.00009'"))
    assert find("stabilizer") == []


def test_hidden_papers_are_never_found(service: SearchService, engine: Engine) -> None:
    with write_transaction(engine) as connection:
        connection.execute(
            text("UPDATE papers SET hidden_at = :t WHERE arxiv_id = '2501.00009'"),
            {"t": datetime(2025, 2, 1)},
        )
    assert titles(service, engine, ask("quantum surface codes")) == []
    assert titles(service, engine, ask("2501.00009")) == []


# --- query syntax ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "must", "must_not"),
    [
        ('"key-value cache"', {"2501.00002", "2501.00011"}, {"2501.00005"}),
        ("cache -eviction -evict", {"2501.00011"}, {"2501.00002"}),
        ("author:Vaswani attention", {"2501.00007"}, {"2501.00011"}),
        ('author:"Noam Shazeer"', {"2501.00007"}, {"2501.00001"}),
        ("cat:q-bio.BM", {"2501.00004"}, {"2501.00007"}),
        ("cat:quant-ph cat:q-bio.BM", {"2501.00004", "2501.00009"}, {"2501.00001"}),
    ],
)
def test_query_syntax(
    service: SearchService, engine: Engine, query: str, must: set[str], must_not: set[str]
) -> None:
    found = set(titles(service, engine, ask(query, mode=Mode.KEYWORD)))
    assert must <= found
    assert not (must_not & found)


def test_bad_query_is_invalid_input(service: SearchService) -> None:
    with pytest.raises(InvalidInput, match=r"cs\.\.x"):
        service.search(ask("cat:cs..x"))
    with pytest.raises(InvalidInput, match="sort"):
        Sort.parse("sideways")


# --- filters, sorts, paging --------------------------------------------------------------------


def test_filters(service: SearchService, engine: Engine) -> None:
    def find(words: str, **filters: object) -> set[str]:
        request = ask(words, filters=SearchFilters(**filters), mode=Mode.KEYWORD)  # type: ignore[arg-type]
        return set(titles(service, engine, request))

    everything = "models networks cache learning diffusion survey quantum decoding attention"
    assert find("cache", organization="serve-lab") == {"2501.00002", "2501.00011"}
    assert find("", date_from=date(2025, 1, 3), date_to=date(2025, 1, 4)) == {
        "2501.00003",
        "2501.00004",
    }
    with_code = find(everything, has_code=True)
    assert with_code and all(int(a[-2:]) % 3 == 0 for a in with_code)
    assert find(everything, on_list=True) <= {
        "2501.00001",
        "2501.00002",
        "2501.00003",
        "2501.00004",
    }
    assert find("", categories=("quant-ph",)) == {"2501.00009"}
    with pytest.raises(InvalidInput, match="empty"):
        SearchFilters(date_from=date(2025, 2, 1), date_to=date(2025, 1, 1))


def test_sort_by_date_and_upvotes_lists_papers_with_every_word(
    service: SearchService, engine: Engine
) -> None:
    newest = titles(service, engine, ask("language models", sort=Sort.DATE))
    dates = rows(engine, "SELECT arxiv_id, published_at FROM papers")
    published = {a: str(p) for a, p in dates}
    assert newest == sorted(newest, key=lambda a: published[a], reverse=True)
    assert "2501.00011" in newest and "2501.00010" not in newest  # every word, not any
    by_votes = titles(service, engine, ask("language models", sort=Sort.UPVOTES))
    votes = dict(rows(engine, "SELECT arxiv_id, upvotes FROM papers"))
    assert [votes[a] for a in by_votes] == sorted((votes[a] for a in by_votes), reverse=True)


def test_pages_do_not_overlap(service: SearchService, engine: Engine) -> None:
    first = service.search(ask("", filters=SearchFilters(categories=("cs.CL",)), page_size=4))
    second = service.search(
        ask("", filters=SearchFilters(categories=("cs.CL",)), page_size=4, page=2)
    )
    assert first.total == second.total == 10
    assert len(first.ids) == len(second.ids) == 4 and not set(first.ids) & set(second.ids)


# --- pins and typos ----------------------------------------------------------------------------


def test_arxiv_id_and_exact_title_are_pinned_first(service: SearchService, engine: Engine) -> None:
    outcome = service.search(ask("arXiv:2501.00006v2"))
    assert outcome.pins and titles(service, engine, ask("arXiv:2501.00006v2"))[0] == "2501.00006"
    exact = "Paged memory management for serving large language models"
    assert titles(service, engine, ask(exact.upper()))[0] == "2501.00011"
    assert titles(service, engine, ask("https://arxiv.org/abs/2501.00003"))[0] == "2501.00003"


def test_typo_in_title_fragment_is_tolerated(
    embedded: SearchService, engine: Engine, engine_name: str
) -> None:
    found = titles(embedded, engine, ask("speculatve decodng with a draft"))
    assert found[0] == "2501.00005"
    if engine_name == "sqlite":  # tantivy's Levenshtein title look-up works without vectors
        found = titles(embedded, engine, ask("protien equivarient", mode=Mode.KEYWORD))
        assert found[0] == "2501.00004"


# --- embeddings and hybrid ---------------------------------------------------------------------


def test_keyword_fallback_until_embedded_then_hybrid(
    service: SearchService, engine: Engine, embedder: Embedder
) -> None:
    query = ask("self-driving automobiles")
    before = service.search(query)
    assert before.mode is Mode.KEYWORD and before.notice
    assert "2501.00001" not in titles(service, engine, query)  # no shared word
    embed_missing(engine, embedder, limit=5)
    partly = service.search(query)
    assert partly.mode is Mode.HYBRID and "covers 5 of 12" in (partly.notice or "")
    embed_missing(engine, embedder)
    after = service.search(query)
    assert after.mode is Mode.HYBRID and after.notice is None
    assert titles(service, engine, query)[0] == "2501.00001"  # found by meaning


def test_vector_mode_ranks_by_meaning(embedded: SearchService, engine: Engine) -> None:
    found = titles(embedded, engine, ask("folding amino acids", mode=Mode.VECTOR))
    assert found[0] == "2501.00004"
    assert embedded.search(ask("folding amino acids", mode=Mode.VECTOR)).mode is Mode.VECTOR


def test_vector_candidates_obey_filters_and_exclusions(
    embedded: SearchService, engine: Engine
) -> None:
    found = titles(embedded, engine, ask("memory for serving LLMs -paged"))
    assert "2501.00011" not in found and "2501.00002" in found
    only_org = titles(
        embedded, engine, ask("serving LLMs", filters=SearchFilters(organization="serve-lab"))
    )
    assert set(only_org) == {"2501.00002", "2501.00011"}


def test_embedding_is_resumable_and_follows_text_changes(
    service: SearchService, engine: Engine, embedder: Embedder
) -> None:
    first = embed_missing(engine, embedder, limit=5)
    assert first.embedded == 5 and missing_count(engine, embedder.name) == 7
    second = embed_missing(engine, embedder)
    assert second.embedded == 7 and missing_count(engine, embedder.name) == 0
    assert embed_missing(engine, embedder).embedded == 0
    (count,) = rows(engine, "SELECT count(*) FROM paper_embeddings")[0]
    assert count == 12
    write_records(engine, _record("2501.00009", 9, version=2, abstract="Now about cooking."))
    assert missing_count(engine, embedder.name) == 1  # the stale vector was dropped
    assert embed_missing(engine, embedder).embedded == 1


def test_similar_papers(embedded: SearchService, engine: Engine, corpus: dict[str, int]) -> None:
    found, mode = embedded.similar(corpus["2501.00002"], 3)
    names = {v: k for k, v in corpus.items()}
    assert mode is Mode.VECTOR
    assert names[found[0][0]] == "2501.00011"  # both about the KV cache when serving LLMs
    assert corpus["2501.00002"] not in [i for i, _s in found]
    assert found[0][1] >= found[-1][1]


def test_similar_falls_back_to_words_without_a_vector(
    service: SearchService, corpus: dict[str, int]
) -> None:
    found, mode = service.similar(corpus["2501.00002"], 3)
    assert mode is Mode.KEYWORD
    assert corpus["2501.00011"] in [i for i, _s in found]


# --- the SQLite vector and keyword indexes beside the file --------------------------------------


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_hnsw_index_is_saved_and_reloaded(
    engine: Engine, settings: Settings, corpus: dict[str, int], embedder: Embedder
) -> None:
    embed_missing(engine, embedder)
    hnsw = SearchService(engine, settings.replace(vector_index="hnsw"))
    index = hnsw.vector_index(embedder)
    assert index.sync() == 12 and index.kind == "hnsw"
    query = embedder.encode_query("protein folding")
    best = index.search(query, 3)
    assert best[0][0] == corpus["2501.00004"]
    again = SearchService(engine, settings.replace(vector_index="hnsw")).vector_index(embedder)
    assert again.kind == "hnsw" and again.count == 12 and again.sync() == 0
    assert again.search(query, 3) == best


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_keyword_index_of_another_database_is_rebuilt(
    engine: Engine, settings: Settings, corpus: dict[str, int]
) -> None:
    service = SearchService(engine, settings)
    assert service.search(ask("quantum", mode=Mode.KEYWORD)).ids
    with write_transaction(engine) as connection:  # as if the file had been recreated
        connection.execute(text("DELETE FROM ingest_state WHERE source = 'keyword-index'"))
        connection.execute(text("DELETE FROM papers WHERE arxiv_id = '2501.00009'"))
        connection.execute(text("DELETE FROM search_changes"))
    fresh = SearchService(engine, settings)
    assert fresh.search(ask("quantum", mode=Mode.KEYWORD)).ids == []
    assert fresh.keyword is not None and fresh.keyword.count() == 11


@pytest.mark.slow
@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_embed_killed_midway_resumes_without_duplicates(db_url: str, engine: Engine) -> None:
    """kill -9 during `papertide embed`, then run it again: every paper ends with one vector."""
    import os
    import signal
    import subprocess
    import sys
    import time

    words = [
        "graph",
        "learning",
        "model",
        "data",
        "network",
        "attention",
        "language",
        "vision",
        "robot",
        "protein",
    ]
    write_records(
        engine,
        *[
            make_record(
                f"2504.{n:05d}",
                title=f"Paper {n} on {words[n % 10]} and {words[n * 7 % 10]}",
                abstract=" ".join(words[(n + i) % 10] for i in range(60)),
            )
            for n in range(1, 601)
        ],
    )
    env = {**os.environ, "PAPERTIDE_DATABASE_URL": db_url}
    command = [sys.executable, "-m", "papertide", "embed", "--quiet"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while rows(engine, "SELECT count(*) FROM paper_embeddings")[0][0] == 0:
        assert process.poll() is None, "embed finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    (partial,) = rows(engine, "SELECT count(*) FROM paper_embeddings")[0]
    assert 0 < partial < 600
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert f"embedded {600 - partial:,} papers" in rerun.stdout
    assert rows(engine, "SELECT count(*), count(DISTINCT paper_id) FROM paper_embeddings")[0] == (
        600,
        600,
    )


@pytest.mark.slow
def test_demo_loads_with_its_shipped_vectors(settings: Settings, engine: Engine) -> None:
    """`papertide demo` stores the shipped embeddings: semantic search works at once, and the
    shipped vectors are the model's (a fresh embedding of a demo paper agrees with its vector)."""
    message = load_demo(settings, progress=False)
    assert "11021 papers" in message and "11021 embeddings" in message
    embedder = shared_embedder("all-MiniLM-L6-v2", "auto", 0)
    assert missing_count(engine, embedder.name) == 0
    paper_id, title, abstract = rows(
        engine, "SELECT id, title, abstract FROM papers ORDER BY id DESC LIMIT 1"
    )[0]
    fresh = embedder.encode_documents([document_text(title, abstract)])[0]
    with engine.connect() as connection:
        shipped = paper_vector(connection, paper_id, embedder.name)
    assert shipped is not None and float(fresh @ shipped) > 0.99
    service = SearchService(engine, settings.replace(embed_in_background=False))
    outcome = service.search(ask("diffusion language models"))
    assert outcome.mode is Mode.HYBRID and outcome.notice is None
    assert "already has" in load_demo(settings, progress=False)  # once only


def test_fragment_pins_need_every_query_word() -> None:
    titles = {
        1: "Multiple myeloma outcomes in a cohort",
        2: "Speculative decoding with small draft models",
        3: "Meat & multiple myeloma risk",
    }
    assert fragment_pins("meat & multiple myeloma", titles, [1, 2, 3]) == [3]
    assert fragment_pins("red meat & multiple myeloma", titles, [1, 2, 3]) == []  # "red" missing
    assert fragment_pins("speculatve decodng with small", titles, [1, 2, 3]) == [2]
    assert fragment_pins("multiple myeloma", titles, [1, 2, 3]) == []  # two words: no pins
