"""The scale benchmark's HTTP part (see bench/scale.py): pages per second on one engine.

bench/api.py's server and load generator: ``papertide serve --workers N`` (no background
embedding, no scheduler) and a minimal asyncio HTTP/1.1 client in a process of its own keeping
``connections`` keep-alive connections busy, each URL set for ``seconds``. A set of several
URLs (paper pages, searches) is requested in turn on every connection. On PostgreSQL a thread
counts the server's connections to the database meanwhile (the most at once, and the most
running a query). After each worker count, the proportional memory (PSS) of the server's
process tree and of PostgreSQL's.
"""

from __future__ import annotations

import http.client
import importlib.util
import os
import socket
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from scale_pg import ConnectionSampler, tree_pss_mb

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("bench_api", HERE / "api.py")
assert _spec is not None and _spec.loader is not None
bench_api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_api)
bench_api.PORT = 8791  # type: ignore[attr-defined]  # not bench/api.py's, in case it runs beside this one
WARM_ROUNDS = 3


def targets(day: str, papers: list[str], queries: list[str]) -> dict[str, list[str]]:
    """Label -> the URLs requested in turn."""
    return {
        "front page /": ["/"],
        f"day page /papers/date/{day}": [f"/papers/date/{day}"],
        f"paper page ({len(papers)} papers)": [f"/papers/{a}" for a in papers],
        f"search page ({len(queries)} queries)": [
            "/search?" + urllib.parse.urlencode({"q": q}) for q in queries
        ],
        "/api/daily_papers?date=D": [f"/api/daily_papers?date={day}"],
        "/api/daily_papers (all days)": ["/api/daily_papers"],
    }


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def _get(path: str) -> str:
    """One request, retried once if the server drops it (a worker restarting)."""
    url = f"http://127.0.0.1:{bench_api.PORT}{path}"
    for attempt in range(3):
        try:
            with urllib.request.urlopen(url, timeout=120) as response:
                body: bytes = response.read()
                return body.decode("utf-8", errors="replace")
        except (ConnectionError, http.client.HTTPException):
            if attempt == 2:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


def warm_up(urls: dict[str, list[str]], workers: int) -> float:
    """Until no worker answers "starting up" (its model is still loading) to any of several
    concurrent searches; then every URL a few times. The seconds it took."""
    started = time.perf_counter()
    search = next(paths for label, paths in urls.items() if label.startswith("search"))
    with ThreadPoolExecutor(4 * workers) as pool:
        calm = 0
        while calm < 2 and time.perf_counter() - started < 300:
            pages = list(pool.map(_get, (search * (4 * workers))[: 4 * workers]))
            calm = calm + 1 if not any("starting up" in page for page in pages) else 0
            time.sleep(0.5)
        for paths in urls.values():
            list(pool.map(_get, (paths * WARM_ROUNDS * workers)[: max(len(paths), 4 * workers)]))
    return time.perf_counter() - started


def _workers_of(server: Any) -> set[int]:
    import psutil

    return {child.pid for child in psutil.Process(server.pid).children(recursive=True)}


def run_http(
    engine: str,
    url: str,
    urls: dict[str, list[str]],
    workers: list[int],
    seconds: float,
    connections: int,
    pg: tuple[str, int] | None = None,
) -> list[dict[str, Any]]:
    """One row per (workers, URL set); ``pg`` = (admin URL, postmaster pid) on PostgreSQL."""
    rows: list[dict[str, Any]] = []
    for count in workers:
        if not _port_free(bench_api.PORT):
            raise SystemExit(f"port {bench_api.PORT} is taken: another server runs there")
        started = time.perf_counter()
        server = bench_api.serve(url, count)
        start_s = time.perf_counter() - started
        try:
            warm_s = warm_up(urls, count)
            for label, paths in urls.items():
                before = _workers_of(server)
                sampler = ConnectionSampler(pg[0]).start() if pg else None
                figures = bench_api.measure(paths, seconds, connections)
                if sampler is not None:
                    peaks = sampler.stop()
                    figures["pg_connections"], figures["pg_active"], figures["pg_parallel"] = peaks
                figures["restarts"] = len(before - _workers_of(server))
                figures["load"] = os.getloadavg()[0]
                rows.append({"engine": engine, "workers": count, "target": label, **figures})
                notes = f"  restarted workers {figures['restarts']}" if figures["restarts"] else ""
                if pg:
                    notes += (
                        f"  pg connections {figures['pg_connections']} "
                        f"(active {figures['pg_active']}; parallel workers "
                        f"{figures['pg_parallel']})"
                    )
                print(
                    f"  {engine:<10} {count} worker(s)  {label:<36} {figures['rps']:8.1f} req/s  "
                    f"p50 {figures['p50']:7.1f} ms  p99 {figures['p99']:8.1f} ms  "
                    f"errors {figures['errors']}  load {figures['load']:.1f}{notes}",
                    flush=True,
                )
            memory, processes = tree_pss_mb(server.pid)
            pg_memory = tree_pss_mb(pg[1])[0] if pg else 0.0
            rows.append(
                {
                    "engine": engine,
                    "workers": count,
                    "target": "memory",
                    "server_pss_mb": memory,
                    "processes": processes,
                    "pg_pss_mb": pg_memory,
                    "start_s": start_s,
                    "warm_s": warm_s,
                }
            )
            print(
                f"  {engine:<10} {count} worker(s)  server PSS {memory:,.0f} MB in {processes} "
                f"processes"
                + (f"; PostgreSQL PSS {pg_memory:,.0f} MB" if pg else "")
                + f"; started in {start_s:.1f} s, warmed up (models loaded) in {warm_s:.1f} s",
                flush=True,
            )
        finally:
            server.terminate()
            server.wait(timeout=60)
    return rows
