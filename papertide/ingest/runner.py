"""The ingest runner: files in, catalog rows out, and a report of what happened.

Paths are files or directories (walked recursively, hidden files skipped). Each file's format is
detected from its content unless one is named. Records stream through in batches; each batch is
one transaction, so a kill leaves whole papers only and a rerun picks up where the data changed.
A malformed record is reported with its position and skipped; the run goes on.

Files are parsed in a thread of their own (:mod:`papertide.ingest.parse_ahead`), which also
merges records as new papers ahead of the writer while most of them are; this thread writes.
Everything the report and the progress display are told happens here, in stream order.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError, StatementError

from papertide.catalog.records import PaperRecord, RecordError
from papertide.catalog.rows import SQLITE_VALUES, AsNew, ValueForm, merge_as_new, record_of
from papertide.catalog.store import BatchResult, CatalogWriter
from papertide.db.engine import bulk_writer, is_sqlite
from papertide.db.failures import unavailable
from papertide.db.statistics import refresh_statistics
from papertide.errors import InvalidInput
from papertide.ingest.formats import detect_format, format_named
from papertide.ingest.parse_ahead import ParseAhead

log = logging.getLogger(__name__)
BATCH_SIZE = 2000
# What the writer consumes: records, errors, and report/progress updates to apply in order.
Item = PaperRecord | AsNew | RecordError | Callable[[], None]

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
        # Rows computed ahead are in SQLite's stored form; PostgreSQL gets them from Core.
        ahead = _Lookahead(form=SQLITE_VALUES if is_sqlite(self.engine) else None)
        try:
            # Files are parsed (and their records merged as new papers) in a thread of their
            # own while this one writes.
            parsing: ParseAhead[PaperRecord | AsNew | RecordError] = ParseAhead(
                partial(self._items, files, report, ahead), self.progress.advance
            )
            with parsing as items:
                self._write_all(writer, items, report, ahead)
        finally:
            self.progress.stop()
        if report.totals.new or report.totals.listings_added:
            refresh_statistics(self.engine)  # an import can change the tables' shape wholly
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

    def _items(
        self, files: list[tuple[Path, bool]], report: IngestReport, ahead: _Lookahead
    ) -> Iterator[Item]:
        """Records and errors of every file, in order, with what the report and the progress
        display are told between them (as callables: they run in the writing thread)."""
        for path, explicit in files:
            fmt = format_named(self.format_name) if self.format_name else detect_format(path)
            if fmt is None:
                if explicit:
                    yield RecordError(str(path), "unknown format (use --format to name it)")
                else:
                    yield partial(report.skipped_files.append, str(path))
            else:
                yield partial(_count_file, report, fmt.FORMAT)
                try:
                    for item in fmt.parse(path, self.tz):
                        if ahead.merge and isinstance(item, PaperRecord) and item.title:
                            yield merge_as_new(item, ahead.form)
                        else:
                            yield item
                except OSError as exc:
                    yield RecordError(str(path), f"cannot read file: {exc.strerror or exc}")
            yield partial(self.progress.file_done, path, path.stat().st_size)

    def _write_all(
        self,
        writer: CatalogWriter,
        items: Iterator[Item],
        report: IngestReport,
        ahead: _Lookahead | None = None,
    ) -> None:
        with bulk_writer(self.engine) as connection:
            batch: list[PaperRecord | AsNew] = []
            for item in items:
                if isinstance(item, PaperRecord | AsNew):
                    batch.append(item)
                    if len(batch) >= self.batch_size:
                        self._write_batch(connection, writer, batch, report, ahead)
                        batch = []
                elif isinstance(item, RecordError):
                    report.totals.errors.append(item)
                else:
                    item()
            if batch:
                self._write_batch(connection, writer, batch, report, ahead)

    def _write_batch(
        self,
        connection: Connection,
        writer: CatalogWriter,
        batch: list[PaperRecord | AsNew],
        report: IngestReport,
        ahead: _Lookahead | None,
    ) -> None:
        try:
            result = _write(connection, writer, batch)
        except (IntegrityError, StatementError) as exc:
            if unavailable(exc) is not None:
                raise  # a full disk, a read-only database: no record is to blame, stop here
            # One record the database refuses must not sink its neighbours: retry one by one.
            log.warning("batch refused (%s); retrying record by record", exc.__class__.__name__)
            result = BatchResult()
            for item in batch:
                try:
                    result.add(_write(connection, writer, [item]))
                except (IntegrityError, StatementError) as single:
                    record = record_of(item)
                    reason = str(getattr(single, "orig", single)).splitlines()[0]
                    result.errors.append(
                        RecordError(record.position or record.arxiv_id, f"not stored: {reason}")
                    )
        report.totals.add(result)
        self.progress.records(len(batch))
        if ahead is not None:
            # Merging ahead pays while most papers are new (an import, not a re-import).
            ahead.merge = result.new * 2 >= len(batch)


@dataclass
class _Lookahead:
    """Shared by the writing and the parsing thread: whether to merge records ahead."""

    merge: bool = True
    form: ValueForm | None = None


def _count_file(report: IngestReport, format_name: str) -> None:
    report.files += 1
    report.formats[format_name] += 1


def _write(
    connection: Connection, writer: CatalogWriter, batch: list[PaperRecord | AsNew]
) -> BatchResult:
    """One batch in one write transaction: committed whole, or rolled back on any error."""
    with connection.begin():
        return writer.write(connection, batch)
