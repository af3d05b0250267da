"""The ingest runner end to end: detection, directories, reports, exit codes, progress, and
identical catalog rows from the Kaggle snapshot and the .abs files of the same 200 papers."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from click.testing import CliRunner
from factories import fixture_path, rows
from rich.console import Console
from sqlalchemy import Engine, text
from test_ingest_crossformat import KNOWN_DIFFERENCES

from papertide.cli import cli
from papertide.db.engine import make_engine
from papertide.ingest.progress import RichProgress
from papertide.ingest.runner import EXIT_NOTHING_NEW, EXIT_OK, EXIT_RECORD_ERRORS, IngestRun

TZ = ZoneInfo("America/New_York")
KAGGLE = fixture_path("kaggle", "arxiv-metadata-oai-snapshot.json")
ABS_0704 = fixture_path("abs", "ftp", "arxiv", "papers", "0704")
# Columns that say where a row came from rather than what the paper is, or that only .abs has.
NOT_COMPARED = {
    "id",
    "field_sources",
    "content_hash",
    "created_at",
    "modified_at",
    "msc_class",
    "acm_class",
    "withdrawn",
    "search_vector",
}
# Record fields the known upstream differences touch -> catalog columns derived from them.
DERIVED = {
    "version": {"latest_version"},
    "versions": {"versions", "latest_version", "updated_at"},
    "authors": {"authors", "authors_text", "author_count"},
    "abstract": {"abstract", "code_url", "project_url"},
    "comments": {"comments", "code_url", "project_url"},
}


def catalog(engine: Engine) -> dict[str, dict[str, object]]:
    """Every paper's row plus its authors, categories and versions, keyed by arXiv id."""
    with engine.connect() as connection:
        papers = {
            row["arxiv_id"]: {k: v for k, v in row.items() if k not in NOT_COMPARED}
            for row in connection.execute(text("SELECT * FROM papers")).mappings()
        }
        ids = dict(connection.execute(text("SELECT id, arxiv_id FROM papers")).all())
        children = {
            "authors": "SELECT paper_id, position, name, affiliation FROM paper_authors",
            "categories": "SELECT paper_id, position, category FROM paper_categories",
            "versions": "SELECT paper_id, version, submitted_at FROM paper_versions",
        }
        for name, sql in children.items():
            for row in connection.execute(text(sql + " ORDER BY 1, 2")):
                papers[ids[row[0]]].setdefault(name, []).append(tuple(row[1:]))
    return papers


def test_kaggle_and_abs_give_identical_catalog_rows(
    engine: Engine, make_db_url: Callable[[], str]
) -> None:
    other = make_engine(make_db_url())
    from_kaggle = IngestRun(engine=engine, tz=TZ).run([KAGGLE])
    from_abs = IngestRun(engine=other, tz=TZ).run([ABS_0704])
    assert from_kaggle.totals.new == from_abs.totals.new == 200
    assert not from_kaggle.errors and not from_abs.errors
    a, b = catalog(engine), catalog(other)
    other.dispose()
    assert a.keys() == b.keys()
    compared = 0
    for arxiv_id in a:
        differ: set[str] = set()
        for name in KNOWN_DIFFERENCES.get(arxiv_id, ()):
            differ |= DERIVED.get(name, {name})
        for column in a[arxiv_id].keys() - differ:
            assert a[arxiv_id][column] == b[arxiv_id][column], (arxiv_id, column)
            compared += 1
    assert compared > 200 * 20


def test_directory_walk_detects_each_format_and_skips_unknown_files(engine: Engine) -> None:
    report = IngestRun(engine=engine, tz=TZ).run([fixture_path("abs")])
    assert report.formats["abs"] > 200
    assert any(path.endswith("LICENSE.arxiv-browse.txt") for path in report.skipped_files)
    assert report.totals.new > 200


def test_malformed_records_are_reported_with_position_and_the_rest_imported(
    engine: Engine,
) -> None:
    malformed = fixture_path("kaggle", "malformed.jsonl")
    report = IngestRun(engine=engine, tz=TZ).run([malformed])
    assert report.errors, "the fixture has broken lines"
    assert all(str(malformed) in e.position and ":" in e.position for e in report.errors)
    assert report.totals.new >= 1
    assert report.exit_code == EXIT_RECORD_ERRORS
    imported = rows(engine, "SELECT count(*) FROM papers")[0][0]
    assert imported == report.totals.new
    # no half-written paper: every paper has its authors and versions
    orphans = rows(
        engine,
        "SELECT count(*) FROM papers p WHERE NOT EXISTS "
        "(SELECT 1 FROM paper_versions v WHERE v.paper_id = p.id)",
    )
    assert orphans[0][0] == 0


def test_second_run_is_unchanged_with_its_own_exit_code(engine: Engine) -> None:
    first = IngestRun(engine=engine, tz=TZ).run([KAGGLE])
    second = IngestRun(engine=engine, tz=TZ).run([KAGGLE])
    assert first.exit_code == EXIT_OK and first.totals.new == 200
    assert (second.totals.new, second.totals.updated, second.totals.unchanged) == (0, 0, 200)
    assert second.exit_code == EXIT_NOTHING_NEW


def test_cli_ingest_reports_and_exit_codes(db_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"PAPERTIDE_DATABASE_URL": db_url}
    result = runner.invoke(cli, ["ingest", "--quiet", str(KAGGLE)], env=env)
    assert result.exit_code == 0, result.output
    assert "new: 200" in result.output
    result = runner.invoke(cli, ["ingest", "--quiet", str(KAGGLE)], env=env)
    assert result.exit_code == 3 and "unchanged: 200" in result.output
    unknown = tmp_path / "notes.txt"
    unknown.write_text("hello\n")
    result = runner.invoke(cli, ["ingest", "--quiet", str(unknown)], env=env)
    assert result.exit_code == 1
    assert f"{unknown}: unknown format" in result.output
    result = runner.invoke(cli, ["ingest", "--format", "bogus", str(unknown)], env=env)
    assert result.exit_code == 2 and "unknown format 'bogus'" in result.output


def test_progress_bar_shows_papers_rate_and_eta(engine: Engine) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=140)
    IngestRun(engine=engine, tz=TZ, progress=RichProgress(console)).run([KAGGLE])
    shown = out.getvalue()
    assert "200 papers" in shown and "papers/s" in shown and "ETA" in shown
