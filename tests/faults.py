"""Helpers for tests/test_faults.py: inputs, subprocesses, PostgreSQL sessions, schema
snapshots, a small disk that can be filled, and the catalog's invariants."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from factories import fixture_path
from fastapi.testclient import TestClient
from people import SECRET, add_user
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url

from papertide.accounts.sessions import CookieSigner, create_session, load_session
from papertide.config import load_settings
from papertide.db.engine import make_engine, write_transaction
from papertide.web.app import create_app
from papertide.web.auth import SESSION_COOKIE

ROOT = Path(__file__).resolve().parents[1]
APP_NAME = "papertide-fault-test"  # names the subprocesses' PostgreSQL sessions
KAGGLE = fixture_path("kaggle", "arxiv-metadata-oai-snapshot.json")
# Old-style arXiv months for the copies of the 200 real records: 0704 is the original.
MONTHS = [f"07{m:02d}" for m in range(4, 13)] + [
    f"{y:02d}{m:02d}" for y in (8, 9) for m in range(1, 13)
]


def kaggle_copies(path: Path, copies: int) -> Path:
    """``copies`` x 200 Kaggle records: the fixture's, each copy under another month's ids."""
    lines = KAGGLE.read_text(encoding="utf-8").splitlines()
    with path.open("w", encoding="utf-8") as out:
        for month in MONTHS[:copies]:
            for line in lines:
                item = json.loads(line)
                item["id"] = month + item["id"][4:]
                if month != "0704":
                    item["title"] = f"{item['title']} ({month})"
                out.write(json.dumps(item) + "\n")
    return path


def cli_env(db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERTIDE_")}
    env.update(PAPERTIDE_DATABASE_URL=db_url, PGAPPNAME=APP_NAME, **extra)
    return env


def papertide(*args: str) -> list[str]:
    return [sys.executable, "-m", "papertide", *args]


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(process: subprocess.Popen[str], timeout: float = 300) -> tuple[int, str]:
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


def settle(engine: Engine) -> None:
    """Wait until a killed subprocess's PostgreSQL sessions are gone: what it committed is then
    committed for good and its locks are free. (SQLite needs no wait.)"""
    if engine.dialect.name != "postgresql":
        return
    query = text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name")
    deadline = time.monotonic() + 30
    while True:
        with engine.connect() as connection:
            if not connection.execute(query, {"name": APP_NAME}).scalar_one():
                return
        assert time.monotonic() < deadline, "the killed process's sessions did not end"
        time.sleep(0.02)


def writing(engine: Engine) -> bool:
    """Whether another process is inside a write transaction on ``engine``'s database right now
    (SQLite: its write lock is taken; PostgreSQL: a session named by APP_NAME is in a
    transaction). Holds the SQLite lock for an instant at most, never commits."""
    if engine.dialect.name == "sqlite":
        assert engine.url.database
        with closing(sqlite3.connect(engine.url.database, timeout=0, isolation_level=None)) as raw:
            try:
                raw.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                return True
            raw.execute("ROLLBACK")
            return False
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE application_name = :name AND xact_start IS NOT NULL"
    )
    with engine.connect() as connection:
        return bool(connection.execute(query, {"name": APP_NAME}).scalar_one())


def integrity_ok(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            found = connection.exec_driver_sql("PRAGMA integrity_check").scalars().all()
        assert found == ["ok"], found


def catalog_invariants(engine: Engine) -> int:
    """No arXiv id twice, no paper without versions, authors or categories: the papers count."""
    with engine.connect() as connection:
        doubles = connection.execute(
            text("SELECT arxiv_id FROM papers GROUP BY arxiv_id HAVING count(*) > 1")
        ).all()
        assert not doubles, doubles[:5]
        for child in ("paper_versions", "paper_authors", "paper_categories"):
            half = connection.execute(
                text(
                    f"SELECT p.arxiv_id FROM papers p WHERE NOT EXISTS "
                    f"(SELECT 1 FROM {child} c WHERE c.paper_id = p.id)"
                )
            ).all()
            assert not half, f"papers without {child}: {half[:5]}"
        return int(connection.execute(text("SELECT count(*) FROM papers")).scalar_one())


def schema_snapshot(engine: Engine) -> list[tuple[str, ...]]:
    """Every table, column, index, trigger and constraint of the database, sorted (but
    Alembic's own table, which an empty database gets back after a downgrade to base)."""
    if engine.dialect.name == "sqlite":
        sql = "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master"
        queries = [sql + " WHERE name NOT LIKE 'sqlite_%'"]
    else:
        queries = [
            "SELECT 'column', table_name, column_name, data_type, is_nullable "
            "FROM information_schema.columns WHERE table_schema = 'public'",
            "SELECT 'index', tablename, indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = 'public'",
            "SELECT 'trigger', event_object_table, trigger_name, event_manipulation "
            "FROM information_schema.triggers WHERE trigger_schema = 'public'",
            "SELECT 'constraint', table_name, constraint_name, constraint_type "
            "FROM information_schema.table_constraints WHERE table_schema = 'public'",
        ]
    found: list[tuple[str, ...]] = []
    with engine.connect() as connection:
        for query in queries:
            for row in connection.exec_driver_sql(query):
                if row[1] != "alembic_version":  # where the revision is, not what it made
                    found.append(tuple(_unordered(str(v)) for v in row))
    return sorted(found)


def _unordered(sql: str) -> str:
    """A CREATE TABLE's columns and constraints in sorted order: a table that SQLite's batch
    migrations rebuilt lists its constraints in an order that varies from process to process."""
    if not sql.startswith("CREATE TABLE"):
        return sql
    return "\n".join(sorted(line.strip().rstrip(",").strip() for line in sql.splitlines()))


@contextmanager
def small_disk(folder: Path, megabytes: int) -> Iterator[Path | None]:
    """A tmpfs of ``megabytes`` mounted on ``folder`` (needs root and the right to mount);
    None where mounting is not permitted (the tests then use ``PRAGMA max_page_count``)."""
    folder.mkdir(parents=True, exist_ok=True)
    mount = ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(folder)]
    try:
        mounted = subprocess.run(mount, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        mounted = False
    if not mounted:
        yield None
        return
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True, timeout=30)


def fill(folder: Path, leave_bytes: int = 0) -> Path:
    """Fill the filesystem of ``folder`` with a file until ``leave_bytes`` are left."""
    filler = folder / "filler.bin"
    block = os.urandom(1 << 16)
    with filler.open("wb", buffering=0) as out:
        size = len(block)
        while size >= 512:
            free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
            if free - size < leave_bytes:
                size //= 2
                continue
            try:
                out.write(block[:size])
            except OSError:
                size //= 2
    return filler


# --- the web app, read-only and full databases -------------------------------------------------


def page_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.exec_driver_sql("PRAGMA page_count").scalar_one())


def cap_pages(engine: Engine, pages: int) -> Callable[..., None]:
    """Every new connection of ``engine`` may grow the file to ``pages`` pages at most."""

    def cap(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count={pages}")

    event.listen(engine, "connect", cap)
    engine.dispose()
    return cap


def client(settings_env: dict[str, str], cookie: str | None = None) -> TestClient:
    """The real app (no lifespan: no background threads), as a browser with ``cookie``."""
    settings = load_settings(env={"PAPERTIDE_SECRET_KEY": SECRET, **settings_env})
    client = TestClient(create_app(settings), follow_redirects=False, raise_server_exceptions=False)
    if cookie:
        client.cookies.set(SESSION_COOKIE, cookie)
    return client


def session(engine: Engine, username: str, idle: timedelta = timedelta()) -> tuple[str, str]:
    """A user with a session last seen ``idle`` ago: (signed cookie, CSRF token)."""
    user = add_user(engine, username)
    with write_transaction(engine) as connection:
        raw = create_session(
            connection, user, ip="127.0.0.1", user_agent="tests", now=datetime.now(UTC) - idle
        )
        session = load_session(connection, raw)
    assert session is not None
    return CookieSigner(SECRET).sign(raw), session.csrf_token


def refused(response: Any, code: str, words: str) -> None:
    """The one error shape, as a 503 with Retry-After, in JSON or on the error page."""
    assert response.status_code == 503, response.text[:500]
    assert int(response.headers["retry-after"]) > 0
    if response.headers["content-type"].startswith("application/json"):
        assert response.json()["error"]["code"] == code
        assert words in response.json()["error"]["message"]
    else:
        assert words in response.text
    for leak in ("Traceback", "sqlite3", "psycopg", "database is locked", "SQL"):
        assert leak not in response.text


def read_only_url(engine_name: str, db_url: str) -> dict[str, str]:
    """Settings that serve ``db_url`` read-only: SQLite opened with ``?mode=ro`` (its search
    indexes where they are), PostgreSQL with ``default_transaction_read_only`` on."""
    parsed = make_url(db_url)
    if engine_name == "sqlite":
        path = parsed.database
        return {
            "PAPERTIDE_DATABASE_URL": f"sqlite:///file:{path}?mode=ro&uri=true",
            "PAPERTIDE_SEARCH_INDEX_DIR": f"{path}.search",
        }
    admin = make_engine(db_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(
            text(f'ALTER DATABASE "{parsed.database}" SET default_transaction_read_only = on')
        )
    admin.dispose()
    return {"PAPERTIDE_DATABASE_URL": db_url}
