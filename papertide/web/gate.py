"""How many requests a web worker serves at once: as many as its connection pool can always
satisfy, the rest wait their turn (no error, no deadlock).

A request can hold two pooled connections at once: the one its route reads through (taken,
in a thread, before the route runs, and given back only after the response is sent) and one
that a write or the search service takes while the route still reads. Without a limit, a
burst of requests takes every connection in the pool for the first kind while their routes,
which need a second one, wait for a connection that never comes free: after the pool timeout
every one of them fails (measured with 200 clients: 30 s stalls and 500s on both engines).

:class:`RequestGate` lets at most :func:`request_slots` requests past at a time; with at most
that many requests each holding at most two connections, and :data:`RESERVED_CONNECTIONS`
left for the worker's background threads (search indexer, scheduler and its lease), one
request can always get its second connection, finish, and free both.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine
from sqlalchemy.pool import QueuePool
from starlette.types import ASGIApp, Receive, Scope, Send

RESERVED_CONNECTIONS = 4  # the search indexer, the scheduler, its lease, one spare
UNBOUNDED_SLOTS = 32  # a pool without a limit (another pool class): the thread pool's share
MIN_SLOTS = 1


def request_slots(engine: Engine) -> int:
    """Requests that may run at once with ``engine``'s pool: pool size + overflow, less the
    background reserve, less one (so a second connection is always left)."""
    pool = engine.pool
    if not isinstance(pool, QueuePool) or pool._max_overflow < 0:
        return UNBOUNDED_SLOTS
    capacity = pool.size() + pool._max_overflow
    return max(MIN_SLOTS, min(UNBOUNDED_SLOTS, capacity - RESERVED_CONNECTIONS - 1))


class RequestGate:
    """Pure ASGI middleware: at most ``slots`` HTTP requests inside at once, the others queue
    (first come, first served). A slot is held until the response is sent and the route's
    connection given back."""

    def __init__(self, app: ASGIApp, *, slots: int) -> None:
        self.app = app
        self.slots = slots
        self._semaphore: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._semaphore is None:  # made in the server's event loop
            self._semaphore = asyncio.Semaphore(self.slots)
        async with self._semaphore:
            await self.app(scope, receive, send)
