"""Search as the site uses it: one :class:`SearchService` per process and database.

It owns the engine's indexes (on SQLite the tantivy keyword index and the faiss vector index
beside the file; on PostgreSQL nothing but SQL), the embedding model, and the background job that
keeps them in step and embeds new papers. Every search:

1. parses the query (:mod:`papertide.search.query`) and merges its ``cat:``/``author:`` parts
   into the filters;
2. for relevance: pins the paper whose arXiv id the query is and papers whose title is the
   query, takes the keyword ranking (top :data:`DEPTH`), the vector ranking (top
   :data:`DEPTH`, filtered in SQL) and, on SQLite, typo-tolerant title matches, fuses them by
   reciprocal rank fusion (:mod:`papertide.search.hybrid`), then pins title-fragment matches;
3. for date or upvote order: the papers matching every word, in that order, straight from the
   keyword index (all of them, paged).

While the model loads or no paper has a vector yet, relevance search is keyword-only and the
result says so (``notice``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from sqlalchemy import Connection, Engine, and_, func, not_, or_, select, text

from papertide.config import Settings
from papertide.db.engine import is_sqlite
from papertide.db.schema import paper_embeddings, papers
from papertide.errors import DatabaseUnavailable, InvalidInput
from papertide.search import hybrid, keyword_postgres, vectors
from papertide.search.coverage import Coverage
from papertide.search.embedder import Embedder
from papertide.search.filters import SearchFilters, Sort
from papertide.search.keyword_tantivy import KeywordHits, TantivyIndex, index_dir_for
from papertide.search.models import claim_loading, loaded, model_key, shared_embedder
from papertide.search.pipeline import CHUNK, embed_missing
from papertide.search.query import SearchQuery, parse_query, plain_terms

log = logging.getLogger(__name__)

DEPTH = 100  # candidates taken from each ranking for fusion
FILTERED_DEPTH = 400  # vector candidates fetched when filters will drop some
MAX_RESULTS = 200  # relevance results one can page through
MAX_PAGE_SIZE = 120  # the HF search API's largest limit
_INLINE_CHANGES = 2000
_RECOUNT_S = 60.0


class Mode(StrEnum):
    HYBRID = "hybrid"
    KEYWORD = "keyword"
    VECTOR = "vector"

    @classmethod
    def parse(cls, value: str) -> Mode:
        try:
            return cls(value or "hybrid")
        except ValueError:
            raise InvalidInput(
                f"mode {value!r} is not one of {', '.join(m.value for m in cls)}"
            ) from None


@dataclass(frozen=True)
class SearchRequest:
    text: str
    filters: SearchFilters = field(default_factory=SearchFilters)
    sort: Sort = Sort.RELEVANCE
    page: int = 1
    page_size: int = 20
    mode: Mode = Mode.HYBRID

    def __post_init__(self) -> None:
        if self.page < 1:
            raise InvalidInput(f"page {self.page} does not exist (pages start at 1)")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise InvalidInput(f"page size {self.page_size} is outside 1-{MAX_PAGE_SIZE}")


@dataclass
class SearchOutcome:
    query: SearchQuery
    ids: list[int]  # this page, in order
    total: int  # results in all (relevance: at most MAX_RESULTS)
    mode: Mode  # what ran
    notice: str | None = None
    pins: dict[int, str] = field(default_factory=dict)  # id -> why it comes first
    keyword_total: int = 0  # papers matching the words (capped on PostgreSQL)


class SearchService:
    """Searching one database; thread-safe."""

    def __init__(self, engine: Engine, settings: Settings, *, serving: bool = False) -> None:
        self.engine = engine
        self.settings = settings
        self.serving = serving
        self.sqlite = is_sqlite(engine)
        folder: Path | None = None
        if self.sqlite:
            folder = index_dir_for(settings.database_url, settings.search_index_dir)
            if folder is None:
                raise InvalidInput("search needs a SQLite database file, not an in-memory one")
        self.folder = folder
        self.keyword = TantivyIndex(engine, folder) if folder else None
        self._vectors: vectors.FaissVectors | None = None
        self._vectors_lock = threading.Lock()
        self._status: Coverage | None = None
        self._status_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._model_error: str | None = None

    # --- the model ----------------------------------------------------------------------------

    def embedder(self, *, wait: bool = False) -> Embedder | None:
        """The model when loaded; otherwise start loading it (unless ``wait``) and say None."""
        key = model_key(self.settings, self.serving)
        found = loaded(key)
        if found is None and wait:
            return shared_embedder(*key)
        if found is None and claim_loading(key):
            threading.Thread(target=self._load_model, daemon=True, name="model").start()
        return found

    def _load_model(self) -> None:
        try:
            shared_embedder(*model_key(self.settings, self.serving))
        except Exception as exc:  # a bad model setting: searches say so and stay keyword-only
            self._model_error = str(exc)
            log.error("embedding model failed to load: %s", exc)

    def model_name(self) -> str | None:
        model = self.embedder()
        return model.name if model else None

    # --- keeping in step --------------------------------------------------------------------

    def vector_index(self, embedder: Embedder) -> vectors.FaissVectors:
        with self._vectors_lock:
            if self._vectors is None or self._vectors.model != embedder.name:
                self._vectors = vectors.FaissVectors(
                    self.engine,
                    self.folder,
                    embedder.name,
                    embedder.dim,
                    kind=self.settings.vector_index,
                    hnsw_threshold=self.settings.vector_hnsw_threshold,
                )
            return self._vectors

    def catch_up(self, *, inline: bool = True) -> None:
        """Apply pending keyword changes and new vectors (a request applies only a few)."""
        if self.keyword is not None and self._has_changes(inline):
            try:
                self.keyword.apply_changes(limit=_INLINE_CHANGES if inline else None)
            except (DatabaseUnavailable, OSError, ValueError) as exc:  # tantivy: ValueError
                if not inline:
                    raise
                # A full disk, a read-only database: answer from the index as it is.
                log.warning("keyword index not brought up to date: %s", exc)
        model = self.embedder()
        if self.sqlite and model is not None:
            index = self.vector_index(model)
            if index.index is None or self._newest_vector(model.name) > index.last_id:
                index.sync(limit=5 * CHUNK if inline and index.index is not None else None)

    def _has_changes(self, inline: bool) -> bool:
        with self.engine.connect() as connection:
            if not inline:
                return (
                    connection.execute(text("SELECT 1 FROM search_changes LIMIT 1")).first()
                    is not None
                )
            n = connection.execute(
                text("SELECT count(*) FROM (SELECT 1 FROM search_changes LIMIT :n) AS pending"),
                {"n": _INLINE_CHANGES + 1},
            ).scalar_one()
            return 0 < int(n) <= _INLINE_CHANGES

    def _newest_vector(self, model: str) -> int:
        with self.engine.connect() as connection:
            newest = connection.execute(
                select(func.max(paper_embeddings.c.id)).where(paper_embeddings.c.model == model)
            ).scalar()
            return int(newest or 0)

    def coverage(self) -> tuple[int, int]:
        """(papers with a vector of the current model, papers).

        Counted in full at most every :data:`_RECOUNT_S`; in between, only rows newer than the
        last count are added (an index range), so the figure is exact as papers and vectors
        arrive and drifts only by deletions until the next full count."""
        model = self.embedder()
        name = model.name if model else None
        with self._status_lock:
            status = self._status
            with self.engine.connect() as connection:
                if status is None or status.model != name:
                    status = Coverage.count(connection, name)
                else:
                    status = status.advance(connection)
            self._status = status
        return status.embedded, status.papers

    def recount(self) -> None:
        """The full count behind :meth:`coverage` (background job: at 1M papers it takes
        0.1-2 s, too long for a request)."""
        model = self.embedder()
        name = model.name if model else None
        status = self._status
        if status is None or status.model != name or time.monotonic() - status.at > _RECOUNT_S:
            with self.engine.connect() as connection:
                fresh = Coverage.count(connection, name)
            with self._status_lock:
                self._status = fresh

    # --- the background job -----------------------------------------------------------------

    def start_background(self, interval: float = 2.0) -> None:
        """Keep indexes in step and embed new papers in a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, args=(interval,), daemon=True, name="search-indexer"
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self._vectors is not None:
            self._vectors.save()

    def _run(self, interval: float) -> None:
        while not self._stop.is_set():
            busy = False
            try:
                busy = self.background_step()
            except Exception:
                log.exception("search indexer step failed; retrying")
            if not busy:
                self._stop.wait(interval)

    def background_step(self) -> bool:
        """One round of background work; whether there was any."""
        busy = False
        if self.keyword is not None and self._has_changes(inline=False):
            busy = self.keyword.apply_changes() > 0
        if self.settings.embed_in_background:
            model = self.embedder(wait=True)
            assert model is not None
            report = embed_missing(self.engine, model, limit=4 * CHUNK, stop=self._stop)
            busy = busy or report.embedded > 0
            if report.embedded and not self.sqlite:
                with self.engine.begin() as connection:
                    vectors.ensure_pg_index(connection, model.dim)
        self.catch_up(inline=False)
        self.recount()
        return busy

    # --- searching ------------------------------------------------------------------------------

    def search(self, request: SearchRequest) -> SearchOutcome:
        query = parse_query(request.text)
        filters = request.filters.with_query(query.categories, query.authors)
        self.catch_up()
        offset = (request.page - 1) * request.page_size
        if request.sort is not Sort.RELEVANCE or not query.has_text:
            hits = self._keyword(query, filters, request.sort, request.page_size, offset)
            return SearchOutcome(query, hits.ids, hits.total, Mode.KEYWORD, None, {}, hits.total)
        ranked, outcome = self._relevance(query, filters, request.mode)
        outcome.total = len(ranked)
        outcome.ids = ranked[offset : offset + request.page_size]
        return outcome

    def _keyword(
        self, query: SearchQuery, filters: SearchFilters, sort: Sort, limit: int, offset: int
    ) -> KeywordHits:
        if self.keyword is not None:
            return self.keyword.search(query, filters, sort=sort, limit=limit, offset=offset)
        with self.engine.connect() as connection:
            return keyword_postgres.search_postgres(
                connection, query, filters, sort=sort, limit=limit, offset=offset
            )

    def _relevance(
        self, query: SearchQuery, filters: SearchFilters, mode: Mode
    ) -> tuple[list[int], SearchOutcome]:
        notice = None
        model = self.embedder() if mode is not Mode.KEYWORD else None
        vector_ids: list[int] | None = None
        if mode is not Mode.KEYWORD:
            if model is None:
                notice = self._why_no_vectors()
            else:
                vector_ids = self._vector_ids(model, query, filters)
                embedded, total = self.coverage()
                if embedded == 0:
                    vector_ids, notice = None, self._why_no_vectors()
                elif embedded < total:
                    notice = (
                        f"Semantic search covers {embedded:,} of {total:,} papers so far; "
                        "the rest are found by their words until they are embedded."
                    )
        keyword_hits = KeywordHits([], [], 0)
        title_ids: list[int] = []
        if mode is not Mode.VECTOR or vector_ids is None:
            keyword_hits = self._keyword(query, filters, Sort.RELEVANCE, DEPTH, 0)
            if self.keyword is not None:
                title_ids = self.keyword.fuzzy_title(query, filters)
        rankings: list[tuple[list[int], float]] = [
            (keyword_hits.ids, hybrid.KEYWORD_WEIGHT),
            (title_ids, hybrid.TITLE_WEIGHT),
        ]
        if vector_ids is not None:
            rankings.append((vector_ids, hybrid.VECTOR_WEIGHT))
        fused = hybrid.rrf(rankings)
        pins = self._pins(query, filters, fused[:50])
        ranked = hybrid.pin_first(list(pins), fused)[:MAX_RESULTS]
        used = Mode.HYBRID if vector_ids is not None else Mode.KEYWORD
        if mode is Mode.VECTOR and vector_ids is not None:
            used, ranked, pins = Mode.VECTOR, vector_ids[:MAX_RESULTS], {}
        outcome = SearchOutcome(query, [], 0, used, notice, pins, keyword_hits.total)
        return ranked, outcome

    def _why_no_vectors(self) -> str:
        if self._model_error:
            return (
                f"Semantic search is off: the embedding model failed to load ({self._model_error})."
            )
        if self.embedder() is None:
            return "Semantic search is starting up; these results match your words."
        return "Papers are being embedded for semantic search; these results match your words."

    def _vector_ids(self, model: Embedder, query: SearchQuery, filters: SearchFilters) -> list[int]:
        vector = model.encode_query(query.text)
        must_filter = filters.active or query.excluded or query.phrases
        if not self.sqlite:
            with self.engine.begin() as connection:
                found = vectors.search_postgres(
                    connection, model.name, vector, DEPTH, filters if must_filter else None
                )
                ids = [paper_id for paper_id, _s in found]
                if query.excluded or query.phrases:
                    ids = self._passing(connection, ids, query, SearchFilters())
                return ids
        index = self.vector_index(model)
        found = index.search(vector, FILTERED_DEPTH if must_filter else DEPTH)
        ids = [paper_id for paper_id, _s in found]
        with self.engine.connect() as connection:
            return self._passing(connection, ids, query, filters)[:DEPTH]

    def _passing(
        self, connection: Connection, ids: list[int], query: SearchQuery, filters: SearchFilters
    ) -> list[int]:
        """Those of ``ids`` (in order) that pass the filters, contain every phrase and no
        excluded word, and are visible."""
        if not ids:
            return []
        condition = and_(papers.c.id.in_(ids), filters.sql())
        body = func.lower(papers.c.title + " " + papers.c.abstract)
        for phrase in query.phrases:
            condition = and_(condition, body.contains(phrase.lower(), autoescape=True))
        if query.excluded:
            condition = and_(
                condition,
                not_(or_(*(body.contains(w.lower(), autoescape=True) for w in query.excluded))),
            )
        keep = set(connection.execute(select(papers.c.id).where(condition)).scalars())
        return [paper_id for paper_id in ids if paper_id in keep]

    def _pins(self, query: SearchQuery, filters: SearchFilters, top: list[int]) -> dict[int, str]:
        pins: dict[int, str] = {}
        visible = filters.sql()
        with self.engine.connect() as connection:
            if query.arxiv_id:
                found = connection.execute(
                    select(papers.c.id).where(papers.c.arxiv_id == query.arxiv_id, visible)
                ).scalar()
                if found is not None:
                    pins[found] = "Exact arXiv id"
            wanted = hybrid.normalise_title(query.raw)
            for paper_id in connection.execute(
                select(papers.c.id)
                .where(func.lower(papers.c.title) == wanted, visible)
                .order_by(papers.c.id.desc())
                .limit(5)
            ).scalars():
                pins.setdefault(paper_id, "Exact title")
            if top:
                titles = dict(
                    connection.execute(
                        select(papers.c.id, papers.c.title).where(papers.c.id.in_(top))
                    ).all()
                )
                for paper_id in hybrid.fragment_pins(
                    query.text, titles, [i for i in top if i in titles]
                ):
                    pins.setdefault(paper_id, "Title match")
        return pins

    # --- similar papers -------------------------------------------------------------------------

    def similar(self, paper_id: int, limit: int = 10) -> tuple[list[tuple[int, float]], Mode]:
        """Papers closest to ``paper_id`` by meaning ((id, cosine) best first), or by words
        while the paper has no vector yet (scores 0)."""
        self.catch_up()
        model = self.embedder()
        if model is not None:
            with self.engine.begin() as connection:
                vector = vectors.paper_vector(connection, paper_id, model.name)
                if vector is not None and not self.sqlite:
                    found = vectors.search_postgres(
                        connection, model.name, vector, limit + 1, SearchFilters()
                    )
                    return [(i, s) for i, s in found if i != paper_id][:limit], Mode.VECTOR
            if vector is not None:
                found = self.vector_index(model).search(vector, 2 * limit + 1)
                with self.engine.connect() as connection:
                    keep = self._passing(
                        connection, [i for i, _s in found], parse_query(""), SearchFilters()
                    )
                scores = dict(found)
                return [(i, scores[i]) for i in keep if i != paper_id][:limit], Mode.VECTOR
        with self.engine.connect() as connection:
            title = connection.execute(
                select(papers.c.title).where(papers.c.id == paper_id)
            ).scalar()
        if not title:
            return [], Mode.KEYWORD
        terms = plain_terms(title)[:20]
        hits = self._keyword(
            SearchQuery(raw=title, terms=terms), SearchFilters(), Sort.RELEVANCE, limit + 1, 0
        )
        return [(i, 0.0) for i in hits.ids if i != paper_id][:limit], Mode.KEYWORD


_services: dict[tuple[str, str], SearchService] = {}
_services_lock = threading.Lock()


def service_for(engine: Engine, settings: Settings, *, serving: bool = False) -> SearchService:
    """The process's service for this database (indexes are opened once per process)."""
    key = (settings.database_url, settings.search_index_dir)
    with _services_lock:
        found = _services.get(key)
        if found is None or found.engine is not engine:
            found = SearchService(engine, settings, serving=serving)
            _services[key] = found
        return found
