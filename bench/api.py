"""API and feed throughput: req/s and latency percentiles with 1, 2 and 4 worker processes.

The catalog: the demo's 11,021 papers plus three copies under other arXiv ids (``40``, ``41``,
``42`` instead of the year), 44,084 papers on the same 492 list days, so a day's list holds about
four times the demo's. It is built once into ``--cache`` (SQLite). For each worker count
``papertide serve --workers N`` starts (no background embedding, no scheduler), each URL is
warmed up, then a load generator process keeps ``--connections`` keep-alive HTTP/1.1
connections busy for ``--seconds`` and records every request's latency. The generator is a
minimal asyncio client (no HTTP library) so that the client costs as little of the two cores as
possible; it shares the machine with the server, so on 2 cores the figures for 4 workers show
contention, not scaling.

The baseline, measured in the same run, is the HTML page of the same day (``/papers/date/D``),
the page the API and the feed stand beside.

Usage: python bench/api.py [--workers 1,2,4] [--seconds 10] [--connections 16] [--cache DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # measure this checkout
PORT = 8765
COPIES = ("40", "41", "42")


def build(cache: Path) -> tuple[str, str]:
    """The catalog database (built once); (database URL, the busiest list day)."""
    from zoneinfo import ZoneInfo

    from sqlalchemy import func, select

    from papertide.config import load_settings
    from papertide.db.engine import make_engine
    from papertide.db.schema import daily_entries
    from papertide.demo import DEMO_PATH
    from papertide.demo_load import load_demo
    from papertide.ingest.runner import IngestRun

    cache.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{cache / 'api.db'}"
    marker = cache / "built.json"
    if not marker.exists():
        started = time.perf_counter()
        settings = load_settings({"PAPERTIDE_DATABASE_URL": url})
        print(load_demo(settings, progress=False, vectors=False), flush=True)
        copies = []
        with gzip.open(DEMO_PATH, "rt", encoding="utf-8") as demo:
            lines = demo.read().splitlines()
        for prefix in COPIES:
            path = cache / f"copy-{prefix}.jsonl"
            with path.open("w", encoding="utf-8") as out:
                for line in lines:
                    item = json.loads(line)
                    item["arxiv_id"] = prefix + item["arxiv_id"][2:]
                    item.pop("id", None)
                    item.pop("url", None)
                    out.write(json.dumps(item) + "\n")
            copies.append(path)
        engine = make_engine(url)
        report = IngestRun(engine=engine, tz=ZoneInfo(settings.timezone)).run(copies)
        print(f"copies: {report.totals.new:,} papers in {report.seconds:.1f} s", flush=True)
        marker.write_text(json.dumps({"seconds": time.perf_counter() - started}))
    engine = make_engine(url)
    with engine.connect() as connection:
        papers_n = connection.execute(select(func.count()).select_from(daily_entries)).scalar()
        day, count = connection.execute(
            select(daily_entries.c.day, func.count())
            .group_by(daily_entries.c.day)
            .order_by(func.count().desc(), daily_entries.c.day.desc())
            .limit(1)
        ).one()
    print(f"catalog: {papers_n:,} list entries; busiest day {day} with {count} papers", flush=True)
    return url, day.isoformat()


# --- the load generator (a process of its own) ------------------------------------------------


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """Send one request on a keep-alive connection and read its whole response; its status."""
    writer.write(request)
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("the server closed the connection")
    length = 0
    chunked = False
    while True:
        header = await reader.readline()
        if header in (b"\r\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "transfer-encoding" and "chunked" in value:
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readline()).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(length)
    return int(status_line.split()[1])


async def _connection(
    paths: list[str], first: int, deadline: float, latencies: list[float], errors: list[int]
) -> None:
    """Requests on one keep-alive connection until ``deadline``: ``paths`` in turn, from the
    ``first``-th (so that connections spread over a mix of URLs). A connection the server
    drops (a worker restarted) counts as an error (status 0) and is opened again."""
    requests = [
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip\r\n\r\n".encode()
        for path in paths
    ]
    turn = first
    while time.perf_counter() < deadline:
        reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                status = await _exchange(reader, writer, requests[turn % len(requests)])
                turn += 1
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    errors.append(status)
        except (ConnectionError, asyncio.IncompleteReadError):
            errors.append(0)
        finally:
            writer.close()


def _load(paths: list[str], seconds: float, connections: int, out: Any) -> None:
    latencies: list[float] = []
    errors: list[int] = []

    async def main() -> None:
        deadline = time.perf_counter() + seconds
        await asyncio.gather(
            *(_connection(paths, n, deadline, latencies, errors) for n in range(connections))
        )

    started = time.perf_counter()
    asyncio.run(main())
    out.send((latencies, errors, time.perf_counter() - started))


def measure(path: str | list[str], seconds: float, connections: int) -> dict[str, Any]:
    """Load ``path`` (or several in turn) from ``connections`` connections for ``seconds``."""
    paths = [path] if isinstance(path, str) else path
    receive, send = multiprocessing.Pipe(duplex=False)
    worker = multiprocessing.Process(target=_load, args=(paths, seconds, connections, send))
    worker.start()
    latencies, errors, elapsed = receive.recv()
    worker.join()
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))]) * 1000

    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(ordered) * 1000,
        "p99": pct(0.99),
        "errors": len(errors),
    }


# --- the server --------------------------------------------------------------------------------


def serve(url: str, workers: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERTIDE_")}
    env.update(
        PAPERTIDE_DATABASE_URL=url,
        PAPERTIDE_EMBED_IN_BACKGROUND="false",
        PAPERTIDE_SCHEDULER="false",
        PAPERTIDE_LOG_LEVEL="warning",
    )
    command = [
        sys.executable,
        "-m",
        "papertide",
        "serve",
        "--port",
        str(PORT),
        "--workers",
        str(workers),
    ]
    server = subprocess.Popen(command, env=env, cwd=HERE.parent)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/", timeout=2).read()
            return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    sys.exit("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/papertide-bench-api"))
    parser.add_argument("--feed", default="/feeds/daily.atom?date={day}")
    parser.add_argument("--api", default="/api/daily_papers?date={day}&limit=50")
    args = parser.parse_args()
    url, day = build(args.cache)
    targets = {
        "HTML day page (baseline)": f"/papers/date/{day}",
        "GET /api/daily_papers": args.api.format(day=day),
        "Atom feed": args.feed.format(day=day),
    }
    rows = []
    for workers in [int(w) for w in args.workers.split(",")]:
        server = serve(url, workers)
        try:
            for label, path in targets.items():
                for _ in range(20):  # warm every worker's caches
                    urllib.request.urlopen(f"http://127.0.0.1:{PORT}{path}").read()
                figures = measure(path, args.seconds, args.connections)
                rows.append((workers, label, figures))
                print(
                    f"{workers} worker(s)  {label:<28} {figures['rps']:8.1f} req/s  "
                    f"p50 {figures['p50']:7.1f} ms  p99 {figures['p99']:7.1f} ms  "
                    f"errors {figures['errors']}",
                    flush=True,
                )
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(
        f"\nsummary ({os.cpu_count()} cores, {args.connections} connections, "
        f"{args.seconds:.0f} s each):"
    )
    for label in targets:
        line = ", ".join(
            f"{w} worker(s) {f['rps']:.0f} req/s p99 {f['p99']:.0f} ms"
            for w, name, f in rows
            if name == label
        )
        print(f"  {label}: {line}")


if __name__ == "__main__":
    main()
