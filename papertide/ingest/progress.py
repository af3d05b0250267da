"""A rich progress bar for ingest runs: bytes read against the input size, papers/s and ETA."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
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
