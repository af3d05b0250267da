"""Rich progress bars: ingest runs (bytes read against the input size, papers/s and ETA), and
a counting bar for the jobs that report (done, total): indexing and embedding."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from papertide.ingest import runner


class RichProgress(runner.Progress):
    def __init__(self, console: Console | None = None) -> None:
        self._console = console or Console(stderr=True)
        self._bar = Progress(
            TextColumn("[bold]ingest"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[papers]:>10,} papers  {task.fields[rate]:>8,.0f} papers/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self._console,
            transient=False,
        )
        self._task = self._bar.add_task("ingest", total=None, papers=0, rate=0.0, start=False)
        self._papers = 0
        self._started = time.perf_counter()
        self._completed = 0
        self._done_files = 0

    def start(self, total_bytes: int) -> None:
        self._bar.update(self._task, total=total_bytes)
        self._bar.start_task(self._task)
        self._bar.start()
        self._started = time.perf_counter()

    def advance(self, nbytes: int) -> None:
        self._completed += nbytes
        self._bar.update(self._task, completed=self._completed)

    def records(self, count: int) -> None:
        self._papers += count
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        self._bar.update(self._task, papers=self._papers, rate=self._papers / elapsed)

    def file_done(self, path: Path, size: int) -> None:
        # Some parsers read small files whole, not through the counting reader: catch up.
        self._done_files += size
        if self._completed < self._done_files:
            self._completed = self._done_files
            self._bar.update(self._task, completed=self._completed)

    def stop(self) -> None:
        self._bar.stop()


@contextmanager
def counting_bar(
    label: str, console: Console | None = None, *, quiet: bool = False
) -> Iterator[Callable[[int, int], None]]:
    """A bar fed by ``advance(done, total)`` callbacks, with items/s and ETA; silent if quiet."""
    if quiet:
        yield lambda _done, _total: None
        return
    started = time.perf_counter()
    with Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>9,.1f}/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
    ) as bar:
        task = bar.add_task(label, total=None, rate=0.0)

        def advance(done: int, total: int) -> None:
            rate = done / max(time.perf_counter() - started, 1e-9)
            bar.update(task, completed=done, total=total or None, rate=rate)

        yield advance
