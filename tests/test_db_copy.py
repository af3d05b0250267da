"""`papertide db copy` and the table checksums it verifies with, on real SQLite files and a real
PostgreSQL server: both directions, refusals, and a copy taken while the source is written to."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from digests import TUESDAY_DIGEST, add_subscriber
from factories import listed, make_record, rows, write_records
from fastapi.testclient import TestClient
from people import SECRET, add_user, client_as, start_session
from sqlalchemy import Engine, func, insert, null, select, update

from papertide.accounts import resets, tokens
from papertide.accounts.ratelimit import Limit, hit
from papertide.accounts.sessions import site_secret
from papertide.accounts.users import Role, user_by_username
from papertide.catalog.records import Author, OrganizationRef, Version
from papertide.claims import claim_author
from papertide.cli import cli
from papertide.community.comments import post_comment
from papertide.community.votes import upvote
from papertide.config import load_settings
from papertide.daily import compute_trending
from papertide.db.checksums import compare, data_tables, table_checksums
from papertide.db.copy import copy_database
from papertide.db.engine import make_engine, write_transaction
from papertide.db.migrate import downgrade, migrate
from papertide.db.schema import (
    audit_log,
    comments,
    daily_entries,
    ingest_state,
    leases,
    paper_embeddings,
    papers,
    users,
)
from papertide.digest import outbox
from papertide.jobs import record_run
from papertide.moderation import hide_paper
from papertide.organizations import create_organization, set_member
from papertide.personal import feed_tokens, saves
from papertide.personal.interests import make_interests, save_interests
from papertide.personal.marks import dismiss
from papertide.search.embedder import BUNDLED_NAME
from papertide.web.app import create_app

OTHER = {"sqlite": "postgresql", "postgresql": "sqlite"}


def small_catalog(engine: Engine) -> None:
    """A few papers with lists, people, an embedding and JSON values."""
    write_records(
        engine,
        *[
            make_record(
                f"2505.{n:05d}",
                title=f"Paper {n}: Schrödinger ∂ö",
                listing=listed(date(2025, 5, 2), n),
            )
            for n in range(1, 8)
        ],
    )
    for name in ("Zoë", "alice", "Bob"):
        add_user(engine, name)
    with write_transaction(engine) as connection:
        connection.execute(
            insert(paper_embeddings).values(
                paper_id=1,
                model="test-model",
                vector=np.linspace(-1, 1, 16, dtype=np.float32),
                created_at=datetime(2025, 5, 3, 4, 5, 6, 789, tzinfo=UTC),
            )
        )
        connection.execute(
            insert(audit_log).values(
                at=datetime(2025, 5, 3, tzinfo=UTC),
                action="paper.hide",
                target="paper:2505.00001",
                details={"reason": "spam", "b": [1, 2.5, None]},
            )
        )


def test_checksums_agree_across_engines(engine_name: str, new_url: Callable[[str], str]) -> None:
    """The same rows give the same checksums on SQLite and PostgreSQL (written here through the
    typed Core layer on both, independently of the copy)."""
    source = make_engine(new_url(engine_name))
    target = make_engine(new_url(OTHER[engine_name]))
    try:
        migrate(source)
        migrate(target)
        small_catalog(source)
        with source.connect() as reading, write_transaction(target) as writing:
            for table in data_tables():
                found = [dict(row._mapping) for row in reading.execute(select(table))]
                if found:
                    writing.execute(insert(table), found)
        mine, theirs = table_checksums(source), table_checksums(target)
        assert compare(mine, theirs) == []
        assert mine == theirs
        assert mine["papers"].rows == 7 and mine["users"].rows == 3
        assert mine["paper_embeddings"].rows == 1 and mine["audit_log"].rows == 1
        assert "search_changes" not in mine and "leases" not in mine
    finally:
        source.dispose()
        target.dispose()


def test_checksum_changes_when_one_value_differs(engine: Engine, db_url: str) -> None:
    small_catalog(engine)
    before = table_checksums(engine)
    assert before == table_checksums(engine)  # stable
    with write_transaction(engine) as connection:  # one microsecond, one row, one column
        when = connection.execute(select(users.c.created_at).where(users.c.id == 2)).scalar_one()
        connection.execute(
            update(users).where(users.c.id == 2).values(created_at=when + timedelta(microseconds=1))
        )
    after = table_checksums(engine)
    assert [line.split(":")[0] for line in compare(before, after)] == ["users"]
    assert after["users"].rows == before["users"].rows
    assert "same 3 rows but different values" in compare(before, after)[0]
    with write_transaction(engine) as connection:  # an embedding's last component
        vector = connection.execute(select(paper_embeddings.c.vector)).scalar_one()
        vector[-1] = -vector[-1]
        connection.execute(update(paper_embeddings).values(vector=vector))
        connection.execute(update(papers).where(papers.c.id == 7).values(title="Paper 7"))
    changed = table_checksums(engine)
    assert {line.split(":")[0] for line in compare(after, changed)} == {
        "paper_embeddings",
        "papers",
    }
    only = table_checksums(engine, ["users", "papers"])
    assert list(only) == ["users", "papers"] and only["papers"] == changed["papers"]


LIST_DAY = date(2026, 11, 23)
TITLES = {
    "2611.00001": "Schrödinger bridges for α-divergences",
    "2611.00002": "Speculative decoding with draft models",
    "2611.00003": "Protein folding with equivariant networks",
    "2611.00004": "Quantum error correction with surface codes",
    "2611.00005": "A withdrawn paper about nothing",
}


def full_catalog(url: str) -> None:
    """A source with rows in every data table, written through the site's own functions."""
    engine = make_engine(url)
    settings = load_settings(env={"PAPERTIDE_DATABASE_URL": url})
    try:
        _catalog(engine)
        _community(engine)
        _personal_and_digests(engine, settings)
        compute_trending(engine, settings, now=datetime(2026, 11, 24, 12, tzinfo=UTC))
        record_run(engine, "digest", TUESDAY_DIGEST.key, "done", "sent 2")
        with write_transaction(engine) as connection:
            site_secret(connection, "")
            hit(connection, "login:ada", Limit(5, 60, "log-ins"))
            connection.execute(
                insert(ingest_state),
                [
                    {"source": "oai set=cs", "cursor": "token|1001", "details": {"done": [1, 2.5]}},
                    {"source": "json null", "cursor": None, "details": None},  # JSON null
                ],
            )
            connection.execute(insert(ingest_state).values(source="sql null", details=null()))
            now = datetime(2026, 11, 24, tzinfo=UTC)
            connection.execute(  # live state of the source's processes: never copied
                insert(leases).values(
                    name="scheduler",
                    holder="old-host:1:abc",
                    token=7,
                    acquired_at=now,
                    renewed_at=now,
                    expires_at=now + timedelta(minutes=1),
                )
            )
    finally:
        engine.dispose()


def _catalog(engine: Engine) -> None:
    lab = OrganizationRef("deep-lab", "Deep Lab ⚛", "https://example.org/lab.png")
    write_records(
        engine,
        *[
            make_record(
                arxiv_id,
                title=title,
                abstract=f"We study {title.lower()} and find <b>results</b> & $x^2$.",
                authors=[Author("Ada Lovelace", "Analytical Engines"), Author("Alan Turing")],
                versions=[
                    Version(1, datetime(2026, 11, 20, 17, 0, 0, 123456, tzinfo=UTC), "12kb"),
                    Version(2, datetime(2026, 11, 21, 9, tzinfo=UTC)),
                ],
                published_at=datetime(2026, 11, 20, 17, 0, 0, 123456, tzinfo=UTC),
                organization=lab if n % 2 else None,
                ai_summary="A summary." if n == 1 else None,
                code_url="https://github.com/lab/code" if n == 2 else None,
                withdrawn=n == 5,
                upvotes=3 * n,
                listing=listed(LIST_DAY, n),
            )
            for n, (arxiv_id, title) in enumerate(TITLES.items(), start=1)
        ],
    )
    rng = np.random.default_rng(7)
    with write_transaction(engine) as connection:
        ids = connection.execute(select(papers.c.id).order_by(papers.c.id)).scalars().all()
        vectors = rng.standard_normal((len(ids), 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        connection.execute(
            insert(paper_embeddings),
            [
                {"paper_id": i, "model": BUNDLED_NAME, "vector": v, "created_at": datetime.now(UTC)}
                for i, v in zip(ids, vectors, strict=True)
            ],
        )


def _community(engine: Engine) -> None:
    admin = add_user(engine, "Admin", Role.ADMIN)
    moderator = add_user(engine, "Mod", Role.MODERATOR)
    ada = add_user(engine, "Ada")
    zoe = add_user(engine, "Zoë", votes_public=False)
    start_session(engine, ada)  # a session row
    with write_transaction(engine) as connection:
        for user in (ada, zoe, admin):
            upvote(connection, user, "2611.00001")
        upvote(connection, zoe, "2611.00002")
        first = post_comment(connection, ada, "2611.00001", "Nice result: $e^{i\\pi}+1=0$ @Zoë")
        post_comment(connection, zoe, "2611.00001", "Agreed, **really** nice", parent_id=first.id)
        organization = create_organization(
            connection, admin, "vision-lab", "Vision Lab", "We see things."
        )
        set_member(connection, admin, organization, "Ada", "admin")
        claim_author(connection, ada, "2611.00001", 0)
        hide_paper(connection, moderator, "2611.00004", "spam")  # audit_log too
        tokens.create_token(connection, ada, "laptop")
        feed_tokens.create_token(connection, zoe)
        assert resets.start_reset(connection, "ada@example.org") is not None
        connection.execute(  # a submission waiting for a moderator
            insert(daily_entries).values(
                paper_id=3,
                day=LIST_DAY + timedelta(days=1),
                source="submission",
                submitter_name="Ada",
                comment="Worth a read",
                created_at=datetime.now(UTC),
                submitted_by_user_id=ada.id,
                status="pending",
            )
        )


def _personal_and_digests(engine: Engine, settings: Any) -> None:
    with write_transaction(engine) as connection:
        ada = user_by_username(connection, "Ada")
        zoe = user_by_username(connection, "Zoë")
        saves.save_paper(connection, ada, "2611.00002")
        slug = saves.create_folder(connection, ada, "Reading group", public=True)
        saves.save_paper(connection, ada, "2611.00003", slug)
        saves.follow(connection, zoe, "Ada", slug)
        dismiss(connection, zoe, "2611.00003")
        save_interests(
            connection,
            ada.id,
            make_interests(
                topics=["diffusion language models"],
                include={"categories": ["cs.CL"]},
                exclude={"keywords": ["survey"]},
                threshold=0.25,
                trending_weight=0.5,
                window_days=14,
            ),
        )
    add_subscriber(engine, "reader@example.org", user_id=None)
    add_subscriber(engine, "ada@example.org", user_id=3, frequency="weekly")
    with write_transaction(engine) as connection:
        outbox.plan(connection, settings, TUESDAY_DIGEST, now=datetime(2026, 11, 24, tzinfo=UTC))
        row_id = connection.execute(select(func.min(outbox.outbox.c.id))).scalar_one()
        outbox.store_composed(connection, row_id, b"From: x\r\n\r\nbody \xe2\x9c\x93", [1, 2])


@pytest.fixture
def source_url(engine_name: str, new_url: Callable[[str], str]) -> str:
    url = new_url(engine_name)
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    full_catalog(url)
    return url


def run_cli(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_copy_to_the_other_engine_is_verified_and_serves(
    engine_name: str, source_url: str, new_url: Callable[[str], str]
) -> None:
    """SQLite -> PostgreSQL and PostgreSQL -> SQLite: every row arrives, the checksums agree,
    and the site works on the copy (pages, search, logging in, new rows get new ids)."""
    target_url = new_url(OTHER[engine_name])
    result = run_cli("db", "copy", "--from", source_url, "--to", target_url)
    assert result.exit_code == 0, result.output
    assert "MISMATCH" not in result.output and " OK" in result.output
    assert "copied " in result.output and " papers/s" in result.output
    source, target = make_engine(source_url), make_engine(target_url)
    try:
        mine, theirs = table_checksums(source), table_checksums(target)
        assert compare(mine, theirs) == [] and mine == theirs
        assert [name for name, sums in mine.items() if sums.rows == 0] == []  # all covered
        assert mine["papers"].rows == 5 and mine["comments"].rows == 2
        # JSON null and SQL NULL stay apart; the source's lease and search queue stay behind.
        null_details = "SELECT source FROM ingest_state WHERE details IS NULL ORDER BY source"
        assert rows(target, null_details) == rows(source, null_details) == [("sql null",)]
        assert rows(target, "SELECT count(*) FROM leases") == [(0,)]
        with source.connect() as a, target.connect() as b:
            query = select(paper_embeddings.c.vector).where(paper_embeddings.c.paper_id == 2)
            assert np.array_equal(a.execute(query).scalar_one(), b.execute(query).scalar_one())
        if OTHER[engine_name] == "postgresql":
            _check_postgres_target(source, target)
        else:
            _check_sqlite_target(target, target_url, result.output)
        _check_site(target, target_url)
    finally:
        source.dispose()
        target.dispose()


def _check_postgres_target(source: Engine, target: Engine) -> None:
    """Sequences continue after the copied ids; the vector index exists."""
    assert rows(target, "SELECT count(*) FROM search_changes") == [(0,)]
    indexes = rows(target, "SELECT indexname FROM pg_indexes WHERE tablename = 'paper_embeddings'")
    assert ("ix_paper_embeddings_hnsw_384",) in indexes
    for table in (users, comments, audit_log, papers):
        biggest = rows(source, f"SELECT max(id) FROM {table.name}")[0][0]
        [(sequence,)] = rows(target, f"SELECT pg_get_serial_sequence('{table.name}', 'id')")
        # Not nextval: that would use up the id the next insert must get.
        assert rows(target, f"SELECT last_value, is_called FROM {sequence}") == [
            (biggest + 1, False)
        ], table.name


def _check_sqlite_target(target: Engine, target_url: str, output: str) -> None:
    """The triggers queued every paper for the keyword index; the printed command builds it."""
    assert rows(target, "SELECT count(*) FROM search_changes") == [(5,)]
    assert f"PAPERTIDE_DATABASE_URL='{target_url}' papertide index" in output
    built = run_cli("index", "--quiet", env={"PAPERTIDE_DATABASE_URL": target_url})
    assert built.exit_code == 0, built.output
    assert "keyword index: 5 papers updated" in built.output
    assert rows(target, "SELECT count(*) FROM search_changes") == [(0,)]


def _check_site(target: Engine, target_url: str) -> None:
    settings = load_settings(env={"PAPERTIDE_DATABASE_URL": target_url}).replace(
        secret_key=SECRET, scheduler=False, embed_in_background=False
    )
    app = create_app(settings)
    with TestClient(app):
        app.state.search.stop()
        client, _csrf = client_as(app, target, user_by_name(target, "Ada"))
        page = client.get("/papers/2611.00001")
        assert page.status_code == 200
        assert "Schrödinger bridges" in page.text and "really</strong> nice" in page.text
        # Words only: the vectors here are random, so meaning would match anything.
        found = client.get("/search", params={"q": "speculative decoding", "mode": "keyword"})
        assert found.status_code == 200 and "1 result" in found.text
        assert '<a class="math" data-math="inline" href="/papers/2611.00002">' in found.text
        hidden = client.get("/search", params={"q": "quantum", "mode": "keyword"}).text
        assert "No papers match" in hidden and "surface codes" not in hidden  # hidden by a mod
        day = client.get(f"/papers/date/{LIST_DAY.isoformat()}")
        assert day.status_code == 200 and "Protein folding" in day.text
    with write_transaction(target) as connection:  # new rows get fresh ids on both engines
        biggest = connection.execute(select(func.max(comments.c.id))).scalar_one()
        added = post_comment(connection, user_by_username(connection, "Zoë"), "2611.00002", "New")
    assert added.id == biggest + 1
    assert add_user(target, "Newcomer").id == 5


def user_by_name(engine: Engine, name: str) -> Any:
    with engine.connect() as connection:
        return user_by_username(connection, name)


def test_copy_refuses_targets_that_are_not_empty_and_outdated_sources(
    engine_name: str, source_url: str, make_db_url: Callable[[], str]
) -> None:
    with_data = make_db_url()
    add_user(make_engine(with_data), "Someone")
    refused = run_cli("db", "copy", "--from", source_url, "--to", with_data)
    assert refused.exit_code == 2
    assert "already holds data (in users)" in refused.output
    assert rows(make_engine(with_data), "SELECT count(*) FROM papers") == [(0,)]

    older = make_db_url()
    downgrade(make_engine(older), "0007")
    refused = run_cli("db", "copy", "--from", source_url, "--to", older)
    assert refused.exit_code == 2 and "is at revision 0007" in refused.output

    refused = run_cli("db", "copy", "--from", source_url, "--to", source_url)
    assert refused.exit_code == 2 and "the target is the source" in refused.output

    refused = run_cli("db", "copy", "--from", older, "--to", make_db_url())
    assert refused.exit_code == 4 and "run `papertide db migrate`" in refused.output

    refused = run_cli("db", "copy", "--from", source_url, "--to", "mysql://x@localhost/db")
    assert refused.exit_code == 2 and "--to: unsupported database 'mysql'" in refused.output


def test_verification_catches_a_target_that_changes_rows(
    tmp_path: Path, new_url: Callable[[str], str]
) -> None:
    """A trigger in the target alters one column of one table as rows arrive: the copy says
    MISMATCH for that table only and exits 1."""
    source_url = new_url("sqlite")
    migrate(make_engine(source_url))
    small_catalog(make_engine(source_url))
    target_url = new_url("sqlite")
    target = make_engine(target_url)
    migrate(target)
    with target.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TRIGGER tamper AFTER INSERT ON users WHEN new.username = 'alice' "
            "BEGIN UPDATE users SET display_name = 'Mallory' WHERE id = new.id; END"
        )
    result = run_cli("db", "copy", "--from", source_url, "--to", target_url)
    assert result.exit_code == 1
    assert "users: same 3 rows but different values" in result.output
    [line] = [line for line in result.output.splitlines() if "MISMATCH" in line]
    assert line.split()[0] == "users"
    assert "next:" not in result.output


def test_failed_copy_leaves_the_target_empty(
    new_url: Callable[[str], str], pg_admin_url: str
) -> None:
    """SQLite does not enforce VARCHAR lengths, PostgreSQL does: the copy stops at that table,
    names it, and rolls the target back to empty, so it can be run again once fixed."""
    source_url = new_url("sqlite")
    source = make_engine(source_url)
    migrate(source)
    small_catalog(source)
    with write_transaction(source) as connection:
        connection.execute(update(papers).where(papers.c.id == 3).values(primary_category="x" * 70))
    target_url = new_url("postgresql")
    result = run_cli("db", "copy", "--quiet", "--from", source_url, "--to", target_url)
    assert result.exit_code == 1
    assert "copying table papers failed" in result.output
    assert "value too long for type character varying(64)" in result.output
    target = make_engine(target_url)
    assert all(sums.rows == 0 for sums in table_checksums(target).values())
    with write_transaction(source) as connection:
        connection.execute(update(papers).where(papers.c.id == 3).values(primary_category="cs.CL"))
    again = run_cli("db", "copy", "--quiet", "--from", source_url, "--to", target_url)
    assert again.exit_code == 0, again.output
    assert table_checksums(target) == table_checksums(source)


def test_copy_while_the_source_is_written_to_is_the_snapshot(
    engine_name: str, source_url: str, new_url: Callable[[str], str]
) -> None:
    """Another connection writes to the source in the middle of the copy (a vote, a new user,
    a retitled paper whose embedding a trigger drops, a deleted comment): no error, and the
    copy equals the source as it was when the copy began."""
    target_url = new_url(engine_name)  # SQLite -> SQLite, PostgreSQL -> PostgreSQL
    source = make_engine(source_url)
    before = table_checksums(source)
    writes: list[str] = []

    def progress(stage: str, table: str, done: int, total: int) -> None:
        if stage == "copy" and table == "papers" and done and not writes:
            with write_transaction(source) as connection:
                newcomer = add_user_in(connection, "Latecomer")
                upvote(connection, newcomer, "2611.00003")
                connection.execute(
                    update(papers).where(papers.c.id == 2).values(title="Retitled meanwhile")
                )
                connection.execute(comments.delete().where(comments.c.parent_id.is_not(None)))
            writes.append(table)

    report = copy_database(source_url, target_url, progress=progress)
    assert writes == ["papers"]
    assert report.ok and report.mismatches == []
    assert {result.name: result.rows for result in report.tables}["users"] == 4
    after = table_checksums(source)
    target_sums = table_checksums(make_engine(target_url))
    assert target_sums == before
    assert {line.split(":")[0] for line in compare(after, target_sums)} == {
        "users",
        "papers",
        "votes",
        "comments",
        "paper_embeddings",
    }


def add_user_in(connection: Any, username: str) -> Any:
    connection.execute(
        insert(users).values(
            username=username,
            username_key=username.lower(),
            email=f"{username.lower()}@example.org",
            password_hash="!",
            created_at=datetime(2026, 11, 25, tzinfo=UTC),
        )
    )
    return user_by_username(connection, username)
