"""`papertide db backup` and `papertide db restore` on real SQLite files and a real PostgreSQL
server: round trips proven with table checksums, backups taken while others write, killed and
failed backups, refusals, older schema revisions, and the search index after a restore."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from factories import listed, make_record, write_records
from people import add_user
from sqlalchemy import Engine, delete, insert, inspect, select, text, update
from sqlalchemy.engine import make_url

import papertide.db.backup as backup
from papertide.accounts.users import User
from papertide.cli import cli
from papertide.community import comments, votes
from papertide.db.backup import (
    backup_database,
    default_backup_path,
    detect_format,
    restore_database,
)
from papertide.db.checksums import compare, table_checksums
from papertide.db.engine import make_engine, write_transaction
from papertide.db.migrate import migrate, migration_status
from papertide.db.pg_client import find_pg_tool, server_major, tool_major
from papertide.db.schema import comments as comments_table
from papertide.db.schema import paper_embeddings, papers, users
from papertide.errors import ConfigError, Conflict, InvalidInput, PapertideError

OTHER = {"sqlite": "postgresql", "postgresql": "sqlite"}
MODEL = "test-model"


# --- helpers --------------------------------------------------------------------------------


def invoke(db_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env={"PAPERTIDE_DATABASE_URL": db_url})
    return result.exit_code, result.output


@pytest.fixture
def opened(request: pytest.FixtureRequest) -> Iterator[Callable[[str], Engine]]:
    """Opens engines on URLs and disposes of them at the end of the test."""
    engines: list[Engine] = []

    def open_url(url: str) -> Engine:
        engines.append(make_engine(url))
        return engines[-1]

    yield open_url
    for engine in engines:
        engine.dispose()


def populate(engine: Engine, papers_count: int = 12) -> list[User]:
    """Papers on daily lists, people, votes, comments with a reply, and embeddings."""
    write_records(
        engine,
        *[
            make_record(
                f"2505.{n:05d}",
                title=f"Paper {n} on Schrödinger bridges ∂ö",
                listing=listed(date(2025, 5, 1 + n % 3), n),
            )
            for n in range(1, papers_count + 1)
        ],
    )
    people = [add_user(engine, name) for name in ("ada", "Bob", "Zoë")]
    rng = np.random.default_rng(7)
    when = datetime(2025, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    with write_transaction(engine) as connection:
        for n, person in enumerate(people):
            for paper in range(1, papers_count + 1, n + 2):
                votes.upvote(connection, person, f"2505.{paper:05d}", now=when)
        first = comments.post_comment(connection, people[0], "2505.00001", "Nice $x^2$", now=when)
        comments.post_comment(
            connection, people[1], "2505.00001", "Agreed, @ada", parent_id=first.id, now=when
        )
        comments.post_comment(connection, people[2], "2505.00002", "**Bold** claim", now=when)
        ids = connection.execute(select(papers.c.id).order_by(papers.c.id)).scalars().all()
        connection.execute(
            insert(paper_embeddings),
            [
                {
                    "paper_id": paper_id,
                    "model": MODEL,
                    "vector": rng.standard_normal(16).astype(np.float32),
                    "created_at": when,
                }
                for paper_id in ids
            ],
        )
    return people


def change_everything(engine: Engine, people: list[User]) -> None:
    """Edits after a backup: a new paper, a deleted comment, a lost vote, a renamed user, fewer
    embeddings, a new title."""
    write_records(engine, make_record("2506.00001", listing=listed(date(2025, 6, 2))))
    with write_transaction(engine) as connection:
        votes.unvote(connection, people[0], "2505.00001")
        connection.execute(delete(comments_table).where(comments_table.c.parent_id.is_not(None)))
        connection.execute(
            update(users).where(users.c.id == people[1].id).values(display_name="Changed")
        )
        connection.execute(delete(paper_embeddings).where(paper_embeddings.c.paper_id > 6))
        connection.execute(update(papers).where(papers.c.id == 3).values(title="Zebra finches"))


def upvotes_consistent(engine: Engine) -> bool:
    """Every paper's upvote count equals its imported upvotes plus its votes (votes.upvote
    keeps them so within one transaction; a copy torn between two moments would not)."""
    sql = text(
        "SELECT count(*) FROM papers p WHERE p.upvotes <> p.imported_upvotes + "
        "(SELECT count(*) FROM votes v WHERE v.paper_id = p.id)"
    )
    with engine.connect() as connection:
        return int(connection.execute(sql).scalar_one()) == 0


# --- round trips ----------------------------------------------------------------------------


def test_round_trip_gives_back_the_moment_of_the_backup(
    engine_name: str,
    db_url: str,
    tmp_path: Path,
    new_url: Callable[[str], str],
    opened: Callable[[str], Engine],
) -> None:
    engine = opened(db_url)
    people = populate(engine)
    at_backup = table_checksums(engine)
    suffix = ".db" if engine_name == "sqlite" else ".dump"
    report = backup_database(db_url, tmp_path / f"site{suffix}")
    assert report.path.is_file() and report.size == report.path.stat().st_size > 0
    assert report.papers == 12 and report.revision == migration_status(engine).head
    assert detect_format(report.path) == (engine_name, False)
    assert report.path.stat().st_mode & 0o777 == 0o600  # password hashes, emails, secrets

    change_everything(engine, people)
    assert compare(at_backup, table_checksums(engine))  # the edits show

    with pytest.raises(InvalidInput, match="--force"):
        restore_database(db_url, report.path)
    engine.dispose()
    restored = restore_database(db_url, report.path, force=True)
    assert restored.papers == 12 and restored.pending == []
    assert compare(at_backup, table_checksums(engine)) == []
    assert table_checksums(engine) == at_backup
    with engine.connect() as connection:
        assert connection.execute(select(papers.c.title).where(papers.c.id == 3)).scalar_one() == (
            "Paper 3 on Schrödinger bridges ∂ö"
        )
    assert upvotes_consistent(engine)

    # Into a brand-new, unmigrated database: no --force needed, same data.
    fresh_url = new_url(engine_name)
    restore_database(fresh_url, report.path)
    assert compare(at_backup, table_checksums(opened(fresh_url))) == []


def test_cli_round_trip_and_its_messages(
    engine_name: str, db_url: str, tmp_path: Path, opened: Callable[[str], Engine]
) -> None:
    engine = opened(db_url)
    people = populate(engine)
    at_backup = table_checksums(engine)
    path = tmp_path / "nightly.bak"
    code, out = invoke(db_url, "db", "backup", str(path), "--quiet")
    assert code == 0, out
    assert f"backup written: {path}" in out and "12 papers" in out and "MiB" in out

    code, out = invoke(db_url, "db", "backup", str(path), "--quiet")
    assert code == 2 and "already exists" in out

    change_everything(engine, people)
    engine.dispose()
    code, out = invoke(db_url, "db", "restore", str(path), "--quiet")
    assert code == 2 and "holds data" in out and "--force" in out and "13 papers" in out
    code, out = invoke(db_url, "db", "restore", str(path), "--force", "--quiet")
    assert code == 0, out
    assert "restored" in out and "12 papers" in out and "migrate" not in out
    after = table_checksums(engine)
    # On SQLite the keyword index was rebuilt, which records its new id in ingest_state.
    assert compare(at_backup, after) in (
        [],
        ["ingest_state: 0 rows in the source, 1 in the target"],
    )


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_sqlite_gzip_round_trip(
    db_url: str, tmp_path: Path, opened: Callable[[str], Engine]
) -> None:
    engine = opened(db_url)
    people = populate(engine, papers_count=40)
    at_backup = table_checksums(engine)
    plain = backup_database(db_url, tmp_path / "plain.db")
    packed = backup_database(db_url, tmp_path / "packed.db.gz")
    assert detect_format(packed.path) == ("sqlite", True)
    assert packed.path.stat().st_mode & 0o777 == 0o600
    assert packed.size < plain.size / 2
    change_everything(engine, people)
    engine.dispose()
    restore_database(db_url, packed.path, force=True)
    assert compare(at_backup, table_checksums(engine)) == []
    assert not list(tmp_path.glob(".*partial*"))  # the unpacked copy is gone


def test_a_folder_or_no_path_gets_a_timestamped_name(
    engine_name: str, db_url: str, tmp_path: Path
) -> None:
    at = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    folder = tmp_path / "backups"
    folder.mkdir()
    if engine_name == "sqlite":
        assert default_backup_path(db_url, at) == tmp_path / "papertide-20260304T050607Z.db"
        report = backup_database(db_url)  # beside the database file
        assert report.path.parent == tmp_path
        assert re.fullmatch(r"papertide-\d{8}T\d{6}Z\.db", report.path.name)
    else:
        database = make_url(db_url).database
        expected = folder / f"{database}-20260304T050607Z.dump"
        assert default_backup_path(db_url, at, folder) == expected
    code, out = invoke(db_url, "db", "backup", str(folder), "--quiet")
    assert code == 0, out
    (written,) = folder.iterdir()
    assert f"backup written: {written}" in out
    suffix = ".db" if engine_name == "sqlite" else ".dump"
    assert re.fullmatch(rf".+-\d{{8}}T\d{{6}}Z{re.escape(suffix)}", written.name)
    assert detect_format(written) == (engine_name, False)


# --- backups while the site writes ----------------------------------------------------------


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_sqlite_backup_is_the_moment_it_began_while_another_connection_writes(
    db_url: str,
    tmp_path: Path,
    new_url: Callable[[str], str],
    opened: Callable[[str], Engine],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Between every step of the copy another connection writes a paper and a vote; the copy
    still has exactly the data of the moment the backup began, and passes integrity_check."""
    monkeypatch.setattr(backup, "SQLITE_STEP_PAGES", 4)  # many steps on a small database
    engine = opened(db_url)
    people = populate(engine, papers_count=60)
    at_start = table_checksums(engine)
    steps: list[tuple[int, int]] = []

    def write_between_steps(done: int, total: int) -> None:
        steps.append((done, total))
        n = len(steps)
        assert n <= total, "the backup keeps restarting"  # a copy without one snapshot would
        write_records(engine, make_record(f"2507.{n:05d}", listing=listed(date(2025, 7, 1), n)))
        with write_transaction(engine) as connection:
            votes.upvote(connection, people[n % 3], f"2507.{n:05d}")

    report = backup_database(db_url, tmp_path / "busy.db", progress=write_between_steps)
    assert len(steps) > 5 and steps[-1][0] == steps[-1][1]
    assert report.papers == 60
    with sqlite3.connect(report.path) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert table_checksums(engine)["papers"].rows == 60 + len(steps)
    check_url = new_url("sqlite")
    restore_database(check_url, report.path)
    assert compare(at_start, table_checksums(opened(check_url))) == []


def test_backup_under_a_concurrent_writer_is_consistent(
    engine_name: str,
    db_url: str,
    tmp_path: Path,
    new_url: Callable[[str], str],
    opened: Callable[[str], Engine],
) -> None:
    """A thread votes and unvotes as fast as it can during the backup: the backup succeeds and
    what it holds is one consistent moment (every paper's count matches its votes)."""
    engine = opened(db_url)
    people = populate(engine, papers_count=200)
    stop = threading.Event()
    writes = [0]

    def writer() -> None:
        n = 0
        while not stop.is_set():
            person, paper = people[n % 3], f"2505.{n % 200 + 1:05d}"
            with write_transaction(engine) as connection:
                if votes.has_voted(connection, person, paper):
                    votes.unvote(connection, person, paper)
                else:
                    votes.upvote(connection, person, paper)
            n += 1
            writes[0] = n

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while writes[0] < 20:
            time.sleep(0.01)
        report = backup_database(db_url, tmp_path / "live.bak")
        during = writes[0]
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join()
    assert writes[0] > during >= 20  # the writer was never held up for long
    copy_url = new_url(engine_name)
    restored = restore_database(copy_url, report.path)
    assert restored.papers == report.papers == 200
    assert upvotes_consistent(opened(copy_url))


# --- killed and failed backups --------------------------------------------------------------


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_a_killed_sqlite_backup_leaves_no_complete_looking_file(
    db_url: str, tmp_path: Path, opened: Callable[[str], Engine]
) -> None:
    populate(opened(db_url), papers_count=60)
    target = tmp_path / "killed.db"
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "import papertide.db.backup as b\n"
        "b.SQLITE_STEP_PAGES = 1\n"
        "b.backup_database(sys.argv[1], Path(sys.argv[2]),"
        " progress=lambda done, total: time.sleep(0.05))\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, db_url, str(target)])
    deadline = time.monotonic() + 60
    partial = backup.partial_path(target)
    while not partial.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert child.poll() is None, "the backup ended before it could be killed"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert not target.exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".killed.db")]
    assert leftovers and all(".partial" in name for name in leftovers)
    with pytest.raises(InvalidInput, match="no backup file"):
        restore_database(db_url, target)


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_a_failed_sqlite_backup_cleans_up(
    db_url: str,
    tmp_path: Path,
    opened: Callable[[str], Engine],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(backup, "SQLITE_STEP_PAGES", 4)
    populate(opened(db_url), papers_count=60)

    def fail(done: int, total: int) -> None:
        if done < total:
            raise OSError("disk full (simulated by the test)")

    for name in ("failed.db", "failed.db.gz"):
        with pytest.raises(OSError, match="disk full"):
            backup_database(db_url, tmp_path / name, progress=fail)
    assert [p.name for p in tmp_path.iterdir() if "failed" in p.name] == []


@pytest.mark.parametrize("engine_name", ["postgresql"], indirect=True)
def test_a_failing_pg_dump_shows_its_error_and_leaves_no_file(
    db_url: str, tmp_path: Path, opened: Callable[[str], Engine]
) -> None:
    """pg_dump waits for a lock another session holds; its server session is then terminated:
    the error names pg_dump and carries its own message, and no file is left."""
    engine = opened(db_url)
    populate(engine)
    target = tmp_path / "failed.dump"
    with engine.connect() as locker:
        locker.execute(text("LOCK TABLE comments IN ACCESS EXCLUSIVE MODE"))
        killed: list[int] = []

        def terminate_pg_dump(_done: int, _total: int) -> None:
            with engine.connect() as connection:
                pids = connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid), pid FROM pg_stat_activity "
                        "WHERE application_name = 'pg_dump' AND datname = current_database()"
                    )
                ).all()
            killed.extend(pid for _ok, pid in pids)

        with pytest.raises(PapertideError) as failure:
            backup_database(db_url, target, progress=terminate_pg_dump)
        locker.rollback()
    assert killed
    assert "pg_dump" in failure.value.message and "failed (exit 1)" in failure.value.message
    assert "terminat" in failure.value.message  # pg_dump's own words, from its stderr
    assert not target.exists() and not backup.partial_path(target).exists()


@pytest.mark.parametrize("engine_name", ["postgresql"], indirect=True)
def test_missing_pg_dump_is_a_clear_error(db_url: str, tmp_path: Path) -> None:
    empty = tmp_path / "no-tools"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"no pg_dump of PostgreSQL \d+ or newer found in"):
        backup_database(db_url, tmp_path / "x.dump", pg_bin=empty)
    code, out = invoke(db_url, "db", "backup", str(tmp_path / "x.dump"), "--pg-bin", str(empty))
    assert code == 2 and "no pg_dump" in out and "--pg-bin" in out and "apt install" in out
    assert not (tmp_path / "x.dump").exists()


@pytest.mark.parametrize("engine_name", ["postgresql"], indirect=True)
def test_the_client_tools_match_the_servers_major_version(engine: Engine, tmp_path: Path) -> None:
    with engine.connect() as connection:
        major = server_major(connection)
    for name in ("pg_dump", "pg_restore"):
        tool = find_pg_tool(name, major)
        assert tool.major == major == tool_major(tool.path)
    # An older pg_dump named explicitly is refused up front, with what was found.
    folders = [Path("/usr/bin"), *sorted(Path("/usr/lib/postgresql").glob("*/bin"))]
    older = [
        folder
        for folder in folders
        if (folder / "pg_dump").exists() and (tool_major(folder / "pg_dump") or major) < major
    ]
    if older:
        with pytest.raises(ConfigError, match=rf"found: {older[0]}/pg_dump \(\d+\)"):
            find_pg_tool("pg_dump", major, older[0])


# --- refusals -------------------------------------------------------------------------------


def test_restore_refuses_the_other_engines_backup(
    engine_name: str,
    db_url: str,
    tmp_path: Path,
    new_url: Callable[[str], str],
    opened: Callable[[str], Engine],
) -> None:
    populate(opened(db_url))
    report = backup_database(db_url, tmp_path / "site.bak")
    other_url = new_url(OTHER[engine_name])
    with pytest.raises(InvalidInput, match="papertide db copy"):
        restore_database(other_url, report.path)
    code, out = invoke(other_url, "db", "restore", str(report.path))
    assert code == 2 and "papertide db copy" in out
    assert backup.database_holdings(opened(other_url)) == {}  # untouched


def test_restore_refuses_a_file_that_is_no_backup(db_url: str, tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("not a database\n")
    code, out = invoke(db_url, "db", "restore", str(junk))
    assert code == 2 and "not a Papertide backup" in out


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_sqlite_restore_refuses_while_the_database_is_open(
    db_url: str, tmp_path: Path, opened: Callable[[str], Engine]
) -> None:
    engine = opened(db_url)
    populate(engine)
    report = backup_database(db_url, tmp_path / "site.db")
    with engine.connect() as connection:  # like a running server's pooled connection
        connection.execute(select(1)).scalar()
        with pytest.raises(Conflict, match="open in another process"):
            restore_database(db_url, report.path, force=True)
    engine.dispose()
    assert restore_database(db_url, report.path, force=True).papers == 12


# --- schema revisions and search indexes ----------------------------------------------------


def test_restoring_an_older_revision_says_to_migrate(
    engine_name: str,
    db_url: str,
    tmp_path: Path,
    new_url: Callable[[str], str],
    opened: Callable[[str], Engine],
) -> None:
    old_url = new_url(engine_name)
    migrate(opened(old_url), "0006")  # before feed_tokens (0007) and leases (0009)
    old = backup_database(old_url, tmp_path / "old.bak")
    assert old.revision == "0006"
    populated = opened(db_url)
    populate(populated)
    populated.dispose()  # a SQLite restore needs the file to itself
    code, out = invoke(db_url, "db", "restore", str(old.path), "--force", "--quiet")
    assert code == 0, out
    assert "revision 0006" in out and "run `papertide db migrate`" in out
    engine = opened(db_url)
    assert migration_status(engine).current == "0006"
    assert "feed_tokens" not in inspect(engine).get_table_names()
    status = migrate(engine)  # newer tables the older backup lacks are made again
    assert status.up_to_date
    assert table_checksums(engine)["papers"].rows == 0


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_sqlite_restore_rebuilds_the_keyword_index(
    db_url: str, tmp_path: Path, opened: Callable[[str], Engine]
) -> None:
    """The index folder keeps the id of the database it belongs to, and a backup of the same
    database carries the same id: without the rebuild the index would describe the edits made
    after the backup."""
    from papertide.search.filters import SearchFilters
    from papertide.search.keyword_tantivy import TantivyIndex, index_dir_for
    from papertide.search.query import parse_query

    engine = opened(db_url)
    people = populate(engine)
    folder = index_dir_for(db_url, "")
    assert folder is not None

    def hits(words: str) -> list[int]:
        index = TantivyIndex(engine, folder)
        index.apply_changes(wait=True)
        return index.search(parse_query(words), SearchFilters()).ids

    assert hits("zebra") == []
    report = backup_database(db_url, tmp_path / "site.db")
    change_everything(engine, people)  # paper 3 is now "Zebra finches"
    assert hits("zebra") == [3]
    engine.dispose()
    code, out = invoke(db_url, "db", "restore", str(report.path), "--force")
    assert code == 0, out
    assert "search indexes in" in out and "keyword index: 12 papers updated" in out
    assert hits("zebra") == []
    assert 3 in hits("Schrödinger")
