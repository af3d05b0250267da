"""Parsing in a thread of its own, a bounded distance ahead of the writer.

The SQLite and PostgreSQL drivers release the GIL while the database works, so a parser thread
and the writing thread overlap on two cores. The items keep their order: iterating a
:class:`ParseAhead` gives exactly what the generator yielded, in chunks passed through a queue a
few chunks deep (memory stays bounded whatever the input size). Bytes read by the parser are
reported as progress items at their place in the stream, so the consumer, the only thread that
touches reports and progress displays, sees them in order too.

An exception raised by the generator is raised to the consumer after the items before it. When
the consumer stops (an error while writing, Ctrl-C), leaving the ``with`` block stops the thread
and closes the generator, so its files are closed before the run returns.

While a ParseAhead runs, two interpreter settings change (restored after the last one ends):

- the GIL switch interval drops from 5 ms to 0.2 ms. The writer hands the GIL over at every
  call into the database; at the default interval it then waits up to 5 ms, thousands of times
  a run, to get it back from the parser thread (measured: slower than no thread at all);
- the cyclic garbage collector's first threshold rises from 700 to 200,000 allocations. A batch
  keeps ~100k objects alive until it is written, so the default collects (and promotes, and
  rescans in full) them over and over: about a quarter of a run. Records hold no reference
  cycles; refcounting frees them.
"""

from __future__ import annotations

import gc
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Generic, TypeVar

from papertide.ingest.files import watch_reads

T = TypeVar("T")
CHUNK = 256  # items per hand-over
DEPTH = 8  # chunks parsed ahead at most
_POLL_S = 0.05  # how often a blocked producer checks whether the consumer has stopped
SWITCH_INTERVAL_S = 0.0002
GC_THRESHOLD0 = 200_000


@dataclass(frozen=True, slots=True)
class _End:
    failure: BaseException | None


class ParseAhead(Generic[T]):
    """``with ParseAhead(make_items, on_read) as items: for item in items: ...``

    ``make_items`` is called in the thread; ``on_read(n)`` (files opened by
    :func:`papertide.ingest.files.open_binary` read ``n`` bytes) becomes an item, a callable
    ``() -> None`` the consumer calls when it reaches it.
    """

    def __init__(
        self,
        make_items: Callable[[], Iterator[T | Callable[[], None]]],
        on_read: Callable[[int], None],
    ) -> None:
        self._make_items = make_items
        self._on_read = on_read
        self._queue: queue.Queue[list[T | Callable[[], None]] | _End] = queue.Queue(DEPTH)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="papertide-parse", daemon=True)

    def __enter__(self) -> Iterator[T | Callable[[], None]]:
        _tuning.enter()
        try:
            self._thread.start()
        except BaseException:
            _tuning.exit()
            raise
        return self._consume()

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        try:
            self._thread.join()
        finally:
            _tuning.exit()

    def _consume(self) -> Iterator[T | Callable[[], None]]:
        while True:
            entry = self._queue.get()
            if isinstance(entry, _End):
                if entry.failure is not None:
                    raise entry.failure
                return
            yield from entry

    def _produce(self) -> None:
        chunk: list[T | Callable[[], None]] = []

        def read(nbytes: int) -> None:
            chunk.append(partial(self._on_read, nbytes))

        failure: BaseException | None = None
        try:
            with watch_reads(read):
                items = self._make_items()
                try:
                    for item in items:
                        chunk.append(item)
                        if len(chunk) >= CHUNK:
                            full, chunk = chunk, []
                            if not self._put(full):
                                return
                finally:
                    close = getattr(items, "close", None)
                    if close is not None:
                        close()
        except BaseException as exc:  # handed over, raised in the consumer
            failure = exc
        if chunk and not self._put(chunk):
            return
        self._put(_End(failure))

    def _put(self, entry: list[T | Callable[[], None]] | _End) -> bool:
        """Queue ``entry``; False once the consumer has stopped."""
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False


class _Tuning:
    """The interpreter settings for running ParseAheads; counted, so overlapping runs restore
    the settings found before the first one, once the last one ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._saved: tuple[float, tuple[int, ...]] | None = None

    def enter(self) -> None:
        with self._lock:
            if self._active == 0:
                interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
                self._saved = (interval, thresholds)
                sys.setswitchinterval(min(interval, SWITCH_INTERVAL_S))
                if thresholds[0]:  # 0: collection is off, leave it so
                    gc.set_threshold(max(thresholds[0], GC_THRESHOLD0), *thresholds[1:])
            self._active += 1

    def exit(self) -> None:
        with self._lock:
            self._active -= 1
            if self._active == 0 and self._saved is not None:
                interval, thresholds = self._saved
                sys.setswitchinterval(interval)
                gc.set_threshold(*thresholds)
                self._saved = None


_tuning = _Tuning()
