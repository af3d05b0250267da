"""Rate limits counted in the database (fixed windows), so they hold across web workers.

``enforce`` counts one attempt against each key (such as ``login:ip:203.0.113.7``) in its own
committed transaction, then raises RateLimited, with the seconds until the window ends, once a
limit is passed: the attempt is counted even though it is refused. Old windows are deleted as
new ones start. :class:`SharedCounter` counts reads the same way without a write per request.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from papertide.db.engine import write_transaction
from papertide.db.schema import rate_limits
from papertide.errors import RateLimited

log = logging.getLogger("papertide.ratelimit")


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``count`` attempts per ``seconds``; ``what`` names them in the message."""

    count: int
    seconds: int
    what: str


def enforce(engine: Engine, checks: list[tuple[str, Limit]], now: float | None = None) -> None:
    """Count one attempt for each (key, limit); RateLimited if any went over its limit."""
    with write_transaction(engine) as connection:
        refusals = [hit(connection, key, limit, now) for key, limit in checks]
    for refusal in refusals:
        if refusal is not None:
            raise refusal


def hit(
    connection: Connection, key: str, limit: Limit, now: float | None = None
) -> RateLimited | None:
    """Count one attempt for ``key``; the error to raise when it went over ``limit``."""
    now = time.time() if now is None else now
    window = int(now // limit.seconds * limit.seconds)
    count = add(connection, key, window, 1)
    if count <= limit.count:
        return None
    return refusal(limit, max(1, window + limit.seconds - int(now)))


def add(connection: Connection, key: str, window: int, hits: int) -> int:
    """Add ``hits`` to ``key``'s count in ``window``; the count after."""
    updated = connection.execute(
        update(rate_limits)
        .where(rate_limits.c.key == key, rate_limits.c.window_start == window)
        .values(count=rate_limits.c.count + hits)
    )
    if updated.rowcount == 0:
        try:
            with connection.begin_nested():
                connection.execute(
                    delete(rate_limits).where(
                        rate_limits.c.key == key, rate_limits.c.window_start < window
                    )
                )
                connection.execute(
                    insert(rate_limits).values(key=key, window_start=window, count=hits)
                )
        except IntegrityError:  # a concurrent first attempt created the row
            return add(connection, key, window, hits)
    count: int = connection.execute(
        select(rate_limits.c.count).where(
            rate_limits.c.key == key, rate_limits.c.window_start == window
        )
    ).scalar_one()
    return count


def refusal(limit: Limit, retry_after: int) -> RateLimited:
    minutes = (retry_after + 59) // 60
    return RateLimited(
        f"too many {limit.what}; try again in {minutes} minute{'s' if minutes != 1 else ''}",
        retry_after,
    )


class SharedCounter:
    """Fixed-window counts shared by every worker, without a database write per hit.

    For limits on reads (anonymous API requests per address): a hit is counted in this process's
    memory and decided at once against the last known total of every worker plus this worker's
    unflushed hits; a background thread adds the unflushed hits to ``rate_limits`` every
    ``flush_every`` seconds and reads the totals back. No request waits for the database (an
    import holding SQLite's write lock delays only the flush), and with N workers a client gets
    at most about ``(N - 1) x flush_every`` seconds' worth of requests past the limit.
    """

    def __init__(self, engine: Engine, seconds: int = 60, flush_every: float = 1.0) -> None:
        self.engine = engine
        self.seconds = seconds
        self.flush_every = flush_every
        self._lock = threading.Lock()
        # one flush at a time: a flush that finds nothing pending returns only after a flush
        # already carrying this worker's hits has read the totals back
        self._flushing = threading.Lock()
        self._window = 0
        self._pending: dict[str, int] = {}
        self._shared: dict[str, int] = {}
        self._flusher: threading.Thread | None = None
        self._failing = False  # the last flush failed (logged once per outage)

    def hit(self, key: str, limit: Limit, now: float | None = None) -> RateLimited | None:
        """Count one hit for ``key``; the error to raise when it went over ``limit``."""
        now = time.time() if now is None else now
        window = int(now // self.seconds * self.seconds)
        with self._lock:
            if window != self._window:
                self._window, self._pending, self._shared = window, {}, {}
            pending = self._pending[key] = self._pending.get(key, 0) + 1
            count = self._shared.get(key, 0) + pending
            if self._flusher is None:
                self._flusher = threading.Thread(
                    target=self._run, daemon=True, name="rate-limit-flush"
                )
                self._flusher.start()
        if count <= limit.count:
            return None
        return refusal(limit, max(1, window + self.seconds - int(now)))

    def flush(self) -> None:
        """Add the unflushed hits to the shared counts and read the totals back."""
        with self._flushing:
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            window, pending, self._pending = self._window, self._pending, {}
        if not pending:
            return
        try:
            with write_transaction(self.engine) as connection:
                totals = {key: add(connection, key, window, n) for key, n in pending.items()}
        except Exception as error:  # the database is busy or away: keep the hits a while
            if not self._failing:
                log.warning("could not share rate-limit counts (%s); retrying", error)
            self._failing = True
            current = int(time.time() // self.seconds * self.seconds)
            with self._lock:
                if self._window == window == current:  # a past window's hits no longer count
                    for key, n in pending.items():
                        self._pending[key] = self._pending.get(key, 0) + n
            return
        if self._failing:
            log.info("rate-limit counts shared again")
            self._failing = False
        with self._lock:
            if self._window == window:
                for key, total in totals.items():
                    self._shared[key] = max(self._shared.get(key, 0), total)

    def _run(self) -> None:
        idle = 0.0
        while idle < 60:  # the thread ends after a minute without hits; the next hit restarts it
            time.sleep(self.flush_every)
            busy = bool(self._pending)
            self.flush()
            idle = 0.0 if busy else idle + self.flush_every
        with self._lock:
            self._flusher = None
            restart = bool(self._pending)
        if restart:
            self.flush()
