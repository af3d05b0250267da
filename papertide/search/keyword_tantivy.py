"""The SQLite engine's keyword index: tantivy, in a folder beside the database file.

Chosen by measurement (``shared/reference/measurements.md``, 1M papers, broad OR queries):
FTS5 answered in 110 ms p50 / 590 ms p99 because it scores every matching row; tantivy in about
1 / 4 ms with block-max WAND. BM25 over title (boosted x2), abstract and authors, with English
stemming; a second, unstemmed title field serves typo-tolerant (Levenshtein 1) title look-ups.
Filters (dates, categories, organization, code, daily lists) are indexed too, so a filtered
search never post-filters a truncated list.

Keeping in step: triggers in the database mark changed papers in ``search_changes``
(:mod:`papertide.db.fulltext`); :meth:`TantivyIndex.apply_changes` re-reads those papers,
replaces their documents, commits, and only then removes the marks it handled (a mark made
meanwhile survives, since its count changed). A kill at any moment leaves marks to redo, never a
lost change. One process writes at a time (tantivy's lock file); others skip and read.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tantivy
from sqlalchemy import Engine, text

from papertide.db.engine import write_transaction
from papertide.search.filters import SearchFilters, Sort
from papertide.search.query import SearchQuery

TITLE_BOOST = 2.0
_CHUNK = 5000
_SMALL_SYNC = 2000  # changes a search request applies itself before answering
_RELOAD_EVERY_S = 1.0
_DAY_S = 86_400
_STATE_SOURCE = "keyword-index"

_DOCS_SQL = text(
    """
    SELECT s.paper_id, s.changes, p.id IS NOT NULL AND p.hidden_at IS NULL AS visible,
           p.title, p.abstract, p.authors_text, p.upvotes,
           CAST(strftime('%s', p.published_at) AS INTEGER) AS published,
           p.code_url IS NOT NULL AS has_code, o.slug AS org,
           (SELECT group_concat(c.category, ' ') FROM paper_categories c
             WHERE c.paper_id = p.id) AS categories,
           EXISTS (SELECT 1 FROM daily_entries d
                    WHERE d.paper_id = p.id AND d.status = 'published') AS listed
    FROM (SELECT paper_id, changes FROM search_changes
           WHERE paper_id > :after ORDER BY paper_id LIMIT :n) AS s
    LEFT JOIN papers p ON p.id = s.paper_id
    LEFT JOIN organizations o ON o.id = p.organization_id
    ORDER BY s.paper_id
    """
)


@dataclass(frozen=True)
class KeywordHits:
    """One page of keyword results and how many papers match in all."""

    ids: list[int]
    scores: list[float]
    total: int


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("id", indexed=True, fast=True)
    builder.add_text_field("title", tokenizer_name="en_stem")
    builder.add_text_field("title_words", tokenizer_name="default", index_option="freq")
    builder.add_text_field("abstract", tokenizer_name="en_stem")
    builder.add_text_field("authors", tokenizer_name="default")
    builder.add_text_field("cat", tokenizer_name="raw", index_option="basic")
    builder.add_text_field("org", tokenizer_name="raw", index_option="basic")
    builder.add_integer_field("day", indexed=True, fast=True)
    builder.add_integer_field("published", fast=True)
    builder.add_integer_field("upvotes", fast=True)
    builder.add_integer_field("has_code", indexed=True)
    builder.add_integer_field("listed", indexed=True)
    return builder.build()


def _quoted(value: str) -> str:
    """A value as a quoted tantivy query phrase (the parser analyses it like the field)."""
    cleaned = " ".join(value.replace('"', " ").replace("\\", " ").split())
    return f'"{cleaned}"' if cleaned else ""


def index_dir_for(database_url: str, configured: str) -> Path | None:
    """Where the search indexes of a SQLite database live: the setting, or ``<file>.search``."""
    if configured:
        return Path(configured).expanduser()
    prefix = "sqlite:///"
    if not database_url.startswith(prefix) or database_url[len(prefix) :] in ("", ":memory:"):
        return None
    return Path(database_url[len(prefix) :]).expanduser().resolve().parent / (
        Path(database_url[len(prefix) :]).name + ".search"
    )


class TantivyIndex:
    """The keyword index of one SQLite database (one instance per process and database)."""

    def __init__(self, engine: Engine, folder: Path) -> None:
        self.engine = engine
        self.folder = folder / "keyword"
        self.schema = _schema()
        self._write_lock = threading.Lock()
        self._reloaded_at = 0.0
        self._ensure_matches_database()
        self.index = tantivy.Index(self.schema, path=str(self.folder), reuse=True)

    # --- keeping in step ---------------------------------------------------------------------

    def _ensure_matches_database(self) -> None:
        """Start afresh when the folder belongs to another database (say, a recreated file).

        The database remembers its index's id in ``ingest_state``; the folder keeps a copy."""
        with write_transaction(self.engine) as connection:
            row = connection.execute(
                text("SELECT details FROM ingest_state WHERE source = :s"), {"s": _STATE_SOURCE}
            ).scalar()
            wanted = json.loads(row)["id"] if isinstance(row, str) else (row or {}).get("id")
            marker = self.folder / "database.json"
            have = json.loads(marker.read_text())["id"] if marker.exists() else None
            if wanted is not None and wanted == have:
                return
            wanted = uuid.uuid4().hex
            connection.execute(
                text(
                    "INSERT INTO ingest_state(source, details) VALUES (:s, :d) "
                    "ON CONFLICT(source) DO UPDATE SET details = excluded.details"
                ),
                {"s": _STATE_SOURCE, "d": json.dumps({"id": wanted})},
            )
            connection.execute(
                text(
                    "INSERT INTO search_changes(paper_id) SELECT id FROM papers WHERE true "
                    "ON CONFLICT(paper_id) DO UPDATE SET changes = changes + 1"
                )
            )
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder.mkdir(parents=True)
            marker.write_text(json.dumps({"id": wanted}))

    def pending(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM search_changes")).scalar_one())

    def apply_changes(
        self,
        *,
        limit: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        wait: bool = False,
    ) -> int:
        """Index the marked papers (at most ``limit``); how many were handled.

        Returns 0 without waiting when another thread or process is writing, unless ``wait``.
        """
        if not self._write_lock.acquire(blocking=wait):
            return 0
        try:
            writer = self._writer(wait=wait, big=limit is None or limit > _SMALL_SYNC)
            if writer is None:
                return 0
            try:
                done = self._apply(writer, limit, progress)
            finally:
                writer.wait_merging_threads()
            self.index.reload()
            self._reloaded_at = time.monotonic()
            return done
        finally:
            self._write_lock.release()

    def _writer(self, *, wait: bool, big: bool) -> Any:
        deadline = time.monotonic() + (60.0 if wait else 0.0)
        while True:
            try:
                if big:
                    return self.index.writer(heap_size=256_000_000, num_threads=2)
                return self.index.writer(heap_size=30_000_000, num_threads=1)
            except ValueError:  # another process holds the writer lock
                if time.monotonic() >= deadline:
                    return None
                time.sleep(0.2)

    def _apply(
        self, writer: Any, limit: int | None, progress: Callable[[int, int], None] | None
    ) -> int:
        total = self.pending() if progress else 0
        empty = self.index.searcher().num_docs == 0
        after, done, handled = 0, 0, []
        while limit is None or done < limit:
            n = _CHUNK if limit is None else min(_CHUNK, limit - done)
            with self.engine.connect() as connection:
                rows = list(connection.execute(_DOCS_SQL, {"after": after, "n": n}).mappings())
            if not rows:
                break
            for row in rows:
                paper_id = row["paper_id"]
                if not empty:
                    writer.delete_documents_by_term("id", paper_id)
                if row["visible"]:
                    writer.add_document(_document(row))
                handled.append((paper_id, row["changes"]))
            after = rows[-1]["paper_id"]
            done += len(rows)
            if progress:
                progress(done, total)
            if len(handled) >= 100_000:
                self._commit(writer, handled)
                handled = []
        self._commit(writer, handled)
        return done

    def _commit(self, writer: Any, handled: Sequence[tuple[int, int]]) -> None:
        if not handled:
            return
        writer.commit()
        with write_transaction(self.engine) as connection:
            connection.execute(
                text("DELETE FROM search_changes WHERE paper_id = :p AND changes = :c"),
                [{"p": p, "c": c} for p, c in handled],
            )

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Drop every document and index all papers again."""
        with write_transaction(self.engine) as connection:
            connection.execute(
                text(
                    "INSERT INTO search_changes(paper_id) SELECT id FROM papers WHERE true "
                    "ON CONFLICT(paper_id) DO UPDATE SET changes = changes + 1"
                )
            )
        with self._write_lock:
            writer = self._writer(wait=True, big=True)
            if writer is None:
                raise TimeoutError("another process holds the keyword index's writer lock")
            writer.delete_all_documents()
            writer.commit()
            writer.wait_merging_threads()
            self.index.reload()
        return self.apply_changes(progress=progress, wait=True)

    def _fresh_searcher(self) -> Any:
        now = time.monotonic()
        if now - self._reloaded_at > _RELOAD_EVERY_S:
            self.index.reload()  # another process (an ingest run) may have committed
            self._reloaded_at = now
        return self.index.searcher()

    # --- searching ----------------------------------------------------------------------------

    def search(
        self,
        query: SearchQuery,
        filters: SearchFilters,
        *,
        sort: Sort = Sort.RELEVANCE,
        limit: int = 100,
        offset: int = 0,
    ) -> KeywordHits:
        """BM25 (any word; more words rank higher) for relevance; every word for the other
        sorts, newest or most upvoted first."""
        searcher = self._fresh_searcher()
        conjunctive = sort is not Sort.RELEVANCE
        parts: list[tuple[Any, Any]] = []
        text_query = self._text_query(query, conjunctive)
        if text_query is not None:
            parts.append((tantivy.Occur.Must, text_query))
        parts.extend((tantivy.Occur.Must, f) for f in self._filter_queries(filters))
        parts.extend(self._exclusions(query))
        if not any(occur == tantivy.Occur.Must for occur, _q in parts):
            parts.append((tantivy.Occur.Must, tantivy.Query.all_query()))
        combined = tantivy.Query.boolean_query(parts)
        order = None
        if sort is Sort.DATE or text_query is None:
            order = "published"
        elif sort is Sort.UPVOTES:
            order = "upvotes"
        # Counting walks every posting list (at 1M papers p99 351 ms vs 23 ms without): only the
        # paged sorts, which show a total, count; relevance takes its top DEPTH uncounted.
        counted = sort is not Sort.RELEVANCE or text_query is None
        if order is None:
            result = searcher.search(combined, limit, count=counted, offset=offset)
        else:
            result = searcher.search(
                combined, limit, count=counted, order_by_field=order, offset=offset
            )
        addresses = [address for _key, address in result.hits]
        ids = [int(v) for v in searcher.fast_field_values("id", addresses)] if addresses else []
        scores = [float(key) if order is None else 0.0 for key, _a in result.hits]
        total = int(result.count) if counted else offset + len(ids)
        return KeywordHits(ids, scores, total)

    def fuzzy_title(self, query: SearchQuery, filters: SearchFilters, limit: int = 20) -> list[int]:
        """Papers whose title has every query word, allowing one typo in words of 4+ letters."""
        words = [w.lower() for w in query.terms if len(w) <= 40]
        if not words or len(words) > 12:
            return []
        parts: list[tuple[Any, Any]] = []
        for position, word in enumerate(words):
            last = position == len(words) - 1
            if len(word) >= 4:
                q = tantivy.Query.fuzzy_term_query(
                    self.schema, "title_words", word, distance=1, prefix=last
                )
            else:
                q = tantivy.Query.term_query(self.schema, "title_words", word)
            parts.append((tantivy.Occur.Must, q))
        parts.extend((tantivy.Occur.Must, f) for f in self._filter_queries(filters))
        parts.extend(self._exclusions(query))
        searcher = self._fresh_searcher()
        result = searcher.search(tantivy.Query.boolean_query(parts), limit, count=False)
        addresses = [address for _score, address in result.hits]
        return [int(v) for v in searcher.fast_field_values("id", addresses)] if addresses else []

    def _exclusions(self, query: SearchQuery) -> list[tuple[Any, Any]]:
        found = []
        for word in query.excluded:
            negative = self._parse(_quoted(word), conjunctive=False)
            if negative is not None:
                found.append((tantivy.Occur.MustNot, negative))
        return found

    def _parse(self, query_text: str, *, conjunctive: bool) -> Any:
        if not query_text:
            return None
        return self.index.parse_query(
            query_text,
            ["title", "abstract", "authors"],
            field_boosts={"title": TITLE_BOOST},
            conjunction_by_default=conjunctive,
        )

    def _text_query(self, query: SearchQuery, conjunctive: bool) -> Any:
        words = [q for q in (_quoted(t) for t in query.terms) if q]
        phrases = [q for q in (_quoted(p) for p in query.phrases) if q]
        if not words and not phrases:
            return None
        parts = []
        words_query = self._parse(" ".join(words), conjunctive=conjunctive)
        if words_query is not None:
            parts.append((tantivy.Occur.Must, words_query))
        for phrase in phrases:
            parts.append((tantivy.Occur.Must, self._parse(phrase, conjunctive=True)))
        return tantivy.Query.boolean_query(parts)

    def _filter_queries(self, filters: SearchFilters) -> list[Any]:
        schema = self.schema
        found: list[Any] = []
        start, end = filters.published_bounds()
        if start is not None or end is not None:
            found.append(
                tantivy.Query.range_query(
                    schema,
                    "day",
                    tantivy.FieldType.Integer,
                    int(start.timestamp()) // _DAY_S if start else None,
                    int(end.timestamp()) // _DAY_S - 1 if end else None,
                )
            )
        if filters.categories:
            found.append(tantivy.Query.term_set_query(schema, "cat", list(filters.categories)))
        if filters.organization:
            found.append(tantivy.Query.term_query(schema, "org", filters.organization))
        if filters.has_code:
            found.append(tantivy.Query.term_query(schema, "has_code", 1))
        if filters.on_list:
            found.append(tantivy.Query.term_query(schema, "listed", 1))
        for name in filters.authors:
            quoted = _quoted(name)
            if quoted:
                found.append(self.index.parse_query(quoted, ["authors"]))
        return found

    def count(self) -> int:
        return int(self._fresh_searcher().num_docs)


def _document(row: Any) -> tantivy.Document:
    published = row["published"]
    document = tantivy.Document(
        id=int(row["paper_id"]),
        title=row["title"] or "",
        title_words=row["title"] or "",
        abstract=row["abstract"] or "",
        authors=row["authors_text"] or "",
        upvotes=int(row["upvotes"] or 0),
        has_code=int(bool(row["has_code"])),
        listed=int(bool(row["listed"])),
        published=int(published or 0),
        day=int(published or 0) // _DAY_S,
    )
    for category in (row["categories"] or "").split():
        document.add_text("cat", category)
    if row["org"]:
        document.add_text("org", row["org"])
    return document
