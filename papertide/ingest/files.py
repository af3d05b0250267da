"""Opening input files the same way for every format: plain or gzip, streamed, never whole."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"
SNIFF_BYTES = 8192


def open_binary(path: Path) -> BinaryIO:
    """Open ``path`` for streaming reads, decompressing gzip transparently (by content)."""
    handle = path.open("rb")
    if handle.read(2) == GZIP_MAGIC:
        handle.close()
        return gzip.open(path, "rb")  # type: ignore[return-value]
    handle.seek(0)
    return handle


def read_head(path: Path, size: int = SNIFF_BYTES) -> bytes:
    """The first ``size`` bytes of the (decompressed) content, for format detection."""
    with open_binary(path) as handle:
        return handle.read(size)
