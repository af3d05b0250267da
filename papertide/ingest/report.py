"""Printing an ingest report: counts, then each error with its position."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from papertide.ingest.runner import IngestReport

MAX_ERRORS_SHOWN = 50


def report_lines(report: IngestReport) -> list[str]:
    t = report.totals
    rate = report.records / report.seconds if report.seconds else 0.0
    formats = ", ".join(f"{name}: {count}" for name, count in sorted(report.formats.items()))
    lines = [
        f"{report.files} file(s) ({formats or 'none'}) in {report.seconds:.1f} s, "
        f"{rate:,.0f} papers/s",
        f"new: {t.new}  updated: {t.updated}  unchanged: {t.unchanged}  "
        f"listings added: {t.listings_added}  errors: {len(t.errors)}",
    ]
    if report.skipped_files:
        lines.append(
            f"skipped {len(report.skipped_files)} file(s) of unknown format, "
            f"e.g. {report.skipped_files[0]}"
        )
    for error in t.errors[:MAX_ERRORS_SHOWN]:
        lines.append(f"error: {error}")
    if len(t.errors) > MAX_ERRORS_SHOWN:
        lines.append(f"... and {len(t.errors) - MAX_ERRORS_SHOWN} more errors")
    return lines


def print_report(report: IngestReport, console: Console) -> None:
    for line in report_lines(report):
        style = "red" if line.startswith("error") else None
        console.print(escape(line), style=style, highlight=False, soft_wrap=True)
