"""Faults: processes killed with SIGKILL, a full disk, a read-only database.

- ``papertide ingest`` of 6,000 records killed at random moments (seeded; spread from its
  start-up to its end by a first, unkilled run, and some kills timed to land just after a batch
  committed), then run to completion: after every kill no paper is there twice or half written
  (without versions, authors or categories) and every paper there equals the clean import's;
  at the end the catalog equals a clean import of the same input, paper by paper.
- ``papertide db migrate`` killed from an empty database and from revision 0004: after every
  kill the database is at a whole revision (its tables, columns, indexes, triggers and
  constraints are exactly that revision's, and ``papertide db status`` names it), and a rerun
  completes.
- SQLite's disk full (a tmpfs as small as wanted where mounting is permitted, else
  ``PRAGMA max_page_count``) during an ingest and during a vote and a comment; a read-only
  database (SQLite opened with ``?mode=ro``, PostgreSQL with ``default_transaction_read_only``):
  a clear 503 or CLI message, pages still served, nothing lost, integrity check ok.

Embedding and digest sending have kill tests of their own
(tests/test_search.py::test_embed_killed_midway_resumes_without_duplicates,
tests/test_digest_faults.py).
"""

from __future__ import annotations

import gzip
import random
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import faults
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url
from test_ingest_runner import catalog

from papertide.cli import cli
from papertide.db.engine import make_engine, write_transaction
from papertide.db.migrate import downgrade, migrate, migration_status
from papertide.demo import DEMO_PATH
from papertide.errors import DatabaseUnavailable
from papertide.ingest.runner import IngestRun

TZ = ZoneInfo("America/New_York")
SEED = 20261128
COPIES = 30  # x 200 records: 6,000 papers, three batches of 2,000
MAX_KILLS = 10
WANTED_PARTIAL = 2  # kills that must land between the first and the last commit
MIN_MIGRATE_KILLS = 4
WANTED_INSIDE = 2  # migrate kills that must land inside a migration's transaction
MIN_INGEST_KILLS = 4


def _progress(engine: Engine, sql: str) -> Any:
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql)).scalar()
    except Exception:  # the table is not there yet, or a busy moment: no progress seen
        return None


def _advanced(engine: Engine, sql: str, before: Any) -> bool:
    """Whether ``sql``'s answer moved on from ``before`` (more papers, another revision)."""
    now = _progress(engine, sql)
    return now is not None and now != before


def _run_killing(
    command: list[str],
    env: dict[str, str],
    delay: float,
    until: Callable[[], bool] | None = None,
) -> subprocess.Popen[str] | None:
    """Start ``command`` and SIGKILL it ``delay`` s later or, with ``until``, ``delay`` s after
    that holds. None once killed; the (finished) process when it ended before the kill."""
    process = faults.start(command, env)
    started = time.monotonic()
    if until is not None:
        while process.poll() is None and not until() and time.monotonic() - started < 120:
            time.sleep(0.01)
    try:
        process.communicate(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.communicate()
        return None
    return process


def _timed_run(
    command: list[str], env: dict[str, str], first: Callable[[], bool]
) -> tuple[float, float]:
    """An unkilled run: (seconds until ``first`` held, seconds in all)."""
    started = time.monotonic()
    process = faults.start(command, env)
    seen = None
    while process.poll() is None:
        if seen is None and first():
            seen = time.monotonic() - started
        time.sleep(0.01)
    code, output = faults.finish(process)
    assert code == 0, output
    full = time.monotonic() - started
    return seen or full / 2, full


@pytest.mark.slow
def test_killed_ingests_leave_whole_papers_and_finish_like_a_clean_one(
    engine_name: str,
    db_url: str,
    engine: Engine,
    make_db_url: Callable[[], str],
    tmp_path: Path,
) -> None:
    records = faults.kaggle_copies(tmp_path / "records.jsonl", COPIES)
    command = faults.papertide("ingest", "--quiet", str(records))
    clean_url = make_db_url()
    clean_engine = make_engine(clean_url)
    count_sql = "SELECT count(*) FROM papers"
    first_s, full_s = _timed_run(
        command, faults.cli_env(clean_url), lambda: bool(_progress(clean_engine, count_sql))
    )
    clean = catalog(clean_engine)
    clean_engine.dispose()
    assert len(clean) == 200 * COPIES

    rng = random.Random(SEED)
    kills = between = 0
    history: list[str] = []
    while len(history) < 3 * MAX_KILLS and (kills < MIN_INGEST_KILLS or between < WANTED_PARTIAL):
        before = _progress(engine, count_sql) or 0
        if before == len(clean):  # all there: a kill can only land in the index; start anew
            engine.dispose()
            db_url = make_db_url()
            engine = make_engine(db_url)
            before = 0
        env = faults.cli_env(db_url)
        if rng.random() < 0.5:  # at any moment, from start-up to the index at the end
            left = _run_killing(command, env, rng.uniform(0.6 * first_s, full_s))
        else:  # just after a batch committed, while the next one is being written
            until = partial(_advanced, engine, count_sql, before)
            left = _run_killing(command, env, rng.uniform(0.0, 0.3), until)
        if left is not None:
            history.append("finished")
            continue  # finished before the kill: try again
        kills += 1
        faults.settle(engine)
        faults.integrity_ok(engine)
        papers = faults.catalog_invariants(engine)
        history.append(f"{before}->{papers}")
        between += 0 < papers < len(clean)
        now = catalog(engine)
        assert all(now[arxiv_id] == clean[arxiv_id] for arxiv_id in now), "a paper differs"
    assert kills >= MIN_INGEST_KILLS and between >= WANTED_PARTIAL, history
    code, output = faults.finish(faults.start(command, faults.cli_env(db_url)))
    assert code in (0, 3), output  # 3: the last kill came after the last commit
    faults.integrity_ok(engine)
    faults.catalog_invariants(engine)
    assert catalog(engine) == clean
    engine.dispose()
    print(f"\ningest kills [{engine_name}]: papers before -> after each kill: {history}")


def _revision_schemas(url: str) -> dict[str | None, list[tuple[str, ...]]]:
    """Each revision's schema, from a scratch database migrated one revision at a time."""
    engine = make_engine(url)
    schemas = {None: faults.schema_snapshot(engine)}
    for line in migration_status(engine).pending:
        revision = line.split()[0]
        migrate(engine, revision)
        schemas[revision] = faults.schema_snapshot(engine)
    engine.dispose()
    return schemas


def _sibling_url(url: str, name: str) -> str:
    """A database beside ``url``'s (same folder / server) for a scratch copy."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database
        return f"sqlite:///{Path(parsed.database).with_name(name + '.db')}"
    admin = make_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{parsed.database}_{name}"'))
    admin.dispose()
    return parsed.set(database=f"{parsed.database}_{name}").render_as_string(hide_password=False)


@pytest.mark.slow
@pytest.mark.parametrize("start_at", [None, "0004"], ids=["from-empty", "from-0004"])
def test_killed_migrations_leave_a_whole_revision(
    engine_name: str, empty_db_url: str, start_at: str | None
) -> None:
    schemas = _revision_schemas(_sibling_url(empty_db_url, "schemas"))
    head = list(schemas)[-1]
    timing_url = _sibling_url(empty_db_url, "timing")
    timing = make_engine(timing_url)
    engine = make_engine(empty_db_url)
    if start_at:
        migrate(timing, start_at)
        migrate(engine, start_at)
    revision_sql = "SELECT version_num FROM alembic_version"
    command = faults.papertide("db", "migrate")
    first_s, full_s = _timed_run(
        command,
        faults.cli_env(timing_url),
        lambda: _progress(timing, revision_sql) not in (None, start_at),
    )
    timing.dispose()

    rng = random.Random(SEED + len(start_at or ""))
    env = faults.cli_env(empty_db_url)
    kills, inside, rounds, seen = 0, 0, 0, set()
    while rounds < 3 * MAX_KILLS and (kills < MIN_MIGRATE_KILLS or inside < WANTED_INSIDE):
        rounds += 1
        before = _progress(engine, revision_sql)
        if before == head:  # a run finished: back to the start for another
            downgrade(engine, start_at or "base")
            before = start_at
        strategy = rounds % 3
        if strategy == 0:  # at any moment, from start-up to the end
            left = _run_killing(command, env, rng.uniform(0.7 * first_s, full_s))
        elif strategy == 1:  # inside a migration's transaction, DDL under way
            left = _run_killing(command, env, 0.0, partial(faults.writing, engine))
        else:  # just after a migration committed
            until = partial(_advanced, engine, revision_sql, before)
            left = _run_killing(command, env, rng.uniform(0.0, 0.01), until)
        if left is not None:
            continue  # it finished before the kill
        inside += strategy == 1
        kills += 1
        faults.settle(engine)
        faults.integrity_ok(engine)
        current = migration_status(engine).current
        found = faults.schema_snapshot(engine)
        assert found == schemas[current], (
            f"not whole at {current}: "
            f"{sorted(set(found) - set(schemas[current]))} instead of "
            f"{sorted(set(schemas[current]) - set(found))}"
        )
        shown = CliRunner().invoke(
            cli, ["db", "status"], env={"PAPERTIDE_DATABASE_URL": empty_db_url}
        )
        assert f"current revision: {current or 'none (empty database)'}" in shown.output
        seen.add(current or "none")
    code, output = faults.finish(faults.start(command, env))
    assert code == 0, output
    assert migration_status(engine).up_to_date
    assert faults.schema_snapshot(engine) == schemas[head]
    engine.dispose()
    print(
        f"\nmigrate kills [{engine_name}, from {start_at}]: {kills} ({inside} inside a "
        f"migration's transaction), left at {sorted(seen)}"
    )
    assert kills >= MIN_MIGRATE_KILLS and inside >= WANTED_INSIDE, (kills, inside)


# --- a full disk (SQLite) ------------------------------------------------------------------------

DISK_MB = 64


@pytest.fixture(params=["tmpfs", "max_page_count"])
def disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path | None]:
    """A small tmpfs to fill (skipped where mounting is not permitted), or None: the test then
    caps the file with ``PRAGMA max_page_count``, which gives the same SQLITE_FULL."""
    if request.param == "max_page_count":
        yield None
        return
    with faults.small_disk(tmp_path / "disk", DISK_MB) as mounted:
        if mounted is None:
            pytest.skip("mounting a tmpfs is not permitted here")
        yield mounted


@pytest.mark.slow
def test_disk_full_stops_an_ingest_with_a_message_and_keeps_what_was_there(
    tmp_path: Path, disk: Path | None
) -> None:
    records = faults.kaggle_copies(tmp_path / "records.jsonl", COPIES)
    folder = disk or tmp_path
    url = f"sqlite:///{folder / 'papertide.db'}"
    engine = make_engine(url)
    migrate(engine)
    env = {"PAPERTIDE_DATABASE_URL": url}
    first = CliRunner().invoke(cli, ["ingest", "--quiet", str(faults.KAGGLE)], env=env)
    assert first.exit_code == 0, first.output
    before = catalog(engine)
    if disk is not None:  # a real ENOSPC: a few MB left for 6,000 papers
        filler = faults.fill(disk, leave_bytes=3 << 20)
        failed = CliRunner().invoke(cli, ["ingest", "--quiet", str(records)], env=env)
        assert failed.exit_code == 4, failed.output
        assert "error: the database's disk is full" in failed.output
        assert "Traceback" not in failed.output and "sqlite3" not in failed.output
    else:  # no mounting here: SQLite's own page limit gives the same SQLITE_FULL
        limited = make_engine(url)
        faults.cap_pages(limited, faults.page_count(engine) + 500)
        with pytest.raises(DatabaseUnavailable) as caught:
            IngestRun(engine=limited, tz=TZ).run([records])
        assert caught.value.code == "disk_full"
        limited.dispose()
    faults.integrity_ok(engine)
    papers = faults.catalog_invariants(engine)
    assert papers < 200 * COPIES, "the disk did not fill up"
    now = catalog(engine)
    assert all(now[arxiv_id] == before[arxiv_id] for arxiv_id in before)
    if disk is not None:
        filler.unlink()
    again = CliRunner().invoke(cli, ["ingest", "--quiet", str(records)], env=env)
    assert again.exit_code == 0, again.output
    faults.integrity_ok(engine)
    after = catalog(engine)
    engine.dispose()
    clean = make_engine(f"sqlite:///{tmp_path / 'clean.db'}")
    migrate(clean)
    IngestRun(engine=clean, tz=TZ).run([faults.KAGGLE, records])
    assert after == catalog(clean)
    clean.dispose()


@pytest.mark.slow
def test_disk_full_web_writes_answer_503_and_keep_what_was_there(
    tmp_path: Path, disk: Path | None
) -> None:
    folder = disk or tmp_path
    url = f"sqlite:///{folder / 'papertide.db'}"
    engine = make_engine(url)
    migrate(engine)
    IngestRun(engine=engine, tz=TZ).run([faults.KAGGLE])
    cookie, csrf = faults.session(engine, "ada")
    client = faults.client({"PAPERTIDE_DATABASE_URL": url}, cookie)
    app_engine = client.app.state.engine  # type: ignore[attr-defined]
    vote = {"accept": "application/json", "x-csrf-token": csrf}
    assert client.post("/papers/0704.0001/vote", headers=vote).status_code == 200
    form = {"csrf_token": csrf, "body": "Before the disk filled up."}
    assert client.post("/papers/0704.0001/comments", data=form).status_code == 303
    if disk is not None:  # an empty WAL that cannot grow: every write needs new space
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").all()
        filler = faults.fill(disk)
        faults.refused(client.post("/papers/0704.0002/vote", headers=vote), "disk_full", "disk")
    else:  # the file may not grow; a long comment needs new pages (a vote may fit)
        with closing(sqlite3.connect(folder / "papertide.db", isolation_level=None)) as raw:
            raw.execute("VACUUM")  # no free page left inside the file
        cap = faults.cap_pages(app_engine, faults.page_count(engine))
    long = {"csrf_token": csrf, "body": "A long comment. " * 600}
    faults.refused(
        client.post("/papers/0704.0002/comments", data=long), "disk_full", "disk is full"
    )
    assert client.get("/papers/0704.0001").status_code == 200  # reading still works
    assert client.get("/search?q=diphoton").status_code == 200
    if disk is not None:
        filler.unlink()
    else:
        event.remove(app_engine, "connect", cap)
        app_engine.dispose()
    faults.integrity_ok(engine)
    assert client.post("/papers/0704.0002/vote", headers=vote).status_code == 200
    with engine.connect() as connection:
        votes = connection.execute(text("SELECT count(*) FROM votes")).scalar_one()
        bodies = connection.execute(text("SELECT body_markdown FROM comments")).scalars()
        assert (votes, list(bodies)) == (2, ["Before the disk filled up."])
    app_engine.dispose()
    engine.dispose()


# --- a read-only database ------------------------------------------------------------------------

PAGES = ("/", "/papers/trending", "/search?q=diffusion", "/users/ada")


def test_read_only_database_serves_pages_and_refuses_writes_with_503(
    engine_name: str, db_url: str, engine: Engine, tmp_path: Path
) -> None:
    sample = tmp_path / "demo.jsonl"
    with gzip.open(DEMO_PATH, "rt", encoding="utf-8") as demo:
        sample.write_text("".join(islice(demo, 60)), encoding="utf-8")
    IngestRun(engine=engine, tz=TZ).run([sample])
    with engine.connect() as connection:
        day, arxiv_id = connection.execute(
            text("SELECT d.day, p.arxiv_id FROM daily_entries d JOIN papers p ON p.id = d.paper_id")
        ).first()
    pages = [*PAGES, f"/papers/date/{day}", f"/papers/{arxiv_id}"]
    # last seen an hour ago: the first page view wants to note the visit (a write)
    cookie, csrf = faults.session(engine, "ada", idle=timedelta(hours=1))
    writable = faults.client({"PAPERTIDE_DATABASE_URL": db_url}, cookie)
    vote = {"accept": "application/json", "x-csrf-token": csrf}
    assert writable.post(f"/papers/{arxiv_id}/vote", headers=vote).status_code == 200
    form = {"csrf_token": csrf, "body": "Written before the switch."}
    assert writable.post(f"/papers/{arxiv_id}/comments", data=form).status_code == 303
    writable.app.state.engine.dispose()  # type: ignore[attr-defined]
    with write_transaction(engine) as connection:  # the visit is due again
        connection.execute(
            text("UPDATE sessions SET last_seen_at = :t"),
            {"t": datetime.now(UTC) - timedelta(hours=1)},
        )
    engine.dispose()

    settings = faults.read_only_url(engine_name, db_url)
    anonymous, reader = faults.client(settings), faults.client(settings, cookie)
    for path in pages:
        for client in (anonymous, reader):
            response = client.get(path)
            assert response.status_code == 200, (path, response.text[:300])
    assert "Written before the switch." in reader.get(f"/papers/{arxiv_id}").text
    words = "read-only at the moment"
    faults.refused(reader.post(f"/papers/{arxiv_id}/unvote", headers=vote), "read_only", words)
    comment = {"csrf_token": csrf, "body": "Written while read-only."}
    faults.refused(reader.post(f"/papers/{arxiv_id}/comments", data=comment), "read_only", words)
    login_csrf = re.search(r'name="csrf_token" value="([^"]+)"', anonymous.get("/login").text)
    assert login_csrf
    login = {"login": "ada", "password": "not-her-password", "csrf_token": login_csrf[1]}
    faults.refused(anonymous.post("/login", data=login), "read_only", words)
    for client in (anonymous, reader):
        client.app.state.engine.dispose()  # type: ignore[attr-defined]

    faults.integrity_ok(engine)
    with engine.connect() as connection:
        votes = connection.execute(text("SELECT count(*) FROM votes")).scalar_one()
        bodies = connection.execute(text("SELECT body_markdown FROM comments")).scalars().all()
    assert (votes, bodies) == (1, ["Written before the switch."])
