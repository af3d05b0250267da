"""One judged collection as a searchable database, for ``bench/relevance.py``: the papers
ingested into a SQLite database (synthetic new-style arXiv ids), embedded with the real model
and indexed as the site does, cached in a folder and rebuilt when the corpus changes.
:func:`ready` makes the search service on a built database, SQLite or (``bench/relevance_pg.py``,
a copy of the SQLite one) PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judged import Collection


@dataclass
class Indexed:
    """A collection's database, its search service and the doc id <-> paper id maps."""

    name: str
    service: Any  # SearchService
    paper_of: dict[str, int]
    doc_of: dict[int, str]
    build_s: float
    embedded: int
    embed_s: float
    note: str = ""  # how the database came to be, when not simply built or cached


def _arxiv_id(n: int) -> str:
    """The n-th synthetic new-style id (n from 0): 1501.00001 ... 1501.99999, 1502.00001 ..."""
    month = n // 99_999
    return f"{15 + month // 12:02d}{month % 12 + 1:02d}.{n % 99_999 + 1:05d}"


def fingerprint(collection: Collection) -> str:
    digest = hashlib.sha256()
    for doc in collection.docs:
        digest.update(json.dumps([doc.doc_id, doc.title, doc.abstract, list(doc.authors)]).encode())
    return digest.hexdigest()


def _remove_database(db: Path) -> None:
    for path in db.parent.glob(db.name + "*"):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def open_indexed(name: str, collection: Collection, cache: Path, embedder: Any) -> Indexed:
    """The collection's cached database (built, embedded and indexed when missing or stale)."""
    from zoneinfo import ZoneInfo

    from papertide.catalog.records import Author, PaperRecord
    from papertide.catalog.store import CatalogWriter
    from papertide.db.engine import make_engine, write_transaction
    from papertide.db.migrate import migrate

    started = time.perf_counter()
    cache.mkdir(parents=True, exist_ok=True)
    db = cache / f"{name}.db"
    marker = cache / f"{name}.json"
    fingerprint_now = fingerprint(collection)
    fresh = not (
        db.exists()
        and marker.exists()
        and json.loads(marker.read_text()).get("fingerprint") == fingerprint_now
    )
    url = f"sqlite:///{db}"
    if fresh:
        _remove_database(db)
        marker.unlink(missing_ok=True)
        engine = make_engine(url)
        migrate(engine)
        writer = CatalogWriter(tz=ZoneInfo("UTC"))
        records = [
            PaperRecord(
                arxiv_id=_arxiv_id(n),
                source="bench",
                position=f"{collection.name}:{doc.doc_id}",
                version=1,
                title=doc.title or doc.doc_id,
                abstract=doc.abstract or None,
                authors=[Author(a) for a in doc.authors],
            )
            for n, doc in enumerate(collection.docs)
        ]
        for start in range(0, len(records), 2000):
            with write_transaction(engine) as connection:
                result = writer.write(connection, records[start : start + 2000])
            if result.errors:
                sys.exit(f"{name}: {result.errors[:3]}")
    else:
        engine = make_engine(url)
        migrate(engine)
    indexed = ready(name, collection, engine, url, embedder, started)
    if fresh:
        marker.write_text(
            json.dumps({"fingerprint": fingerprint_now, "docs": len(collection.docs)})
        )
    return indexed


def ready(
    name: str, collection: Collection, engine: Any, url: str, embedder: Any, started: float
) -> Indexed:
    """The search service on the migrated database ``engine`` (at ``url``) holding the
    collection, as the site makes it: keyword index (SQLite's tantivy) brought up to date,
    papers without a vector embedded, the vector index (SQLite's FAISS) built."""
    from sqlalchemy import text

    from papertide.config import load_settings
    from papertide.search.pipeline import embed_missing
    from papertide.search.service import SearchService

    settings = load_settings(env={"PAPERTIDE_DATABASE_URL": url}).replace(embed_in_background=False)
    service = SearchService(engine, settings)
    if service.keyword is not None:  # SQLite; PostgreSQL's tsvector column keeps itself
        service.keyword.apply_changes(wait=True)
    report = embed_missing(engine, embedder)
    if report.remaining:
        sys.exit(f"{name}: {report.remaining} papers left without a vector")
    service.catch_up(inline=False)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT arxiv_id, id FROM papers")).all()
    arxiv_to_paper: dict[str, int] = {str(a): int(i) for a, i in rows}
    paper_of = {doc.doc_id: arxiv_to_paper[_arxiv_id(n)] for n, doc in enumerate(collection.docs)}
    doc_of = {p: d for d, p in paper_of.items()}
    return Indexed(
        name,
        service,
        paper_of,
        doc_of,
        time.perf_counter() - started,
        report.embedded,
        report.seconds,
    )
