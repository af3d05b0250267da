"""Search benchmark: latency of SearchService.search over 100k and 1M papers, and memory.

The corpus is bench/ingest.py's (its ``make_input``): the 200 real Kaggle snapshot records in
../shared/data, varied into N distinct papers (new ids; titles and abstracts suffixed with the
copy's number), written as one Kaggle-format file and ingested by the real ingest runner
(``IngestRun``) into SQLite; then the tantivy keyword index (``TantivyIndex.apply_changes``).

Vectors are partly SYNTHETIC: embedding N papers on 2 cores would take hours (25-50 papers/s
at best: 1M papers in 6-11 hours), so only ``--real`` papers (the newest, which cover every
base record) are embedded, by the real pipeline (``embed_missing``, the configured model).
Every other paper gets normalise(real vector of a paper varied from the same base record +
gaussian noise), sigma set so that its cosine to that vector is ~0.9, inserted into
``paper_embeddings`` as the ``EmbeddingVector`` type stores it (float16 bytes). Such data is
200 tight clusters of isotropic noise, a hard case for HNSW (see the recall line). The vector
index is built by the service itself (``vector_index = auto``: HNSW-SQ8 from 50k vectors) and
saved beside the database, as ``papertide embed`` leaves it for a server.

Measured in a fresh process that plays the server (it loads the service, the model and the
saved indexes, as ``papertide serve`` does), after 20 warm-up queries, one request at a time,
with the page cache as the build left it:

- latency (wall clock, perf_counter; also the process's CPU time, all threads) of
  ``SearchService.search(SearchRequest(q))`` for ``--queries`` queries: 2-4 word topics (title
  n-grams of the real records), exact titles, arXiv ids, "phrase" queries, queries with a
  typo, ``cat:`` filters and date ranges; in hybrid, keyword-only and vector-only mode; the
  query embedding alone (``Embedder.encode_query``); ``SearchService.similar`` for 100 papers;
  where a hybrid query's time goes (the service's own methods, wrapped with timers; a second
  pass over the same queries); hybrid again with one torch thread (as ``embedding_threads =
  1`` would have it). Other processes' CPU use meanwhile is printed: on a shared machine the
  figures mean little when it is high;
- memory: resident set (VmRSS, anonymous + file-backed) after each load, and the peak
  (``ru_maxrss``) after the queries, before any comparison below;
- comparisons, afterwards in the same process: the peer's search (arxiv-sanity-lite's
  ``search_rank``: a Python loop scoring every paper by query-word matches in title, authors
  and abstract) over ``--baseline-queries`` topic queries (3 above 200k papers: seconds each);
  exact search (numpy, float32 matrix times query) over every vector, and the recall@10 of
  the service's HNSW index against it, on 100 query vectors;
- a variant (unless ``--no-variant``): hybrid search in a second fresh server process with
  ``OMP_WAIT_POLICY=PASSIVE``, so that idle OpenMP threads (torch's and faiss's pools) sleep
  instead of spinning on the 2 cores the main thread needs.

Build steps run in subprocesses of their own (so peak RSS is each one's) and are cached in
``--cache``/{size}: a later run reuses the database and indexes and reprints the build figures
(``--rebuild`` starts afresh). The benchmark measures the checkout it lives in. Targets at 1M
papers on 2 cores: p50 <= 20 ms, p99 <= 60 ms, server memory <= 2 GB.

Usage: python bench/search.py [--sizes 100000,1000000] [--queries 200] [--cache DIR]
       [--real 1000] [--baseline-queries 20] [--no-variant] [--rebuild]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# Measure the checkout this script is in, whatever an editable install elsewhere points to.
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from search_catalog import (  # noqa: E402
    SAMPLE,
    _step_ingest,
    _step_keyword,
    _step_vectors,
    _step_vindex,
    build,
    run_child,
)
from search_queries import WARMUP, _step_measure  # noqa: E402

TARGETS = {"p50": 20.0, "p99": 60.0, "memory_mb": 2048.0}
VARIANT_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}
VARIANT = "OMP_WAIT_POLICY=PASSIVE"


CHILD_STEPS: dict[str, Callable[[Path, dict[str, Any]], dict[str, Any]]] = {
    "ingest": _step_ingest,
    "keyword": _step_keyword,
    "vectors": _step_vectors,
    "vindex": _step_vindex,
    "measure": _step_measure,
}


# --- the parent: build, measure, print ------------------------------------------------------------


def report(size: int, cache: Path, built: dict[str, Any], m: dict[str, Any]) -> None:
    def flag(value: float, target: float) -> str:
        return "ok" if value <= target else "OVER"

    print(f"\n=== {size:,} papers (cache {cache}) ===")
    print("build (seconds, peak RSS of the step's own process; 'cached' = from an earlier run)")
    print(f"  {'step':<28} {'seconds':>8} {'peak MB':>8}  notes")
    g = built["generate"]
    print(
        f"  {'generate Kaggle input':<28} {g['seconds']:>8.1f} {'':>8}  "
        f"{g['disk_mb']:,.0f} MB (bench/ingest.py make_input)"
    )
    i, k, v, x = built["ingest"], built["keyword"], built["vectors"], built["vindex"]

    def line(label: str, step: dict[str, Any], seconds: float, notes: str) -> None:
        cached = " (cached)" if step.get("cached") else ""
        print(f"  {label:<28} {seconds:>8.1f} {step['peak_mb']:>8,.0f}  {notes}{cached}")

    line(
        "ingest (IngestRun)",
        i,
        i["seconds"],
        f"{i['papers']:,} papers, {i['papers'] / i['seconds']:,.0f}/s; "
        f"database {built['db_mb']:,.0f} MB",
    )
    line(
        "keyword index (tantivy)",
        k,
        k["seconds"],
        f"{k['docs']:,} documents, {k['disk_mb']:,.0f} MB on disk",
    )
    line(
        "real embeddings",
        v,
        v["real_seconds"],
        f"{v['real']:,} papers by embed_missing, {v['real_rate']:.1f}/s "
        f"({v['model']}, {v['precision']})",
    )
    line(
        "synthetic vectors",
        v,
        v["synthetic_seconds"],
        f"{v['synthetic']:,} papers, sigma {v['sigma']:.4f}, cosine to base {v['cos_to_base']:.3f}",
    )
    line(
        "vector index (the service)",
        x,
        x["seconds"],
        f"{x['kind']}, {x['vectors']:,} vectors, {x['disk_mb']:,.0f} MB saved on disk",
    )
    print(
        f"  vectors: {v['real']:,} real ({v['model']}), {v['synthetic']:,} SYNTHETIC = "
        f"normalise(real vector of the same base record + N(0, {v['sigma']:.4f}^2)); "
        f"real variants of one base record agree at cosine {v['real_same_base_cos']:.3f}"
    )
    how = "saved index loaded" if m["vindex_saved"] else "exact index built from the database"
    print(f"  vector index at server start: {how} in {m['vindex_load_s']:.1f} s")

    print(
        f"\nlatency, ms ({m['latency']['hybrid']['n']} queries after {WARMUP} warm-up; "
        f"wall clock around each call, one request at a time; cpu: this process's CPU "
        f"time, all threads; torch {m['torch_threads']} "
        f"threads; load average {m['load_before']:.2f} before, other processes kept "
        f"{m['others_cores']:.2f} of {os.cpu_count()} cores busy meanwhile)"
    )
    print(
        f"  {'what':<34} {'n':>4} {'p50':>7} {'p95':>7} {'p99':>7} {'mean':>7} {'max':>7} "
        f"{'cpu p50':>8} {'cpu mean':>8}"
    )
    names = {
        "hybrid": "search, hybrid",
        "keyword": "search, keyword only",
        "vector": "search, vector only",
        "encode_query": "Embedder.encode_query alone",
        "similar": "similar() (100 papers)",
        "hybrid_1thread": "search, hybrid, torch 1 thread",
        "encode_query_1thread": "encode_query alone, 1 thread",
    }
    for key, label in names.items():
        if key not in m["latency"]:
            continue
        s = m["latency"][key]
        print(
            f"  {label:<34} {s['n']:>4} {s['p50']:>7.2f} {s['p95']:>7.2f} {s['p99']:>7.2f} "
            f"{s['mean']:>7.2f} {s['max']:>7.2f} {s['cpu_p50']:>8.2f} {s['cpu_mean']:>8.2f}"
        )
    if "others_cores_1thread" in m:
        print(
            f"  (1-thread rows: torch.set_num_threads(1) afterwards, as embedding_threads = 1 "
            f"would; other processes kept {m['others_cores_1thread']:.2f} cores busy)"
        )
    print("  hybrid by query kind:")
    for kind, s in sorted(m["by_kind"].items()):
        print(
            f"    {kind:<32} {s['n']:>4} {s['p50']:>7.2f} {s['p95']:>7.2f} {s['p99']:>7.2f} "
            f"{s['mean']:>7.2f} {s['max']:>7.2f}"
        )
    checks = ", ".join(f"{name} {a}/{b}" for name, (a, b) in m["checks"].items())
    print(f"  checks (hybrid): {checks}")
    print(f"  e.g. {'; '.join(m['queries_example'])}")

    print("\nwhere a hybrid query's time goes (ms per query; the service's methods, wrapped)")
    print(f"  {'part':<34} {'p50':>7} {'mean':>7} {'max':>7}")
    for label, s in sorted(m["parts"].items(), key=lambda kv: -kv[1]["mean"]):
        print(f"  {label:<34} {s['p50']:>7.2f} {s['mean']:>7.2f} {s['max']:>7.2f}")
    # The wrapped parts do not call one another: the rest is the search's own Python.
    rest = m["parts_total"]["mean"] - sum(s["mean"] for s in m["parts"].values())
    print(f"  {'everything else (parse, fusion, ...)':<34} {'':>7} {rest:>7.2f}")
    t = m["parts_total"]
    print(f"  {'total':<34} {t['p50']:>7.2f} {t['mean']:>7.2f} {t['max']:>7.2f}")

    print("\nmemory of the server process, MB (VmRSS = anonymous + file-backed pages)")
    print(f"  {'after':<24} {'VmRSS':>7} {'anon':>7} {'file':>7} {'+VmRSS':>7}")
    previous = 0.0
    for row in m["memory"]:
        print(
            f"  {row['stage']:<24} {row['VmRSS']:>7,.0f} {row['RssAnon']:>7,.0f} "
            f"{row['RssFile']:>7,.0f} {row['VmRSS'] - previous:>+7,.0f}"
        )
        previous = row["VmRSS"]
    print(
        f"  peak RSS (ru_maxrss) after loading and the queries: {m['peak_mb']:,.0f} MB "
        f"[{flag(m['peak_mb'], TARGETS['memory_mb'])}: target <= {TARGETS['memory_mb']:,.0f}]"
    )
    print(
        f"  the build steps peaked at: vector index {x['peak_mb']:,.0f} MB (model loaded: "
        f"{x['peak_before_mb']:,.0f}), keyword index {k['peak_mb']:,.0f} MB"
    )

    print("\ncomparison, same process, after the measurements above")
    p = m["peer"]
    hybrid = m["latency"]["hybrid"]
    print(
        f"  peer (arxiv-sanity-lite search_rank, Python loop over {m['papers']:,} papers): "
        f"{p['n']} topic queries, p50 {p['p50']:,.0f} ms, mean {p['mean']:,.0f} ms = "
        f"{p['p50'] / hybrid['p50']:,.1f}x hybrid p50"
    )
    e, h = m["exact"], m["hnsw"]
    print(
        f"  vectors: exact numpy (float32 matrix @ q, top 10) p50 {e['p50']:.2f} ms / p99 "
        f"{e['p99']:.2f}; the service's {m['vindex']['kind']} index p50 {h['p50']:.2f} ms / p99 "
        f"{h['p99']:.2f}; recall@10 vs exact {m['recall10']:.3f} ({e['n']} query vectors)"
    )
    print(
        f"  mean cosine of the 10 found: exact {m['exact_cos10']:.4f}, {m['vindex']['kind']} "
        f"{m['hnsw_cos10']:.4f} (synthetic vectors are tight clusters of isotropic noise, "
        "where neighbours within a cluster differ by noise only)"
    )
    print(
        f"targets (set for 1M): p50 {hybrid['p50']:.1f} ms [{flag(hybrid['p50'], TARGETS['p50'])}]"
        f", p99 {hybrid['p99']:.1f} ms [{flag(hybrid['p99'], TARGETS['p99'])}], memory "
        f"{m['peak_mb']:,.0f} MB [{flag(m['peak_mb'], TARGETS['memory_mb'])}]",
        flush=True,
    )


def report_variant(m: dict[str, Any], v: dict[str, Any]) -> None:
    print(
        f"\nvariant: the same queries in a fresh server process with {VARIANT} (OpenMP threads "
        "of torch and faiss sleep when idle instead of spinning); other processes kept "
        f"{v['others_cores']:.2f} cores busy"
    )
    print(f"  {'what':<34} {'p50':>7} {'p95':>7} {'p99':>7} {'mean':>7}   default p50 / p99")
    for key, label in (("hybrid", "search, hybrid"), ("encode_query", "encode_query alone")):
        s, d = v["latency"][key], m["latency"][key]
        print(
            f"  {label:<34} {s['p50']:>7.2f} {s['p95']:>7.2f} {s['p99']:>7.2f} {s['mean']:>7.2f}"
            f"   {d['p50']:.2f} / {d['p99']:.2f}"
        )
    print(f"  peak RSS {v['peak_mb']:,.0f} MB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=200, help="timed queries per mode")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/papertide-searchbench"))
    parser.add_argument("--real", type=int, default=1000, help="papers embedded for real")
    parser.add_argument("--baseline-queries", type=int, default=20, help="peer loop queries")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rebuild", action="store_true", help="ignore the cache")
    parser.add_argument(
        "--no-variant",
        dest="variant",
        action="store_false",
        help=f"skip the second measurement, with {VARIANT}",
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step, cache, options = args.child
        print(json.dumps(CHILD_STEPS[step](Path(cache), json.loads(options))))
        return
    import sqlite3

    import papertide

    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; python "
        f"{sys.version.split()[0]}; sqlite {sqlite3.sqlite_version}; papertide from "
        f"{Path(papertide.__file__).parent}"
    )
    print(f"sample: {SAMPLE}")
    options = {
        "real": args.real,
        "seed": args.seed,
        "queries": args.queries,
        "baseline_queries": args.baseline_queries,
    }
    for size in (int(s) for s in args.sizes.split(",")):
        cache = args.cache / str(size)
        built = build(size, cache, options, args.rebuild)
        print(f"  measuring {size:,} ...", file=sys.stderr, flush=True)
        measured = run_child("measure", cache, options)
        report(size, cache, built, measured)
        if args.variant:
            print(f"  measuring {size:,} with {VARIANT} ...", file=sys.stderr, flush=True)
            variant = run_child("measure", cache, {**options, "light": True}, VARIANT_ENV)
            report_variant(measured, variant)


if __name__ == "__main__":
    main()
