"""Digest benchmark: composing and sending N personalised digests (digests/s, peak memory).

Setup: the demo catalog (``load_demo``: 11,021 real papers, lists, embeddings), upvotes drawn per
paper (seeded Zipf a=1.5, minus 1, capped at 5,000), then N confirmed weekly subscribers written
directly, sizes 5-15. The demo has no categories, so rules are keywords: title words of the
edition matching 3 papers to 40% of it. 35% include 1-4, 35% include 1-4 and exclude 1-2, 15%
only exclude 1-3, 15% have none (a draw passing under 12 edition papers is redrawn: no digest is
empty). ``--accounts`` (10%) have an account with 3-20 upvotes (a paper listed in the 8 weeks
before the period and its nearest neighbours), 0-5 seen edition papers and, for 30%, 1-2 topics:
they get "picked for you". 20% have last week's digest in the outbox (its top 10), half of them
also a daily one from the period's Wednesday (the edition's top 5, which so leave their digest).
Period: the ISO week of the demo's last list day, sent the Monday after.

Each step runs in a fresh process (peak MB: its maximum RSS, ~0.5 GB of it the model, which is
loaded before the clock starts):

- compose only (the 2-minute target): all subscribers in the sender's batches of 200: their rows,
  ``Selector.select``, ``DigestRenderer.message``; nothing stored;
- baseline (``--baseline-sample``): the same selections rendered without the per-paper block
  cache and serialised by the standard library's ``EmailMessage`` (what the cache and
  ``digest/mime.py`` replaced); and the two MIME writers alone on the same parts. Its digests/s
  is over a sample, so "x base" at large N also holds the amortised one-time costs (masks,
  candidates, templates); the render-only ratio on the same digests is in its notes;
- send: ``DigestSender.run([period])`` through ``SmtpMailer`` to an aiosmtpd server in another
  process that counts messages, recipients and Message-IDs (checked: each subscriber got one);
  "SMTP" is the time inside ``SmtpMailer.deliver``, the rest of ``deliver_s`` the sender's own;
- ``--profile K``: cProfile of a compose-only pass over the first K subscribers.

``--blas-threads 1`` runs those steps with numpy's BLAS on one thread (threadpoolctl): the small
matrix products of the "for you" ranking are much slower with the default thread pool when the
cores are busy (see bench/personal.py).

Usage: python bench/digest.py [--subscribers 100000] [--accounts 0.1] [--baseline-sample 5000]
       [--profile 2000] [--steps compose,baseline,send] [--blas-threads 1] [--database-url URL]
       [--keep DIR] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# Measure the checkout this script is in, whatever an editable install elsewhere points to.
sys.path.insert(0, str(HERE.parent))

from digest_setup import (  # noqa: E402
    HOST,
    MESSAGE_ID,
    Config,
    Result,
    context,
    load_model,
    peak_mb,
    rss_mb,
    step_setup,
)


def stdlib_mime(headers: list[tuple[str, str]], text: str, html: str) -> bytes:
    """What mime.multipart_alternative replaced: the standard library's EmailMessage."""
    from email.message import EmailMessage

    from papertide.digest.render import _POLICY

    message = EmailMessage(policy=_POLICY)
    for name, value in headers:
        message[name] = value
    message.set_content(text, cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    return message.as_bytes()


def use_mime(writer: Any) -> None:
    """Make the renderer serialise with ``writer`` (it calls the name it imported from mime)."""
    from papertide.digest import mime, render

    vars(render)["multipart_alternative"] = writer or mime.multipart_alternative


def compose_pass(cfg: Config, limit: int, baseline: bool = False) -> Result:
    """Compose the first ``limit`` subscribers' digests (nothing stored); with ``baseline`` each
    one a second time the naive way, then the two MIME writers alone."""
    from sqlalchemy import select

    from papertide.db.schema import subscriptions
    from papertide.digest import render
    from papertide.digest.edition import load_edition
    from papertide.digest.mime import multipart_alternative
    from papertide.digest.outbox import active_subscribers
    from papertide.digest.selection import Selector
    from papertide.digest.sender import BATCH
    from papertide.digest.subscriptions import from_row

    class Uncached(render.DigestRenderer):
        def _block(self, paper: Any) -> Any:
            self._blocks.clear()
            return super()._block(paper)

    settings, engine, period, now = context(cfg)
    model, model_s = load_model()
    out: Result = dict.fromkeys(("select_s", "render_s", "naive_s", "bytes", "composed"), 0)
    out.update(model_s=model_s, rss_before_mb=rss_mb(), empty=0, picks=0)
    renderer, naive = render.DigestRenderer(settings), Uncached(settings)
    kept: list[Any] = []
    started, cpu = time.perf_counter(), time.process_time()
    with engine.connect() as connection:
        edition = load_edition(connection, period)
        selector = Selector(edition, timezone=settings.timezone, embedder=lambda: model, now=now)
        wanted = select(subscriptions.c.id).where(*active_subscribers("weekly"))
        ids = list(connection.execute(wanted.order_by("id").limit(limit)).scalars())
        for start in range(0, len(ids), BATCH):
            batch = ids[start : start + BATCH]
            rows = connection.execute(select(subscriptions).where(subscriptions.c.id.in_(batch)))
            subs = sorted((from_row(r) for r in rows), key=lambda sub: sub.id)
            t0 = time.perf_counter()
            contents = selector.select(connection, subs)
            t1 = time.perf_counter()
            for content in contents:
                if content.empty:
                    out["empty"] += 1
                    continue
                mid = render.new_message_id(settings, period.key, content.subscription.id)
                out["bytes"] += len(renderer.message(content, mid, now))
                out["composed"] += 1
                out["picks"] += bool(content.picks)
            t2 = time.perf_counter()
            out["select_s"] += t1 - t0
            out["render_s"] += t2 - t1
            if baseline:
                use_mime(stdlib_mime)
                for content in contents:
                    if not content.empty:
                        naive.message(content, "<naive@localhost>", now)
                use_mime(None)
                out["naive_s"] += time.perf_counter() - t2
                kept += [c for c in contents if not c.empty][: 1000 - len(kept)]
    out.update(seconds=time.perf_counter() - started, cpu_s=time.process_time() - cpu)
    out["peak_mb"] = peak_mb()
    if baseline:  # the two MIME writers alone, on the very same headers and parts
        captured: list[tuple[Any, str, str]] = []

        def capture(headers: Any, text: str, html: str) -> bytes:
            captured.append((headers, text, html))
            return b""

        use_mime(capture)
        for content in kept:
            renderer.message(content, "<capture@localhost>", now)
        use_mime(None)
        for name, writer in (("mime_ms", multipart_alternative), ("stdlib_ms", stdlib_mime)):
            t0 = time.perf_counter()
            for headers, text, html in captured:
                writer(headers, text, html)
            out[name] = 1e3 * (time.perf_counter() - t0) / max(1, len(captured))
    return out


def smtp_server(port: int, pipe: Pipe) -> None:
    """A counting SMTP server (its own process), until ``stop`` comes on ``pipe``."""
    from aiosmtpd.controller import Controller

    class Counter:
        def __init__(self) -> None:
            self.messages = self.size = 0
            self.ids: set[bytes] = set()
            self.recipients: set[str] = set()

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            raw = envelope.original_content or b""
            found = MESSAGE_ID.search(raw)
            self.messages += 1
            self.size += len(raw)
            self.ids.add(found.group(1) if found else b"")
            self.recipients.update(envelope.rcpt_tos)
            return "250 OK"

    counter = Counter()
    controller = Controller(counter, hostname=HOST, port=port)
    controller.start()
    cpu = time.process_time()
    pipe.send("ready")
    pipe.recv()  # "stop"
    controller.stop()
    pipe.send({"messages": counter.messages, "bytes": counter.size, "ids": len(counter.ids),
               "recipients": len(counter.recipients),
               "cpu_s": time.process_time() - cpu})  # fmt: skip


class Timed:
    """A mailer that adds up the time spent inside the real one."""

    def __init__(self, mailer: Any) -> None:
        self.mailer, self.seconds = mailer, 0.0

    def deliver(self, sender: str, recipient: str, raw: bytes) -> None:
        started = time.perf_counter()
        try:
            self.mailer.deliver(sender, recipient, raw)
        finally:
            self.seconds += time.perf_counter() - started

    def close(self) -> None:
        self.mailer.close()


def step_send(cfg: Config) -> Result:
    import multiprocessing

    from papertide.digest.sender import DigestSender
    from papertide.mail import SmtpMailer

    settings, engine, period, now = context(cfg)
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = int(probe.getsockname()[1])
    spawn = multiprocessing.get_context("spawn")
    ours, theirs = spawn.Pipe()
    server = spawn.Process(target=smtp_server, args=(port, theirs))
    server.start()
    assert ours.recv() == "ready"
    model, model_s = load_model()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    mailer = Timed(SmtpMailer(HOST, port, security="none"))
    sender = DigestSender(engine, settings, mailer, embedder=lambda: model, now=now)
    started = time.perf_counter()
    report = sender.run([period])
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    ours.send("stop")
    got: Result = ours.recv()
    server.join()
    n = cfg["subscribers"]
    assert report.error is None and report.sent == n, f"sent {report.sent} of {n}: {report}"
    assert got["messages"] == got["ids"] == got["recipients"] == n, got
    return {"seconds": seconds, "sent": report.sent, "compose_s": report.compose_s,
            "deliver_s": report.deliver_s, "smtp_s": mailer.seconds, "model_s": model_s,
            "cpu_s": after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime,
            "peak_mb": peak_mb(), "server": got}  # fmt: skip


def step_profile(cfg: Config) -> Result:
    import cProfile
    import pstats

    compose_pass(cfg, 0)  # imports, templates and the model outside the profile
    profiler = cProfile.Profile()
    profiler.enable()
    result = compose_pass(cfg, cfg["profile"])
    profiler.disable()
    print(f"\ncProfile of compose only, first {result['composed']:,} subscribers:")
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("tottime").print_stats(16)
    stats.sort_stats("cumulative").print_stats(r"selection|render|mime|feed|interests|edition", 14)
    return result


STEPS = {
    "setup": step_setup,
    "compose": lambda cfg: compose_pass(cfg, cfg["subscribers"]),
    "baseline": lambda cfg: compose_pass(cfg, cfg["baseline_sample"], baseline=True),
    "profile": step_profile,
    "send": step_send,
}


def run(step: str, workdir: Path) -> Result:
    """``step`` in a fresh process; its figures (JSON in workdir)."""
    if subprocess.run([sys.executable, __file__, "--child", step, str(workdir)]).returncode:
        sys.exit(f"step {step} failed")
    result: Result = json.loads((workdir / f"{step}.json").read_text())
    return result


def child(step: str, workdir: Path) -> None:
    cfg = json.loads((workdir / "config.json").read_text())
    if cfg["blas_threads"] and step != "setup":
        import numpy  # noqa: F401  (threadpoolctl limits the libraries loaded so far)
        from threadpoolctl import threadpool_limits

        threadpool_limits(cfg["blas_threads"], user_api="blas")
    result = STEPS[step](cfg)
    (workdir / "config.json").write_text(json.dumps(cfg))  # setup adds the period
    (workdir / f"{step}.json").write_text(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--accounts", type=float, default=0.10, help="share with an account")
    parser.add_argument("--baseline-sample", type=int, default=5_000)
    parser.add_argument("--profile", type=int, default=0, help="cProfile a compose of K")
    parser.add_argument("--steps", default="compose,baseline,send")
    parser.add_argument("--database-url", default=None, help="an empty database (else SQLite)")
    parser.add_argument("--keep", type=Path, default=None, help="work here, and keep it")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--blas-threads", type=int, default=0, help="0: numpy's default")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    import sqlite3

    import papertide

    steps = {x.strip() for x in args.steps.split(",") if x.strip()}
    if steps - {"compose", "baseline", "send"}:
        parser.error(f"--steps: compose, baseline and/or send, not {args.steps!r}")
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="papertide-digest-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    url = args.database_url or f"sqlite:///{workdir / 'digest.db'}"
    n = args.subscribers
    cfg = {"url": url, "subscribers": n, "accounts": args.accounts, "seed": args.seed,
           "blas_threads": args.blas_threads, "baseline_sample": min(n, args.baseline_sample),
           "profile": min(n, args.profile)}  # fmt: skip
    (workdir / "config.json").write_text(json.dumps(cfg))
    print(
        f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; python "
        f"{sys.version.split()[0]}; sqlite {sqlite3.sqlite_version}; papertide from "
        f"{Path(papertide.__file__).parent}; database {url.rpartition('@')[2]}; BLAS threads "
        f"{args.blas_threads or 'default'}"
    )
    s = run("setup", workdir)
    print(
        f"setup: demo {s['demo_s']:.1f} s; {n:,} subscribers in {s['setup_s']:.1f} s, "
        f"{s['peak_mb']:.0f} MB peak. Period {s['period']}, {s['label']}: {s['edition']} papers; "
        f"{s['with_rules']:,} subscribers with keyword rules (of {s['vocabulary']} words); "
        f"{s['accounts']:,} accounts ({s['votes']:,} upvotes, {s['seen']:,} seen marks, "
        f"{s['topics']:,} with topics); {s['earlier']:,} outbox rows of earlier digests"
    )
    r = {step: run(step, workdir) for step in ("baseline", "compose") if step in steps}
    if cfg["profile"]:
        run("profile", workdir)
    if "send" in steps:
        r["send"] = run("send", workdir)
    b, c, d = r.get("baseline"), r.get("compose"), r.get("send")
    base = b["composed"] / (b["select_s"] + b["naive_s"]) if b else 0.0
    print(f"\n{'step':<36} {'digests':>8} {'seconds':>8} {'digests/s':>10} {'x base':>7} "
          f"{'peak MB':>8}  notes")  # fmt: skip

    def line(label: str, count: int, seconds: float, peak: float, notes: str) -> None:
        compose = label.startswith(("compose only", "sender: compose"))
        ratio = f"{count / seconds / base:.1f}x" if base and compose else ""
        print(f"{label:<36} {count:>8,} {seconds:>8.1f} {count / seconds:>10,.0f} {ratio:>7} "
              f"{peak:>8.0f}  {notes}")  # fmt: skip

    if b:
        line("baseline (no block cache, stdlib)", b["composed"], b["select_s"] + b["naive_s"],
             b["peak_mb"], f"select {b['select_s']:.1f} s + render {b['naive_s']:.1f} s "
             f"({1e3 * b['naive_s'] / b['composed']:.2f} ms/digest, "
             f"{b['naive_s'] / b['render_s']:.0f}x ours on the same digests); MIME alone "
             f"{b['stdlib_ms']:.2f} ms/digest, mime.py {b['mime_ms']:.2f}")  # fmt: skip
    if c:
        line("compose only (select + render)", c["composed"], c["seconds"], c["peak_mb"],
             f"select {c['select_s']:.1f} s + render {c['render_s']:.1f} s "
             f"({1e3 * c['render_s'] / c['composed']:.2f} ms/digest); CPU {c['cpu_s']:.1f} s; "
             f"{c['empty']} empty, {c['picks']:,} with picks; "
             f"{c['bytes'] / c['composed'] / 1e3:.1f} kB avg; RSS {c['rss_before_mb']:.0f} MB "
             "at start")  # fmt: skip
    if d:
        line("sender: compose (report.compose_s)", d["sent"], d["compose_s"], d["peak_mb"],
             "with zlib and storing the bytes in the outbox")  # fmt: skip
        line("compose + send, end to end", d["sent"], d["seconds"], d["peak_mb"],
             f"deliver_s {d['deliver_s']:.1f} (SMTP {d['smtp_s']:.1f}), plan etc. "
             f"{d['seconds'] - d['compose_s'] - d['deliver_s']:.1f} s; CPU {d['cpu_s']:.1f} s, "
             f"server {d['server']['cpu_s']:.1f} s; server got {d['server']['messages']:,}, "
             f"{d['server']['bytes'] / 1e6:,.0f} MB")  # fmt: skip
    model_s = max(x["model_s"] for x in r.values()) if r else 0.0
    print(f"\nsummary: {n:,} subscribers, {os.cpu_count()} cores, load now "
          f"{os.getloadavg()[0]:.1f}; loading the model ({model_s:.1f} s) not counted")  # fmt: skip
    if c:
        rate, at = c["composed"] / c["seconds"], "in" if n >= 100_000 else "at this rate in"
        print(f"  compose only: {rate:,.0f} digests/s, peak {c['peak_mb']:.0f} MB; 100k {at} "
              f"{1e5 / rate:.0f} s: 2-minute target {'met' if 1e5 / rate <= 120 else 'NOT met'}"
              + (f"; {rate / base:.1f}x the baseline's {base:,.0f}/s" if base else ""))  # fmt: skip
    if d:
        print(f"  compose + send: {d['sent'] / d['seconds']:,.0f} messages/s end to end "
              f"({d['seconds']:.0f} s), sender peak {d['peak_mb']:.0f} MB")  # fmt: skip
    if args.keep is None:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
