"""The registry of input formats and detection of a file's format from its content."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Protocol
from zoneinfo import ZoneInfo

from papertide.catalog.records import PaperRecord, RecordError
from papertide.errors import InvalidInput
from papertide.ingest import abs as abs_files
from papertide.ingest import (
    arxiv_atom,
    arxiv_rss,
    hf_api,
    hf_jsonfeed,
    kaggle,
    oai_pmh,
)
from papertide.ingest.files import read_head


class Format(Protocol):
    FORMAT: str

    def sniff(self, head: bytes) -> bool: ...

    def parse(self, path: Path, tz: ZoneInfo) -> Iterator[PaperRecord | RecordError]: ...


# Detection order: the most specific shapes first.
_MODULES: tuple[ModuleType, ...] = (
    oai_pmh,
    arxiv_atom,
    arxiv_rss,
    abs_files,
    hf_jsonfeed,
    hf_api,
    kaggle,
)
FORMATS: dict[str, Format] = {module.FORMAT: module for module in _MODULES}


def format_named(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise InvalidInput(
            f"unknown format {name!r}; known formats: {', '.join(sorted(FORMATS))}"
        ) from None


def detect_format(path: Path) -> Format | None:
    """The format whose sniffer accepts the file's first bytes, or None."""
    head = read_head(path)
    for fmt in FORMATS.values():
        if fmt.sniff(head):
            return fmt
    return None
