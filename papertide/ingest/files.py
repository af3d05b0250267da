"""Opening input files the same way for every format: plain or gzip, streamed, never whole.

While a run is being watched (see :func:`watch_reads`), every byte read from disk is reported,
so the progress bar shows rate and ETA against the files' sizes, compressed or not.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"
# What reading a damaged or truncated gzip file raises, besides OSError (BadGzipFile is one).
DAMAGED_GZIP = (EOFError, zlib.error, gzip.BadGzipFile)
SNIFF_BYTES = 8192
_BUFFER = 1 << 20

_on_read: ContextVar[Callable[[int], None] | None] = ContextVar("_on_read", default=None)


class _CountingReader(io.RawIOBase):
    """A raw file that reports how many bytes each read returned."""

    def __init__(self, raw: BinaryIO, report: Callable[[int], None]) -> None:
        self._raw = raw
        self._report = report

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        if count:
            self._report(count)
        return int(count or 0)

    def close(self) -> None:
        self._raw.close()
        super().close()


@contextmanager
def watch_reads(report: Callable[[int], None]) -> Iterator[None]:
    """Within the block, files opened by open_binary report the bytes read from disk."""
    token = _on_read.set(report)
    try:
        yield
    finally:
        _on_read.reset(token)


def _open_raw(path: Path) -> BinaryIO:
    report = _on_read.get()
    handle: BinaryIO = path.open("rb", buffering=0)
    if report is not None:
        handle = _CountingReader(handle, report)  # type: ignore[assignment]
    return io.BufferedReader(handle, buffer_size=_BUFFER)  # type: ignore[type-var]


def open_binary(path: Path) -> BinaryIO:
    """Open ``path`` for streaming reads, decompressing gzip transparently (by content)."""
    with path.open("rb") as probe:
        compressed = probe.read(2) == GZIP_MAGIC
    handle = _open_raw(path)
    if compressed:
        unzipped = gzip.GzipFile(fileobj=handle, mode="rb")
        unzipped.myfileobj = handle  # type: ignore[assignment]  # closed with the GzipFile
        return unzipped  # type: ignore[return-value]
    return handle


def read_head(path: Path, size: int = SNIFF_BYTES) -> bytes:
    """The first ``size`` bytes of the (decompressed) content, for format detection; of a
    truncated or damaged gzip file, what could be decompressed (perhaps nothing)."""
    with path.open("rb") as handle:
        start = handle.read(size)
    if start[:2] != GZIP_MAGIC:
        return start
    chunks: list[bytes] = []
    have = 0
    try:
        with gzip.open(path, "rb") as unzipped:
            while have < size and (chunk := unzipped.read1(size - have)):
                chunks.append(chunk)
                have += len(chunk)
    except DAMAGED_GZIP:
        pass  # the parser reports the damage, at its place
    return b"".join(chunks)
