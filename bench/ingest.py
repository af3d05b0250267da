"""Ingest benchmark: Kaggle-format import into SQLite with its full-text index: papers/s, memory.

The input is made from the 200 real Kaggle snapshot records in ../shared/data, varied into N
distinct papers (new ids, titles and abstracts perturbed with each copy's number, so the
full-text index sees distinct text). Each measurement runs in a fresh subprocess so peak RSS
is its own, after a sync so no step pays for the previous one's writes. Printed per size, in
one run:

- parse only: the Kaggle parser alone, in one thread;
- baseline: one transaction per paper through the same catalog writer (what a naive importer
  does), on the first 5,000 records into an empty database;
- ingest: `papertide ingest` as users run it (batches; triggers mark changed papers; then the
  tantivy keyword index beside the file is brought up to date, as the command does at the end
  of its run), into an empty database; checked: every record new, every paper found by a
  full-text query; the index's share of the time is printed;
- re-ingest: the same file again (every paper unchanged: the idempotency path); checked.

"x base" is papers/s over the baseline's. The benchmark measures the checkout it lives in.

Usage: python bench/ingest.py [--sizes 100000,1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Measure the checkout this script is in, whatever an editable install elsewhere points to.
sys.path.insert(0, str(HERE.parent))
SAMPLE = HERE.parents[1] / "shared/data/arxiv_kaggle_sample/arxiv-metadata-oai-snapshot.json"
if not SAMPLE.exists():
    SAMPLE = HERE.parent / "tests" / "fixtures" / "kaggle" / "arxiv-metadata-oai-snapshot.json"


def copy_id(n: int) -> str:
    """The arXiv id of the ``n``-th record ``make_input`` writes (99,999 a month from 1501)."""
    month = n // 99_999
    yymm = (15 + month // 12) * 100 + month % 12 + 1
    return f"{yymm:04d}.{n % 99_999 + 1:05d}"


def make_input(path: Path, count: int) -> None:
    """Write ``count`` distinct Kaggle records varied from the real sample."""
    base = [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]
    with path.open("w") as out:
        for n in range(count):
            record = dict(base[n % len(base)])
            record["id"] = copy_id(n)
            record["title"] = f"{record['title']} (variant {n})"
            record["abstract"] = f"{record['abstract']} Sample {n} of the benchmark."
            out.write(json.dumps(record) + "\n")


def _child(mode: str, db: str, data: str, limit: int) -> None:
    from zoneinfo import ZoneInfo

    from papertide.db.engine import make_engine, write_transaction
    from papertide.db.migrate import migrate
    from papertide.ingest import kaggle
    from papertide.ingest.runner import IngestRun
    from papertide.search.filters import SearchFilters, Sort
    from papertide.search.keyword_tantivy import TantivyIndex
    from papertide.search.query import parse_query

    tz = ZoneInfo("America/New_York")
    engine = make_engine(f"sqlite:///{db}")
    migrate(engine)
    started = time.perf_counter()
    count = 0
    if mode == "parse":
        for _ in kaggle.parse(Path(data), tz):
            count += 1
    elif mode == "baseline":
        from papertide.catalog.store import CatalogWriter

        writer = CatalogWriter(tz=tz)
        for record in kaggle.parse(Path(data), tz):
            if count >= limit:
                break
            with write_transaction(engine) as connection:
                writer.write(connection, [record])  # type: ignore[list-item]
            count += 1
    else:
        report = IngestRun(engine=engine, tz=tz).run([Path(data)])
        count = report.records
        assert not report.errors, report.errors[:3]
        expected = report.totals.new if mode == "ingest" else report.totals.unchanged
        assert expected == count, f"{mode}: {report.totals}"
        parsed_and_stored = time.perf_counter() - started
        # The full-text index, as `papertide ingest` builds it at the end of its run.
        keyword = TantivyIndex(engine, Path(f"{db}.search"))
        keyword.apply_changes(wait=True)
        index_seconds = time.perf_counter() - started - parsed_and_stored
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result: dict[str, float] = {"count": count, "seconds": seconds, "peak_mb": peak_mb}
    if mode in ("ingest", "reingest"):
        result["index_seconds"] = index_seconds
    if mode == "ingest":
        # Every paper's abstract ends "Sample N of the benchmark.": the index must find them all.
        hits = keyword.search(parse_query("benchmark"), SearchFilters(), sort=Sort.DATE, limit=1)
        assert hits.total == count, f"full-text index has {hits.total} of {count} papers"
    print(json.dumps(result))


def measure(mode: str, db: Path, data: Path, limit: int = 0) -> dict[str, float]:
    os.sync()
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(db), str(data), str(limit)],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        sys.exit(f"{mode} failed:\n{out.stderr}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--keep", type=Path, default=None, help="keep inputs/databases here")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, db, data, limit = args.child
        _child(mode, db, data, int(limit))
        return
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="papertide-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    import sqlite3

    import papertide

    print(
        f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; "
        f"sqlite {sqlite3.sqlite_version}; papertide from {Path(papertide.__file__).parent}"
    )
    print(f"sample: {SAMPLE}")
    print(
        f"{'size':>9} {'step':<12} {'papers':>9} {'seconds':>8} {'papers/s':>10} "
        f"{'x base':>7} {'peak MB':>8}"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        data = workdir / f"kaggle-{size}.jsonl"
        if not data.exists():
            make_input(data, size)
        db = workdir / f"bench-{size}.db"
        for leftover in workdir.glob(f"bench-{size}.db*"):
            _remove(leftover)
        steps = [
            ("parse only", "parse", workdir / f"parse-{size}.db", 0),
            ("baseline", "baseline", workdir / f"baseline-{size}.db", 5000),
            ("ingest", "ingest", db, 0),
            ("re-ingest", "reingest", db, 0),
        ]
        baseline = 0.0
        for label, mode, target, limit in steps:
            if mode in ("parse", "baseline"):
                for leftover in workdir.glob(f"{target.name}*"):
                    _remove(leftover)
            r = measure(mode, target, data, limit)
            rate = r["count"] / r["seconds"]
            if mode == "baseline":
                baseline = rate
            ratio = f"{rate / baseline:>6.1f}x" if baseline and mode != "baseline" else " " * 7
            index = f"  (keyword index {r['index_seconds']:.1f} s)" if "index_seconds" in r else ""
            print(
                f"{size:>9,} {label:<12} {int(r['count']):>9,} {r['seconds']:>8.1f} "
                f"{rate:>10,.0f} {ratio} {r['peak_mb']:>8.0f}{index}",
                flush=True,
            )
        size_mb = (
            sum(
                f.stat().st_size
                for p in workdir.glob(f"bench-{size}.db*")
                for f in ([p] if p.is_file() else p.rglob("*"))
                if f.is_file()
            )
            / 1e6
        )
        print(f"{size:>9,} database + keyword index on disk: {size_mb:,.0f} MB")
    if args.keep is None:
        shutil.rmtree(workdir)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


if __name__ == "__main__":
    main()
