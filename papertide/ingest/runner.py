"""The ingest runner: files in, catalog rows out, and a report of what happened.

Paths are files or directories (walked recursively, hidden files skipped). Each file's format is
detected from its content unless one is named. Records stream through in batches; each batch is
one transaction, so a kill leaves whole papers only and a rerun picks up where the data changed.
A malformed record is reported with its position and skipped; the run goes on.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, StatementError

from papertide.catalog.records import PaperRecord, RecordError
from papertide.catalog.store import BatchResult, CatalogWriter
from papertide.db.engine import write_transaction
from papertide.errors import InvalidInput
from papertide.ingest.files import watch_reads
from papertide.ingest.formats import Format, detect_format, format_named

log = logging.getLogger(__name__)
BATCH_SIZE = 2000

# Exit codes of `papertide ingest` (documented in docs/cli.md).
EXIT_OK = 0
EXIT_RECORD_ERRORS = 1
EXIT_NOTHING_NEW = 3


@dataclass
class IngestReport:
    files: int = 0
    skipped_files: list[str] = field(default_factory=list)
    formats: Counter[str] = field(default_factory=Counter)
    totals: BatchResult = field(default_factory=BatchResult)
    seconds: float = 0.0

    @property
    def records(self) -> int:
        t = self.totals
        return t.new + t.updated + t.unchanged

    @property
    def errors(self) -> list[RecordError]:
        return self.totals.errors

    @property
    def exit_code(self) -> int:
        if self.errors:
            return EXIT_RECORD_ERRORS
        if not (self.totals.new or self.totals.updated or self.totals.listings_added):
            return EXIT_NOTHING_NEW
        return EXIT_OK


class Progress:
    """What the runner tells a progress display; the default tells nothing."""

    def start(self, total_bytes: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def records(self, count: int) -> None: ...

    def file_done(self, path: Path, size: int) -> None: ...

    def stop(self) -> None: ...


def iter_input_files(paths: Sequence[Path]) -> Iterator[tuple[Path, bool]]:
    """(file, named explicitly) for each path; directories walked recursively in name order."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                relative = child.relative_to(path).parts
                if child.is_file() and not any(part.startswith(".") for part in relative):
                    yield child, False
        elif path.is_file():
            yield path, True
        else:
            raise InvalidInput(f"cannot ingest {path}: no such file or directory")


@dataclass
class IngestRun:
    engine: Engine
    tz: ZoneInfo
    auto_follow: frozenset[str] = frozenset()
    format_name: str | None = None
    progress: Progress = field(default_factory=Progress)
    batch_size: int = BATCH_SIZE

    def run(self, paths: Sequence[Path]) -> IngestReport:
        report = IngestReport()
        started = time.perf_counter()
        files = list(iter_input_files(paths))
        self.progress.start(sum(path.stat().st_size for path, _ in files))
        writer = CatalogWriter(tz=self.tz, auto_follow=self.auto_follow)
        try:
            with watch_reads(self.progress.advance):
                self._write_all(writer, self._records(files, report), report)
        finally:
            self.progress.stop()
        report.seconds = time.perf_counter() - started
        return report

    def run_records(self, records: Iterable[PaperRecord | RecordError]) -> IngestReport:
        """Ingest records that did not come from files (live fetchers, submissions)."""
        report = IngestReport()
        started = time.perf_counter()
        writer = CatalogWriter(tz=self.tz, auto_follow=self.auto_follow)
        self._write_all(writer, iter(records), report)
        report.seconds = time.perf_counter() - started
        return report

    def _records(
        self, files: list[tuple[Path, bool]], report: IngestReport
    ) -> Iterator[PaperRecord | RecordError]:
        for path, explicit in files:
            fmt = self._format_of(path, explicit, report)
            if fmt is not None:
                report.files += 1
                report.formats[fmt.FORMAT] += 1
                try:
                    yield from fmt.parse(path, self.tz)
                except OSError as exc:
                    yield RecordError(str(path), f"cannot read file: {exc.strerror or exc}")
            self.progress.file_done(path, path.stat().st_size)

    def _format_of(self, path: Path, explicit: bool, report: IngestReport) -> Format | None:
        if self.format_name:
            return format_named(self.format_name)
        fmt = detect_format(path)
        if fmt is None:
            if explicit:
                report.totals.errors.append(
                    RecordError(str(path), "unknown format (use --format to name it)")
                )
            else:
                report.skipped_files.append(str(path))
        return fmt

    def _write_all(
        self,
        writer: CatalogWriter,
        items: Iterator[PaperRecord | RecordError],
        report: IngestReport,
    ) -> None:
        batch: list[PaperRecord] = []
        for item in items:
            if isinstance(item, RecordError):
                report.totals.errors.append(item)
                continue
            batch.append(item)
            if len(batch) >= self.batch_size:
                self._write_batch(writer, batch, report)
                batch = []
        if batch:
            self._write_batch(writer, batch, report)

    def _write_batch(
        self, writer: CatalogWriter, batch: list[PaperRecord], report: IngestReport
    ) -> None:
        try:
            result = _write(self.engine, writer, batch)
        except (IntegrityError, StatementError) as exc:
            # One record the database refuses must not sink its neighbours: retry one by one.
            log.warning("batch refused (%s); retrying record by record", exc.__class__.__name__)
            result = BatchResult()
            for record in batch:
                try:
                    result.add(_write(self.engine, writer, [record]))
                except (IntegrityError, StatementError) as single:
                    reason = str(getattr(single, "orig", single)).splitlines()[0]
                    result.errors.append(
                        RecordError(record.position or record.arxiv_id, f"not stored: {reason}")
                    )
        report.totals.add(result)
        self.progress.records(len(batch))


def _write(engine: Engine, writer: CatalogWriter, batch: list[PaperRecord]) -> BatchResult:
    with write_transaction(engine) as connection:
        return writer.write(connection, batch)
