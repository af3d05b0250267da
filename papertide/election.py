"""Electing one leader among the processes that share a database (the scheduler's election).

Every web worker runs a scheduler thread; exactly one of them may run jobs at a time.

* **PostgreSQL**: the leader holds a session advisory lock (:class:`papertide.jobs.JobLock`). The
  server releases it the moment the leader's connection dies, so a stand-by takes over at its next
  poll. The leader also writes its name into the ``leases`` row, for status pages and metrics.
* **SQLite**: there is no server to notice a dead process, so the leader holds a **lease row**
  with an expiry, renewed every third of its length (:class:`Lease`). A stand-by takes the row
  once it has expired (the leader died, hung, or lost its disk), adding 1 to the row's ``token``,
  a fencing token: work the old leader might still finish is guarded by its own job locks and the
  exactly-once outbox, and the token tells in logs which term did what. A leader that stops
  cleanly expires its own lease, so the next poll takes over at once.
* **In-memory SQLite** (tests): a process-local lock.

Each process names itself ``host:pid:random``, so a restarted process never mistakes an old
lease for its own.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.engine import make_url

from papertide.db.engine import is_sqlite, write_transaction
from papertide.db.schema import leases

log = logging.getLogger("papertide.election")

Clock = Callable[[], datetime]


def process_name() -> str:
    """This process's name in the ``leases`` table: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _now() -> datetime:
    return datetime.now(UTC)


class Lease:
    """A row in ``leases`` that one holder at a time owns until ``expires_at``."""

    def __init__(
        self,
        engine: Engine,
        name: str,
        ttl: float = 30.0,
        holder: str | None = None,
        clock: Clock = _now,
    ) -> None:
        self.engine = engine
        self.name = name
        self.ttl = timedelta(seconds=ttl)
        self.holder = holder or process_name()
        self.clock = clock
        self.token: int | None = None  # the fencing token of the term we hold, if any

    @property
    def held(self) -> bool:
        return self.token is not None

    def acquire(self, force: bool = False) -> bool:
        """Renew our lease, or take it if free or expired (or always, with ``force``)."""
        now = self.clock()
        values = {"renewed_at": now, "expires_at": now + self.ttl}
        with write_transaction(self.engine) as connection:
            row = connection.execute(
                select(leases.c.holder, leases.c.token, leases.c.expires_at).where(
                    leases.c.name == self.name
                )
            ).first()
            where = leases.c.name == self.name
            if row is None:
                token = 1
                connection.execute(
                    insert(leases).values(
                        name=self.name, holder=self.holder, token=token, acquired_at=now, **values
                    )
                )
            elif row.holder == self.holder and row.expires_at > now:
                token = row.token
                connection.execute(update(leases).where(where).values(**values))
            elif force or row.expires_at <= now:
                token = row.token + 1
                connection.execute(
                    update(leases)
                    .where(where)
                    .values(holder=self.holder, token=token, acquired_at=now, **values)
                )
                if row.holder != self.holder:
                    log.info("took the %s lease from %s (term %d)", self.name, row.holder, token)
            else:
                self.token = None
                return False
        self.token = token
        return True

    def release(self) -> None:
        """Expire our lease now, so that a stand-by takes over at its next poll."""
        if self.token is None:
            return
        self.token = None
        now = self.clock()
        with write_transaction(self.engine) as connection:
            connection.execute(
                update(leases)
                .where(leases.c.name == self.name, leases.c.holder == self.holder)
                .values(expires_at=now, renewed_at=now)
            )


class Leadership:
    """Whether this process leads ``role``: a lease on SQLite, an advisory lock on PostgreSQL.

    ``acquire`` both takes and keeps leadership: call it every :attr:`poll` seconds. Thread-safe.
    """

    def __init__(self, engine: Engine, role: str, ttl: float = 30.0) -> None:
        from papertide.jobs import JobLock  # jobs imports this module

        self.engine = engine
        self.role = role
        self.ttl = ttl
        self.lease = Lease(engine, role, ttl)
        self._mutex = threading.Lock()
        database = make_url(str(engine.url)).database if is_sqlite(engine) else None
        in_memory = is_sqlite(engine) and (not database or database == ":memory:")
        # The lease row elects on a SQLite file; the advisory lock (or, in memory, a
        # process-local lock) elects elsewhere, and the row only records the leader.
        self._lock = JobLock(engine, role) if in_memory or not is_sqlite(engine) else None
        self._recorded = False  # with the lock: acquire() has also written the record since

    @property
    def poll(self) -> float:
        """How often to call :meth:`acquire`: a third of the lease, so one slow write is fine."""
        return self.ttl / 3

    @property
    def held(self) -> bool:
        if self._lock is not None:  # only once the record shows it too
            return self._recorded and self._lock.held
        return self.lease.held

    @property
    def holder(self) -> str:
        return self.lease.holder

    def acquire(self) -> bool:
        with self._mutex:
            if self._lock is None:
                return self.lease.acquire()
            had = self._lock.held
            if not self._lock.acquire():
                self._recorded = False
                return False
            try:  # keep the record fresh; the lock, not the row, decides
                self.lease.acquire(force=not had)
            except Exception:
                log.warning("could not record the %s leader", self.role, exc_info=True)
            self._recorded = True
            return True

    def release(self) -> None:
        with self._mutex:
            try:
                self.lease.release()
            except Exception:
                log.warning("could not expire the %s lease", self.role, exc_info=True)
            if self._lock is not None:
                self._recorded = False
                self._lock.release()
