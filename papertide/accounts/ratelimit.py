"""Rate limits counted in the database (fixed windows), so they hold across web workers.

``enforce`` counts one attempt against each key (such as ``login:ip:203.0.113.7``) in its own
committed transaction, then raises RateLimited, with the seconds until the window ends, once a
limit is passed: the attempt is counted even though it is refused. Old windows are deleted as
new ones start.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from papertide.db.engine import write_transaction
from papertide.db.schema import rate_limits
from papertide.errors import RateLimited


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
    retry_after = max(1, window + limit.seconds - int(now))
    updated = connection.execute(
        update(rate_limits)
        .where(rate_limits.c.key == key, rate_limits.c.window_start == window)
        .values(count=rate_limits.c.count + 1)
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
                    insert(rate_limits).values(key=key, window_start=window, count=1)
                )
        except IntegrityError:  # a concurrent first attempt created the row
            return hit(connection, key, limit, now)
    count = connection.execute(
        select(rate_limits.c.count).where(
            rate_limits.c.key == key, rate_limits.c.window_start == window
        )
    ).scalar_one()
    if count <= limit.count:
        return None
    minutes = (retry_after + 59) // 60
    return RateLimited(
        f"too many {limit.what}; try again in {minutes} minute{'s' if minutes != 1 else ''}",
        retry_after,
    )
