"""Factory helpers for tests: records, ingest runs and quick queries."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, text

from papertide.catalog.records import Author, Listing, PaperRecord, Version
from papertide.catalog.store import BatchResult, CatalogWriter
from papertide.db.engine import write_transaction

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
NEW_YORK = ZoneInfo("America/New_York")


def fixture_path(*parts: str) -> Path:
    return FIXTURES.joinpath(*parts)


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(text(sql), params))


def make_record(arxiv_id: str = "2505.01234", **overrides: Any) -> PaperRecord:
    """A complete record with sensible values; override any field."""
    values: dict[str, Any] = {
        "source": "test",
        "position": f"test:{arxiv_id}",
        "version": 1,
        "title": f"A paper about {arxiv_id}",
        "abstract": "We study things and find results.",
        "authors": [Author("Ada Lovelace"), Author("Alan Turing")],
        "categories": ["cs.CL", "cs.LG"],
        "versions": [Version(1, datetime(2025, 5, 1, 17, 0, tzinfo=UTC))],
    }
    values.update(overrides)
    return PaperRecord(arxiv_id=arxiv_id, **values)


def listed(day: date, position: int = 0) -> Listing:
    return Listing(day=day, position=position)


def write_records(engine: Engine, *records: PaperRecord, **writer_args: Any) -> BatchResult:
    writer = CatalogWriter(tz=writer_args.pop("tz", NEW_YORK), **writer_args)
    with write_transaction(engine) as connection:
        return writer.write(connection, list(records))
