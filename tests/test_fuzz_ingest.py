"""Hostile input through the ingest runner (what ``papertide ingest`` runs) into a real
database, on SQLite and on PostgreSQL: files mixing good and bad records, formats detected
from their content. Every good record is stored; every bad one is reported with its position
(file and line, or the file) and nothing of it is stored; no exception escapes the run."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import pytest
from fuzz_strategies import FIXTURES, TZ, fuzz_settings, gzipped
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from test_fuzz_records import STREAMS, error_place, stream_case, stream_kinds

from papertide.ingest.runner import IngestRun

RUNS = itertools.count()


def fresh_prefixes() -> tuple[str, str]:
    """Two unused year-month prefixes (new-style ids), so that each example's ids are new to
    the database the examples share."""
    run = next(RUNS)
    return tuple(f"{15 + n // 12}{n % 12 + 1:02d}" for n in (2 * run, 2 * run + 1))  # type: ignore[return-value]


def _in(ids: set[str]) -> str:
    return ", ".join(f"'{ident}'" for ident in sorted(ids))


def titles(engine: Engine, ids: set[str]) -> dict[str, str | None]:
    """Title by arXiv id of the papers among ``ids`` that are in the catalog."""
    if not ids:
        return {}
    with engine.connect() as connection:
        sql = f"SELECT arxiv_id, title FROM papers WHERE arxiv_id IN ({_in(ids)})"
        return {row[0]: row[1] for row in connection.execute(text(sql))}


@pytest.mark.parametrize("name", ["kaggle", "hf timeline", "hf api lines"])
@fuzz_settings(25, deadline_ms=None)
@given(data=st.data())
def test_json_lines_through_the_runner(name: str, data: st.DataObject, engine: Engine) -> None:
    stream = STREAMS[name]
    kinds = data.draw(stream_kinds(stream))
    document, good, bad_places, bad_ids = stream_case(stream, kinds, fresh_prefixes())
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"input-{next(RUNS)}.jsonl"
        path.write_bytes(gzipped(document, data.draw(st.sampled_from(["plain", "gzip"]))))
        report = IngestRun(engine, TZ).run([path])
    errors = report.errors
    assert all(error.position.startswith(str(path)) for error in errors), errors
    if good or [error.position for error in errors] != [str(path)]:
        assert {error_place(error.position, "lines") for error in errors} == bad_places, errors
        assert len(errors) == len(bad_places), errors
    assert report.records == len(good), report
    found = titles(engine, good | bad_ids)
    assert set(found) == good, f"stored {sorted(found)}, expected {sorted(good)}"
    assert all(found.values())


ABS_TEMPLATES = [
    path.read_text("utf-8") for path in sorted((FIXTURES / "abs/ftp/arxiv").rglob("*.abs"))[:5]
]


def _abs_with_id(template: str, ident: str) -> str:
    lines = template.split("\n")
    return "\n".join(f"arXiv:{ident}" if line.startswith("arXiv:") else line for line in lines)


OUT_OF_RANGE = "Mon, 2 Apr 0001 00:00:00 GMT"
V1_AGAIN = "Mon, 2 Apr 2007 19:18:42 GMT"
BAD_ABS = (
    lambda text: "\n".join(line for line in text.split("\n") if not line.startswith("Title:")),
    lambda text: text.replace("Categories: ", "Categories: not/a:category "),
    lambda text: text.replace("\nDate: ", f"\nDate: {OUT_OF_RANGE}   (1kb)\nDate: ", 1),
    lambda text: text.replace("\nDate: ", f"\nDate (revised v1): {V1_AGAIN}\nDate: ", 1),
)


@fuzz_settings(25, deadline_ms=None)
@given(
    kinds=st.lists(st.integers(-1, len(BAD_ABS) - 1), min_size=1, max_size=8),
    template=st.sampled_from(ABS_TEMPLATES),
    packing=st.sampled_from(["plain", "gzip", "gzip-truncated"]),
)
def test_abs_tree_through_the_runner(
    kinds: list[int], template: str, packing: str, engine: Engine
) -> None:
    """A directory of .abs files, good and bad (a truncated gzip one is bad too): the good are
    stored, each bad one is an error naming its file or a skipped file, never half stored."""
    good: set[str] = set()
    bad: dict[str, str] = {}  # file name -> arXiv id
    good_prefix, bad_prefix = fresh_prefixes()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "papers").mkdir()
        for number, kind in enumerate(kinds, start=1):
            ident = f"{good_prefix if kind < 0 else bad_prefix}.{number:05d}"
            path = root / "papers" / f"{ident}.abs"
            text = _abs_with_id(template, ident)
            if kind >= 0:
                text = BAD_ABS[kind](text)
            how = packing
            if packing == "gzip-truncated" and not (kind < 0 and number == 1):
                how = "gzip"  # only the first file is cut short: it is bad too
            path.write_bytes(gzipped(text.encode(), how))
            if kind < 0 and how != "gzip-truncated":
                good.add(ident)
            else:
                bad[path.name] = ident
        report = IngestRun(engine, TZ).run([root])
    reported = {Path(error.position).name for error in report.errors}
    skipped = {Path(name).name for name in report.skipped_files}
    assert reported | skipped == set(bad), (report.errors, report.skipped_files)
    assert len(report.errors) == len(reported), report.errors
    assert report.records == len(good)
    found = titles(engine, good | set(bad.values()))
    assert set(found) == good
