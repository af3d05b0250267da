"""Liveness and readiness.

``/healthz`` answers ``{"status": "ok"}`` whenever the process serves; it touches nothing.
``/readyz`` checks, in one short-lived thread, that the database answers (``SELECT 1``) and that
its schema is at the Alembic head (one read of ``alembic_version``; the head is read from the
migration scripts once per process). A check that has not answered within
:data:`READY_TIMEOUT_S` counts as failed, so a hung database gives a 503, not a hung probe; at most
one check runs at a time per process (later probes wait for the one in flight), so a hung
database does not pile up threads.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from papertide.db.migrate import MIGRATIONS_DIR

log = logging.getLogger("papertide.health")

READY_TIMEOUT_S = 2.0


@dataclass
class Readiness:
    """The outcome of the checks: ``checks`` maps each check to its JSON-ready result."""

    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        return [name for name, check in self.checks.items() if check["status"] == "failed"]

    @property
    def ready(self) -> bool:
        return all(check["status"] == "ok" for check in self.checks.values())

    def body(self) -> dict[str, Any]:
        if self.ready:
            return {"status": "ok", "checks": self.checks}
        return {"status": "not_ready", "failed": self.failed, "checks": self.checks}


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS_DIR))


@cache
def schema_head() -> str:
    head = _scripts().get_current_head()
    assert head is not None, "no migrations found"
    return head


def _pending(current: str | None) -> list[str]:
    return [rev.revision for rev in _scripts().iterate_revisions(schema_head(), current)][::-1]


def _current_revision(connection: Connection) -> str | None:
    """What ``alembic_version`` says (read directly: Alembic's MigrationContext logs two lines
    each time it is made, which every probe would add to the log)."""
    if not connection.dialect.has_table(connection, "alembic_version"):
        return None
    versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return str(versions[0]) if len(versions) == 1 else None


def check_database(engine: Engine) -> Readiness:
    """Both checks, synchronously (the caller bounds the time)."""
    result = Readiness()
    started = time.perf_counter()
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            answered = time.perf_counter()
            result.checks["database"] = {
                "status": "ok",
                "ms": round((answered - started) * 1000, 1),
            }
            current = _current_revision(connection)
    except Exception as exc:
        failed = "migrations" if "database" in result.checks else "database"
        log.warning("readiness: the %s check failed: %s", failed, exc)
        result.checks[failed] = {
            "status": "failed",
            "message": f"the database did not answer ({type(exc).__name__}; see the log)",
        }
        if failed == "database":
            result.checks["migrations"] = {"status": "unknown", "message": "no database"}
        return result
    head = schema_head()
    if current == head:
        result.checks["migrations"] = {"status": "ok", "revision": current}
    else:
        pending = _pending(current)
        result.checks["migrations"] = {
            "status": "failed",
            "current": current,
            "head": head,
            "pending": pending,
            "message": f"{len(pending)} pending migration(s); run `papertide db migrate`",
        }
    return result


class ReadinessProbe:
    """Runs :func:`check_database` in a daemon thread, one at a time, within a time limit."""

    def __init__(self, timeout: float = READY_TIMEOUT_S) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._running: Future[Readiness] | None = None
        self._was_ready: bool | None = None

    def _start(self, engine: Engine) -> Future[Readiness]:
        with self._lock:
            if self._running is not None and not self._running.done():
                return self._running
            future: Future[Readiness] = Future()
            future.set_running_or_notify_cancel()  # a timed-out waiter cannot cancel it

            def run() -> None:
                try:
                    future.set_result(check_database(engine))
                except BaseException as exc:  # pragma: no cover - check_database catches
                    future.set_exception(exc)

            threading.Thread(target=run, name="readiness", daemon=True).start()
            self._running = future
            return future

    async def check(self, engine: Engine) -> Readiness:
        future = self._start(engine)
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
        except TimeoutError:
            result = Readiness()
            result.checks["database"] = {
                "status": "failed",
                "message": f"the database did not answer within {self.timeout:g} s",
            }
            result.checks["migrations"] = {"status": "unknown", "message": "no database"}
        self._note(result)
        return result

    def _note(self, result: Readiness) -> None:
        """Log changes of state only: a failing probe every few seconds is one line, not many."""
        if result.ready == self._was_ready:
            return
        if result.ready:
            log.info("ready: the database answers and its schema is current")
        else:
            log.warning("not ready: %s", ", ".join(result.failed), extra={"checks": result.checks})
        self._was_ready = result.ready
